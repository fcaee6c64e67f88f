"""Client-side rate limiting: request and token buckets, plus a cooldown every request obeys.

Buckets hold one second's worth of the per-minute limits and refill continuously, so a
run starts promptly and never bursts past what the provider allows. A 429's Retry-After,
or headers saying a window is exhausted, pause every request, not just the one that
was refused: the others would only collect 429s of their own.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Mapping

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_reset(value: str | None) -> float | None:
    """Seconds in OpenAI's x-ratelimit-reset-* format ("1s", "6m0s", "20ms", "1h2m3.5s") or plain seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        return None
    h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a provider asks us to wait: retry-after-ms, then retry-after (seconds)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue  # an HTTP date: rare from LLM APIs; fall back to backoff
    return None


class _Bucket:
    def __init__(self, per_minute: float, full: bool = True):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity if full else 0.0
        self.stamp = time.monotonic()

    def wait_for(self, amount: float) -> float:
        """Take `amount` if available (returns 0) or the seconds until it will be."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        amount = min(amount, self.capacity)  # a request larger than a second's worth still passes, alone
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate


class RateLimiter:
    def __init__(self, rpm: int | None = None, tpm: int | None = None, full: bool = True):
        # full=False: one of several clients sharing an endpoint's limits, starting in the middle of a
        # run (a Ray task): its share of the rate from the first request, no burst on top of the others'
        self.requests = _Bucket(rpm, full) if rpm else None
        self.tokens = _Bucket(tpm, full) if tpm else None
        self.paused_until = 0.0
        self.pauses = 0

    async def acquire(self, tokens: int) -> None:
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            wait = self.requests.wait_for(1) if self.requests else 0.0
            if wait == 0.0 and self.tokens:
                wait = self.tokens.wait_for(tokens)
                if wait > 0 and self.requests:
                    self.requests.level += 1  # give back the request slot taken above
            if wait == 0.0:
                return
            await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        if until > self.paused_until:
            self.paused_until = until
            self.pauses += 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """Pause until the provider's window resets when it says none is left."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is None:
                continue
            try:
                left = float(remaining)
            except ValueError:
                continue
            if left <= 0:
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self.pause(reset)
