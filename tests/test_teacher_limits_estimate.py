"""Rate limiting, retry headers, the cost estimate and the cache commands."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from distillbuild.cli import main
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.estimate import count_prompt_tokens, encoder_for, encoding_name, estimate
from distillbuild.llm.ratelimit import RateLimiter, parse_reset, retry_after

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_reset(text, seconds):
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_prefers_milliseconds():
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == pytest.approx(0.25)
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after({}) is None


def test_request_bucket_paces_to_the_limit():
    limiter = RateLimiter(rpm=1200)  # 20 a second, a burst of 20

    async def go():
        t0 = time.monotonic()
        for _ in range(50):
            await limiter.acquire(10)
        return time.monotonic() - t0

    # 50 requests: 20 at once, then 30 more at 20/s -> at least 1.5 s, however fast the machine.
    assert asyncio.run(go()) >= 1.4


def test_token_bucket_and_pause():
    limiter = RateLimiter(tpm=60_000)  # 1000 tokens a second

    async def go():
        t0 = time.monotonic()
        for _ in range(4):
            await limiter.acquire(500)  # 2000 tokens: 1000 at once, 1000 more take ~1 s
        return time.monotonic() - t0

    assert asyncio.run(go()) >= 0.9
    limiter = RateLimiter()
    limiter.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "400ms"})
    assert limiter.pauses == 1

    async def after_pause():
        t0 = time.monotonic()
        await limiter.acquire(1)
        return time.monotonic() - t0

    assert asyncio.run(after_pause()) >= 0.3


def test_encoding_names_and_exact_counts():
    assert encoding_name("gpt-4o") == "o200k_base"
    assert encoding_name("gpt-4o-2024-08-06") == "o200k_base"
    assert encoding_name("ft:gpt-4o-mini:acme::abc123") == "o200k_base"
    assert encoding_name("gpt-3.5-turbo") == "cl100k_base"
    assert encoding_name("llama-3-70b") is None
    counter, method = encoder_for("gpt-4o")
    assert method.startswith("exact") and counter("hello world") == 2
    counter, method = encoder_for("my-local-model")
    assert counter is None and method.startswith("heuristic")
    messages = [{"role": "system", "content": "hello world"}, {"role": "user", "content": "hello world"}]
    # 2 content + 1 role token each, 3 framing each, 3 to prime the reply
    assert count_prompt_tokens(messages, encoder_for("gpt-4o")[0]) == 2 * (2 + 1 + 3) + 3


def test_estimate_counts_only_uncached_unique_requests():
    msgs = [[{"role": "user", "content": f"ticket {i}"}] for i in range(10)]
    keys = [f"k{i}" for i in range(10)]
    msgs.append(msgs[0])
    keys.append("k0")  # a repeat
    est = estimate(
        msgs,
        keys,
        {"k1", "k2"},
        model="gpt-4o",
        max_tokens=8,
        labels=["billing", "refund"],
        price_in=2.5,
        price_out=10.0,
        budget_usd=1.0,
    )
    assert (est.requests, est.unique, est.cached, est.to_call) == (11, 10, 2, 8)
    assert est.completion_tokens_max == 64
    assert est.completion_tokens_expected == 8 * 2  # the longest label is one token, plus one
    assert est.cost_usd_max == pytest.approx(round((est.prompt_tokens * 2.5 + 64 * 10) / 1e6, 4))


def test_cache_stats_and_prune_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path))
    cache = TeacherCache(tmp_path / "teacher.sqlite")
    for i in range(5):
        cache.put(f"k{i}", "e1", "m1" if i < 3 else "m2", {"choices": [{"i": i}]})
    cache.close()
    runner = CliRunner()
    stats = runner.invoke(main, ["cache", "stats"])
    assert stats.exit_code == 0 and "5 answers" in stats.output and "model m1: 3" in stats.output
    assert runner.invoke(main, ["cache", "prune"]).exit_code == 2  # refuses to guess
    dry = runner.invoke(main, ["cache", "prune", "--model", "m1", "--dry-run"])
    assert "would delete 3" in dry.output
    assert "deleted 3" in runner.invoke(main, ["cache", "prune", "--model", "m1"]).output
    assert "deleted 0" in runner.invoke(main, ["cache", "prune", "--older-than", "1"]).output
    assert "2 answers" in runner.invoke(main, ["cache", "stats"]).output


def test_estimate_command_on_a_spec(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["estimate", str(project())])
    assert result.exit_code == 0, result.output
    assert "13 unique, 0 already cached, 13 to call" in result.output
    assert "heuristic" in result.output  # the model "sim" has no known encoding
    assert "simulated stand-in" in result.output
