"""The online processor: Chat Completions calls through any OpenAI-compatible endpoint, with the SDK.

Bounded concurrency; client-side RPM/TPM buckets that also obey the provider's Retry-After
and x-ratelimit-* headers; retries of 429, 5xx, timeouts and connection errors with
jittered exponential backoff; a 200 whose body is not a whole completion (malformed, or cut off
mid-body) is paid for and asked again, its cost estimated; a non-retryable 4xx, or a row that
used up its retries, becomes an error on that row, never a crash (the teacher stage then fails
the run, teacher.max_error_share); a cache write after each answer; a hard budget checked before
each launch.

Retries are ours rather than the SDK's (which we set to 0) for three reasons: a 429 must
pause every request, not only the refused one; a 200 whose body is not JSON must be caught
(the SDK does not retry it); and the report counts retries by kind.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from distillbuild.console import Progress, eta_text, rate_text
from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.completions import as_chat_completion
from distillbuild.llm.ratelimit import RateLimiter, retry_after
from distillbuild.llm.results import CallResult, RunStats, estimated_tokens, record_answer
from distillbuild.llm.settings import TeacherSettings
from distillbuild.secrets import redact

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0
_RETRYABLE_STATUS = {408, 409, 429}
_FATAL_STATUS = {401, 403, 404}


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


# A response whose headers came and whose body stopped short of its Content-Length (or chunks).
_CUT_OFF_BODY = ("ClientPayloadError", "ContentLengthError", "TransferEncodingError")


def _transport_kind(exc: BaseException) -> str:
    """ "truncated", "timeout" or "connection": the aiohttp transport reports a reset as a
    ConnectTimeout and a cut-off body as a connection error, so look at what actually happened
    underneath."""
    seen: BaseException | None = exc
    for _ in range(6):
        seen = seen.__cause__ or seen.__context__ if seen else None
        if seen is None:
            break
        if type(seen).__name__ in _CUT_OFF_BODY:
            return "truncated"
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError) and getattr(seen, "errno", None):
            return "connection"
        if type(seen).__name__ in ("ServerDisconnectedError", "ClientConnectionResetError", "RemoteProtocolError"):
            return "connection"
    return "timeout" if "Timeout" in type(exc).__name__ else "connection"


def _parse_completion(text: str) -> dict[str, Any]:
    """A 200's body as a Chat Completions response (a Completions one converted, llm/completions.py)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise ValueError("a 200 without choices")
    return as_chat_completion(data)


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth another: its kind (for the report), detail, and the wait the server asked for."""

    kind: str
    detail: str
    wait: float | None = None


class OnlineProcessor:
    """Processor (distillbuild.llm.engine): every request its own call, many in flight."""

    def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: RunStats,
        log: Callable[[str], None],
    ) -> dict[str, CallResult]:
        return asyncio.run(_OnlineRun(settings, cache, stats, log, len(items)).run(items))


class _OnlineRun:
    def __init__(
        self, settings: TeacherSettings, cache: TeacherCache, stats: RunStats, log: Callable[[str], None], total: int
    ):
        self.settings, self.cache, self.stats, self.log, self.total = settings, cache, stats, log, total
        self.limiter = RateLimiter(settings.rpm, settings.tpm, full=not settings.shared_limits)
        self.results: dict[str, CallResult] = {}
        self.in_flight = 0
        self.fatal: list[str] = []  # the endpoint refused us (401/403/404): every row stops

    async def run(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, CallResult]:
        import httpx2  # the SDK's HTTP layer; both load lazily (openai costs ~0.5 s)
        import openai

        # aiohttp under the SDK, and the body we already built sent as is: the SDK's default pool
        # and its argument transformation cost ~3x the client CPU per request (docs/benchmarks.md).
        self.client = openai.AsyncOpenAI(
            base_url=self.settings.base_url,
            api_key=self.settings.api_key or "unused",
            max_retries=0,
            timeout=self.settings.timeout_s,
            http_client=openai.DefaultAioHttpClient(),
        )
        self.openai, self.response_type = openai, httpx2.Response
        self.semaphore = asyncio.Semaphore(self.settings.concurrency)
        self.bar = Progress("", self.total, self.progress_line, log=self.log)
        try:
            await asyncio.gather(*(self.one(k, b) for k, b in items))
        finally:
            await self.client.close()
            self.stats.rate_limit_pauses += self.limiter.pauses
            self.bar.stop()
        if self.fatal:
            raise StageError(f"the teacher endpoint refused the request ({self.fatal[0]})")
        self.bar.close()
        return self.results

    async def one(self, key: str, body: dict[str, Any]) -> None:
        """One request: attempts until it is answered, fails for good, or the run stops."""
        settings, tokens = self.settings, estimated_tokens(body)
        async with self.semaphore:
            last = _Retry("", "")
            for attempt in range(settings.max_retries + 1):
                if self.fatal:
                    return
                if self.over_budget():
                    self.stats.budget_stopped = True
                    return
                await self.limiter.acquire(tokens)
                retry = await self.attempt(key, body, attempt)
                if retry is None:
                    return
                last = retry
                if attempt < settings.max_retries:
                    self.stats.bump(self.stats.retries, retry.kind)
                    await asyncio.sleep(retry.wait if retry.wait is not None else backoff(attempt))
            self.fail_row(key, last.kind, f"gave up after {settings.max_retries} retries: {last.detail}")

    def over_budget(self) -> bool:
        """Would one more call (on top of those in flight) pass the budget?"""
        budget, stats = self.settings.budget_usd, self.stats
        if budget is None:
            return False
        if stats.billed_calls:
            next_cost = stats.cost_usd / stats.billed_calls
        else:
            next_cost = self.settings.cost({"prompt_tokens": 200, "completion_tokens": self.settings.max_tokens})
        return stats.cost_usd + (self.in_flight + 1) * next_cost > budget

    async def attempt(self, key: str, body: dict[str, Any], attempt: int) -> _Retry | None:
        """One call. None when the row is settled (answered, failed for good, or the endpoint refused)."""
        openai = self.openai
        self.in_flight += 1
        t0 = time.monotonic()
        try:
            path = "/completions" if self.settings.api == "completions" else "/chat/completions"
            raw = await self.client.post(path, body=body, cast_to=self.response_type)
            text, headers = raw.text, raw.headers
        except openai.APIStatusError as exc:
            return self.status_error(key, exc, attempt)
        except openai.APIConnectionError as exc:  # APITimeoutError included
            kind = _transport_kind(exc)
            if kind == "truncated":  # the provider answered, and charged, before the body was cut
                self.charge_unreadable(body)
            return _Retry(kind, str(exc) or type(exc).__name__)
        finally:
            self.in_flight -= 1
        latency = time.monotonic() - t0
        self.limiter.observe(headers)
        try:
            response = _parse_completion(text)
        except ValueError as exc:
            self.charge_unreadable(body)
            return _Retry("malformed", f"the body is not a chat completion ({exc})")
        self.stats.billed_calls += 1
        self.results[key] = record_answer(key, response, self.settings, self.cache, self.stats, latency)
        self.bar.advance()
        return None

    def charge_unreadable(self, body: dict[str, Any]) -> None:
        """A 200 paid for and unreadable (asked again): its usage is unreadable too, so its cost is
        the most it can be (the prompt's estimate and max_tokens), counted against the budget."""
        completion = int(body.get("max_tokens") or 0)
        self.stats.billed_calls += 1
        self.stats.cost_usd += self.settings.cost(
            {"prompt_tokens": estimated_tokens(body) - completion, "completion_tokens": completion}
        )

    def status_error(self, key: str, exc: Any, attempt: int) -> _Retry | None:
        """The retry decision for an HTTP error: refused (stop the run), bad request (fail the row), or retry."""
        status = exc.status_code
        if status in _FATAL_STATUS:
            self.fatal.append(f"HTTP {status} {type(exc).__name__}: {redact(str(exc), self.settings.api_key)[:300]}")
            return None
        if status not in _RETRYABLE_STATUS and status < 500:
            self.fail_row(key, "bad_request", f"HTTP {status}: {exc}")
            return None
        wait = retry_after(exc.response.headers)
        if status == 429:  # every request pauses, not only this one
            self.limiter.pause(wait if wait is not None else backoff(attempt))
        return _Retry("rate_limited" if status == 429 else "server_error", f"HTTP {status}: {exc}", wait)

    def fail_row(self, key: str, kind: str, detail: str) -> None:
        self.stats.bump(self.stats.errors, kind)
        self.results[key] = CallResult(None, False, f"{kind}: {redact(detail, self.settings.api_key)[:300]}")
        self.bar.advance()

    def progress_line(self, done: int, total: int, rate: float, eta_s: float | None) -> str:
        """Answers so far, rate, ETA, tokens and dollars: a plain line, or the bar's figures."""
        stats = self.stats
        errors = sum(stats.errors.values())
        return (
            f"teacher: {done}/{total} answered, {rate_text(rate)}, ETA {eta_text(eta_s)}, "
            f"{stats.prompt_tokens + stats.completion_tokens:,} tokens, ${stats.cost_usd:.4f}"
            + (f", {errors} errors" if errors else "")
        )
