"""What 1,000 requests cost: the teacher at its price per token, the student at a machine's hourly rate."""

from __future__ import annotations

from typing import Any

from distillbuild.spec.model import Price


def teacher_cost_per_1k(answers: list[dict[str, Any]], price: Price | None) -> float | None:
    """What 1,000 such requests cost at `price` (input_per_mtok, output_per_mtok), from the usage
    the teacher reported with each answer; None without a price or any usage."""
    usage = [a.get("usage") for a in answers if a.get("usage")]
    if not price or not usage:
        return None
    per_call = (
        sum(
            u.get("prompt_tokens", 0) * price.input_per_mtok + u.get("completion_tokens", 0) * price.output_per_mtok
            for u in usage
        )
        / len(usage)
        / 1e6
    )
    return round(per_call * 1000, 6)


def student_cost_per_1k(latencies_ms: list[float], usd_per_hour: float) -> float:
    """What 1,000 requests cost on a machine billed at `usd_per_hour`, served one at a time at the
    measured mean latency."""
    mean_s = sum(latencies_ms) / len(latencies_ms) / 1000
    return round(mean_s * usd_per_hour / 3600 * 1000, 8)
