"""What a run gives back (one CallResult per request) and what it counts (RunStats)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.settings import TeacherSettings


@dataclass
class CallResult:
    response: dict[str, Any] | None
    cached: bool
    error: str | None = None
    latency_s: float | None = None


@dataclass
class RunStats:
    requested: int = 0
    unique: int = 0
    cache_hits: int = 0
    billed_calls: int = 0  # answers the provider charged for, malformed ones included
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)
    budget_stopped: bool = False
    rate_limit_pauses: int = 0
    seconds: float = 0.0

    def bump(self, table: dict[str, int], kind: str, n: int = 1) -> None:
        table[kind] = table.get(kind, 0) + n

    def add(self, other: "RunStats") -> None:
        """Fold another run's counts into these (a judge's rounds add up)."""
        for name in (
            "requested",
            "unique",
            "cache_hits",
            "billed_calls",
            "answered",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "rate_limit_pauses",
            "seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.errors.items():
            self.bump(self.errors, kind, n)
        for kind, n in other.retries.items():
            self.bump(self.retries, kind, n)
        self.latencies += other.latencies
        self.fingerprints |= other.fingerprints
        self.budget_stopped |= other.budget_stopped


def record_answer(
    key: str,
    response: dict[str, Any],
    settings: TeacherSettings,
    cache: TeacherCache,
    stats: RunStats,
    latency: float | None = None,
) -> CallResult:
    """Cache a fresh answer and count its tokens, dollars and fingerprint (online and batch alike)."""
    cache.put(key, settings.endpoint_id, settings.model, response)
    usage = response.get("usage") or {}
    stats.answered += 1
    stats.prompt_tokens += usage.get("prompt_tokens", 0) or 0
    stats.completion_tokens += usage.get("completion_tokens", 0) or 0
    stats.cost_usd += settings.cost(usage)
    if latency is not None:
        stats.latencies.append(latency)
    if response.get("system_fingerprint"):
        stats.fingerprints.add(response["system_fingerprint"])
    return CallResult(response, False, None, latency)


def estimated_tokens(body: dict[str, Any]) -> int:
    """Prompt + completion tokens for rate limiting (about 4 characters a token)."""
    if "prompt" in body:  # a Completions body (teacher.api: completions)
        return len(str(body["prompt"])) // 4 + int(body.get("max_tokens") or 0)
    chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
    return chars // 4 + 4 * len(body["messages"]) + int(body.get("max_tokens") or 0)


def most_cost(chunk: list[tuple[Any, dict[str, Any]]], settings: TeacherSettings) -> float:
    """The most calls may cost: every prompt at two characters a token (tokenizers average about
    four on English) and max_tokens of answer. 0 without a budget."""
    if settings.budget_usd is None:
        return 0.0
    total = 0.0
    for _, body in chunk:
        chars = estimated_tokens({**body, "max_tokens": 0}) * 4
        total += settings.cost({"prompt_tokens": chars // 2 + 16, "completion_tokens": settings.max_tokens})
    return total
