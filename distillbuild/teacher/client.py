"""Answer many prompts through any OpenAI-compatible endpoint, with the official SDK.

Bounded concurrency; client-side RPM/TPM buckets that also obey the provider's Retry-After
and x-ratelimit-* headers; retries of 429, 5xx, timeouts and connection errors with
jittered exponential backoff; a non-retryable 4xx or a malformed body becomes an error on
that row, never a crash; a cache lookup before every call and a cache write after each
answer; identical requests sent once; a hard budget checked before each launch.

Retries are ours rather than the SDK's (which we set to 0) for three reasons: a 429 must
pause every request, not only the refused one; a 200 whose body is not JSON must be caught
(the SDK does not retry it); and the report counts retries by kind.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from distillbuild.errors import StageError
from distillbuild.secrets import redact
from distillbuild.teacher.cache import TeacherCache, request_key
from distillbuild.teacher.ratelimit import RateLimiter, retry_after

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0
_RETRYABLE_STATUS = {408, 409, 429}
_FATAL_STATUS = {401, 403, 404}


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
    rpm: int | None = None
    tpm: int | None = None
    batch: bool = False  # the Batch API instead of online calls
    samples: int = 1  # choices per prompt (`n`), for self-consistency
    response_format: dict[str, Any] | None = None  # structured output for extraction tasks
    token_ids: bool = False  # vLLM's return_tokens_as_token_ids, for logit distillation
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
            if self.token_ids:
                body["return_tokens_as_token_ids"] = True
        if self.seed is not None:
            body["seed"] = self.seed
        if self.samples > 1:
            body["n"] = self.samples
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def cost(self, usage: dict[str, Any] | None) -> float:
        if not usage or self.price_in_per_mtok is None:
            return 0.0
        return (usage.get("prompt_tokens", 0) * self.price_in_per_mtok
                + usage.get("completion_tokens", 0) * (self.price_out_per_mtok or 0)) / 1e6


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

    def bump(self, table: dict[str, int], kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1


def record_answer(key: str, response: dict[str, Any], settings: TeacherSettings, cache: TeacherCache,
                  stats: RunStats, latency: float | None = None) -> CallResult:
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
    chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
    return chars // 4 + 4 * len(body["messages"]) + int(body.get("max_tokens") or 0)


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def _transport_kind(exc: BaseException) -> str:
    """"timeout" or "connection": the aiohttp transport reports a reset as a ConnectTimeout, so
    look at what actually happened underneath."""
    seen: BaseException | None = exc
    for _ in range(6):
        seen = seen.__cause__ or seen.__context__ if seen else None
        if seen is None:
            break
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError) and getattr(seen, "errno", None):
            return "connection"
        if type(seen).__name__ in ("ServerDisconnectedError", "ClientConnectionResetError", "RemoteProtocolError"):
            return "connection"
    return "timeout" if "Timeout" in type(exc).__name__ else "connection"


def _parse_completion(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise ValueError("a 200 without choices")
    return data


async def _run(items: list[tuple[str, dict[str, Any]]], settings: TeacherSettings, cache: TeacherCache,
               stats: RunStats, log: Callable[[str], None]) -> dict[str, CallResult]:
    import httpx2
    import openai

    # aiohttp under the SDK, and the body we already built sent as is: the SDK's default pool
    # and its argument transformation cost ~3x the client CPU per request (bench/README.md).
    client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key or "unused",
                                max_retries=0, timeout=settings.timeout_s,
                                http_client=openai.DefaultAioHttpClient())
    limiter = RateLimiter(settings.rpm, settings.tpm)
    results: dict[str, CallResult] = {}
    semaphore = asyncio.Semaphore(settings.concurrency)
    in_flight = 0
    fatal: list[str] = []
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
        eta = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
        errors = sum(stats.errors.values())
        log(f"teacher: {done}/{total} answered, {rate:.0f}/s, ETA {eta}, "
            f"{stats.prompt_tokens + stats.completion_tokens:,} tokens, ${stats.cost_usd:.4f}"
            + (f", {errors} errors" if errors else ""))

    def estimated_next_cost() -> float:
        if stats.billed_calls:
            return stats.cost_usd / stats.billed_calls
        return settings.cost({"prompt_tokens": 200, "completion_tokens": settings.max_tokens})

    def fail_row(key: str, kind: str, detail: str) -> None:
        stats.bump(stats.errors, kind)
        results[key] = CallResult(None, False, f"{kind}: {redact(detail, settings.api_key)[:300]}")

    async def one(key: str, body: dict[str, Any]) -> None:
        nonlocal in_flight
        tokens = estimated_tokens(body)
        async with semaphore:
            last = ("", "")
            for attempt in range(settings.max_retries + 1):
                if fatal:
                    return
                budget = settings.budget_usd
                if budget is not None and stats.cost_usd + (in_flight + 1) * estimated_next_cost() > budget:
                    stats.budget_stopped = True
                    return
                await limiter.acquire(tokens)
                in_flight += 1
                t0 = time.monotonic()
                wait: float | None = None
                try:
                    raw = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
                    text = raw.text
                    headers = raw.headers
                except openai.APIStatusError as exc:
                    status = exc.status_code
                    if status in _FATAL_STATUS:
                        fatal.append(f"HTTP {status} {type(exc).__name__}: {redact(str(exc), settings.api_key)[:300]}")
                        return
                    if status not in _RETRYABLE_STATUS and status < 500:
                        fail_row(key, "bad_request", f"HTTP {status}: {exc}")
                        return
                    kind = "rate_limited" if status == 429 else "server_error"
                    wait = retry_after(exc.response.headers)
                    if status == 429:
                        limiter.pause(wait if wait is not None else backoff(attempt))
                    last = (kind, f"HTTP {status}: {exc}")
                except openai.APIConnectionError as exc:  # APITimeoutError included
                    last = (_transport_kind(exc), str(exc) or type(exc).__name__)
                else:
                    latency = time.monotonic() - t0
                    limiter.observe(headers)
                    stats.billed_calls += 1
                    try:
                        response = _parse_completion(text)
                    except ValueError as exc:
                        # Charged but unreadable: an error on this row, not a second charge.
                        fail_row(key, "malformed", f"the body is not a chat completion ({exc})")
                        return
                    results[key] = record_answer(key, response, settings, cache, stats, latency)
                    maybe_log()
                    return
                finally:
                    in_flight -= 1
                if attempt < settings.max_retries:
                    stats.bump(stats.retries, last[0])
                    await asyncio.sleep(wait if wait is not None else backoff(attempt))
            fail_row(key, last[0], f"gave up after {settings.max_retries} retries: {last[1]}")

    try:
        await asyncio.gather(*(one(k, b) for k, b in items))
    finally:
        await client.close()
        stats.rate_limit_pauses = limiter.pauses
    if fatal:
        raise StageError(f"the teacher endpoint refused the request ({fatal[0]})")
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
    log(f"teacher: {len(requests)} requests, {stats.cache_hits} cached, {len(missing)} unique calls to make")
    if not missing:
        fresh = {}
    elif settings.batch:
        from distillbuild.teacher.batch import run_batches

        fresh = run_batches(missing, settings, cache, stats, log)
    else:
        fresh = asyncio.run(_run(missing, settings, cache, stats, log))
    stats.seconds = time.monotonic() - t0
    out: list[CallResult | None] = []
    for key in keys:
        out.append(CallResult(hits[key], True) if key in hits else fresh.get(key))
    return out, stats
