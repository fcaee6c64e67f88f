"""The teacher run's report (calls, cache, retries, errors, tokens, cost, latency) and its one-screen summary."""

from __future__ import annotations

from typing import Any

from distillbuild.console import rate_number
from distillbuild.llm.results import RunStats
from distillbuild.stats import percentile

# What the report says of this run on this machine (calls paid and cached, timings): kept in
# report.run.json beside it, out of DVC's hashes (distillbuild/measurements.py).
MEASURED = ("calls", "errors", "tokens", "cost_usd", "latency_s", "system_fingerprints", "seconds")


def report(provider: str, model: str, stats: RunStats, inputs: int, heldout: int, ambiguous: int) -> dict[str, Any]:
    """The run report (build/teacher/report.json, its MEASURED keys kept apart: distillbuild/measurements.py)."""
    return {
        "provider": provider,
        "model": model,
        "simulated": provider == "simulated",
        "rows": {"inputs": inputs, "heldout": heldout},
        "calls": {
            "requested": stats.requested,
            "from_cache": stats.cache_hits,
            "billed": stats.billed_calls,
            "deduplicated": stats.requested - stats.unique,
            "answered": stats.answered,
            "retries": dict(sorted(stats.retries.items())),
            "rate_limit_pauses": stats.rate_limit_pauses,
        },
        "errors": dict(sorted(stats.errors.items())),
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
        "cost_usd": round(stats.cost_usd, 6),
        "latency_s": {
            "p50": percentile(stats.latencies, 0.5) if stats.latencies else None,
            "p95": percentile(stats.latencies, 0.95) if stats.latencies else None,
        },
        "system_fingerprints": sorted(stats.fingerprints),
        "soft_labels_ambiguous_rows": ambiguous,
        "seconds": round(stats.seconds, 3),
    }


def summary(rep: dict[str, Any]) -> str:
    """The one-screen summary printed when the stage ends."""
    c, lat = rep["calls"], rep["latency_s"]
    kinds = lambda d: ", ".join(f"{k} {v}" for k, v in d.items()) or "none"  # noqa: E731
    ms = lambda v: f"{v * 1000:.0f} ms" if v is not None else "-"  # noqa: E731
    rate = c["billed"] / rep["seconds"] if rep["seconds"] and c["billed"] else 0
    who = f"{rep['provider']}:{rep['model']}" + (" (SIMULATED stand-in)" if rep["simulated"] else "")
    return "\n".join(
        [
            f"teacher summary: {who}",
            f"  requests    {c['requested']:,}: {c['from_cache']:,} from cache, {c['billed']:,} billed, "
            f"{c['deduplicated']:,} duplicates sent once",
            f"  retries     {kinds(c['retries'])}; rate-limit pauses {c['rate_limit_pauses']}",
            f"  errors      {kinds(rep['errors'])}",
            f"  tokens      {rep['tokens']['prompt']:,} prompt, {rep['tokens']['completion']:,} completion; "
            f"${rep['cost_usd']:.4f}",
            f"  latency     p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}; {rate_number(rate)} calls/s over "
            f"{rep['seconds']:.1f} s",
            f"  fingerprint {', '.join(rep['system_fingerprints']) or '-'}",
        ]
    )
