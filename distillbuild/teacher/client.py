"""Answer many prompts through any OpenAI-compatible endpoint, with the official SDK.

Bounded concurrency, the SDK's own retries (429, 5xx, timeouts, connection errors, with
backoff honouring Retry-After), a cache lookup before every call and a cache write after
each answer, identical requests sent once, and a hard budget checked before each launch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from distillbuild.errors import StageError
from distillbuild.secrets import redact
from distillbuild.teacher.cache import TeacherCache, request_key


@dataclass(frozen=True)
class TeacherSettings:
    endpoint_id: str  # the endpoint's stable identity in cache keys (never the key, never a random port)
    base_url: str | None
    model: str
    temperature: float
    max_tokens: int
    top_logprobs: int
    seed: int | None
    concurrency: int
    timeout_s: float
    max_retries: int
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    budget_usd: float | None = None
    api_key: str = field(default="", repr=False)  # held in memory only

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if self.seed is not None:
            body["seed"] = self.seed
        return body

    def cost(self, usage: dict[str, Any] | None) -> float:
        if not usage or self.price_in_per_mtok is None:
            return 0.0
        return (usage.get("prompt_tokens", 0) * self.price_in_per_mtok + usage.get("completion_tokens", 0) * (self.price_out_per_mtok or 0)) / 1e6


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
    billed_calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)
    budget_stopped: bool = False
    seconds: float = 0.0


_FATAL = ("AuthenticationError", "PermissionDeniedError", "NotFoundError")


def _error_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    return {
        "RateLimitError": "rate_limited",
        "APITimeoutError": "timeout",
        "APIConnectionError": "connection",
        "InternalServerError": "server_error",
        "BadRequestError": "bad_request",
        "UnprocessableEntityError": "bad_request",
        "ConflictError": "conflict",
    }.get(name, "malformed" if isinstance(exc, ValueError) else name)


async def _run(items: list[tuple[str, dict[str, Any]]], settings: TeacherSettings, cache: TeacherCache,
               stats: RunStats, log: Callable[[str], None]) -> dict[str, CallResult]:
    import openai

    client = openai.AsyncOpenAI(
        base_url=settings.base_url, api_key=settings.api_key or "unused",
        max_retries=settings.max_retries, timeout=settings.timeout_s,
    )
    results: dict[str, CallResult] = {}
    semaphore = asyncio.Semaphore(settings.concurrency)
    in_flight = 0
    fatal: list[BaseException] = []
    started = time.monotonic()
    total = len(items)
    last_log = [started]

    def maybe_log(force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - last_log[0] < 2.0:
            return
        last_log[0] = now
        done = len(results)
        rate = done / max(now - started, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        log(f"teacher: {done}/{total} answered, {rate:.0f}/s, ETA {eta:.0f}s, ${stats.cost_usd:.4f} spent")

    def estimated_next_cost() -> float:
        if stats.billed_calls:
            return stats.cost_usd / stats.billed_calls
        return settings.cost({"prompt_tokens": 200, "completion_tokens": settings.max_tokens})

    async def one(key: str, body: dict[str, Any]) -> None:
        nonlocal in_flight
        async with semaphore:
            if fatal:
                return
            budget = settings.budget_usd
            if budget is not None and stats.cost_usd + (in_flight + 1) * estimated_next_cost() > budget:
                stats.budget_stopped = True
                return
            in_flight += 1
            t0 = time.monotonic()
            try:
                raw = await client.chat.completions.with_raw_response.create(**body)
                completion = raw.parse()
                stats.retries += raw.retries_taken
                response = completion.model_dump(mode="json", exclude_none=False)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a row error or a stop
                if type(exc).__name__ in _FATAL:
                    fatal.append(exc)
                    return
                kind = _error_kind(exc)
                stats.errors[kind] = stats.errors.get(kind, 0) + 1
                results[key] = CallResult(None, False, f"{kind}: {redact(str(exc), settings.api_key)[:300]}")
                return
            finally:
                in_flight -= 1
            latency = time.monotonic() - t0
            cache.put(key, settings.endpoint_id, settings.model, response)
            usage = response.get("usage") or {}
            stats.billed_calls += 1
            stats.prompt_tokens += usage.get("prompt_tokens", 0)
            stats.completion_tokens += usage.get("completion_tokens", 0)
            stats.cost_usd += settings.cost(usage)
            stats.latencies.append(latency)
            if response.get("system_fingerprint"):
                stats.fingerprints.add(response["system_fingerprint"])
            results[key] = CallResult(response, False, None, latency)
            maybe_log()

    try:
        await asyncio.gather(*(one(k, b) for k, b in items))
    finally:
        await client.close()
    if fatal:
        exc = fatal[0]
        raise StageError(f"the teacher endpoint refused the request ({type(exc).__name__}): "
                         f"{redact(str(exc), settings.api_key)[:300]}")
    maybe_log(force=True)
    return results


def answer_all(requests: list[list[dict[str, str]]], settings: TeacherSettings, cache: TeacherCache,
               log: Callable[[str], None] = print) -> tuple[list[CallResult | None], RunStats]:
    """One result per request, in order (None where the budget stopped the run first)."""
    stats = RunStats(requested=len(requests))
    t0 = time.monotonic()
    bodies = [settings.body(m) for m in requests]
    keys = [request_key(settings.endpoint_id, b) for b in bodies]
    unique = dict(zip(keys, bodies))  # identical requests are sent once
    stats.unique = len(unique)
    hits = cache.get_many(list(unique))
    stats.cache_hits = sum(1 for k in keys if k in hits)
    missing = [(k, b) for k, b in unique.items() if k not in hits]
    log(f"teacher: {len(requests)} requests, {len(requests) - stats.cache_hits} to answer "
        f"({stats.cache_hits} cached, {len(missing)} unique calls to make)")
    fresh = asyncio.run(_run(missing, settings, cache, stats, log)) if missing else {}
    stats.seconds = time.monotonic() - t0
    out: list[CallResult | None] = []
    for key in keys:
        if key in hits:
            out.append(CallResult(hits[key], True))
        else:
            out.append(fresh.get(key))
    return out, stats
