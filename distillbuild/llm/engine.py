"""Answer many prompts: the cache first, identical requests once, the rest through a processor.

A processor answers the requests the cache lacks and writes each answer to the cache as it
comes: `OnlineProcessor` (distillbuild.llm.online) calls the endpoint for each,
`BatchProcessor` (distillbuild.llm.batch) sends them through the Batch API. Both have
the same `run` (the `Processor` protocol); `settings.batch` chooses.

A canary (online runs) answers the first few unique requests first and hands their responses
to a check that may stop the run (a StageError) before the rest is paid for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from distillbuild.llm.batch import BatchProcessor
from distillbuild.llm.cache import TeacherCache, request_key
from distillbuild.llm.online import OnlineProcessor
from distillbuild.llm.results import CallResult, RunStats
from distillbuild.llm.settings import TeacherSettings


class Processor(Protocol):
    def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: RunStats,
        log: Callable[[str], None],
    ) -> dict[str, CallResult]:
        """{cache key: result} for each (cache key, request body) in `items`; counts go into `stats`."""
        ...


def processor_for(settings: TeacherSettings) -> Processor:
    if settings.batch:
        return BatchProcessor()
    if settings.vllm is not None:  # teacher.provider: vllm
        from distillbuild.llm.vllm_ray import VllmProcessor

        return VllmProcessor(settings.vllm)
    if settings.ray is not None:  # execution.engine: ray
        from distillbuild.llm.ray_calls import RayProcessor

        return RayProcessor(settings.ray)
    return OnlineProcessor()


@dataclass(frozen=True)
class Canary:
    requests: int  # how many first unique requests
    check: Callable[[list[dict[str, Any] | None]], None]  # their responses (None: failed); raises to stop


def answer_all(
    requests: list[list[dict[str, str]]],
    settings: TeacherSettings,
    cache: TeacherCache,
    log: Callable[[str], None] = print,
    canary: Canary | None = None,
    seeds: list[int | None] | None = None,
) -> tuple[list[CallResult | None], RunStats]:
    """One result per request, in order (None where the budget stopped the run first). `seeds`:
    each request's own sampling seed (the seed stage's: the same prompt sampled anew)."""
    stats = RunStats(requested=len(requests))
    t0 = time.monotonic()
    bodies = [settings.body(m, seed) for m, seed in zip(requests, seeds or [None] * len(requests))]
    keys = [request_key(settings.endpoint_id, b) for b in bodies]
    unique = dict(zip(keys, bodies))  # identical requests are sent once
    stats.unique = len(unique)
    hits = cache.get_many(list(unique))
    stats.cache_hits = sum(1 for k in keys if k in hits)
    missing = [(k, b) for k, b in unique.items() if k not in hits]
    log(f"teacher: {len(requests)} requests, {stats.cache_hits} cached, {len(missing)} unique calls to make")
    if canary is not None and canary.requests > 0 and not settings.batch:
        fresh = _with_canary(canary, list(unique), hits, missing, settings, cache, stats, log)
    else:
        fresh = processor_for(settings).run(missing, settings, cache, stats, log) if missing else {}
    stats.seconds = time.monotonic() - t0
    return [CallResult(hits[key], True) if key in hits else fresh.get(key) for key in keys], stats


def _with_canary(
    canary: Canary,
    order: list[str],
    hits: dict[str, Any],
    missing: list[tuple[str, dict[str, Any]]],
    settings: TeacherSettings,
    cache: TeacherCache,
    stats: RunStats,
    log: Callable[[str], None],
) -> dict[str, CallResult]:
    """The first `canary.requests` unique requests (from the cache or asked now), checked, then the rest."""
    first = set(order[: canary.requests])
    processor = processor_for(settings)
    head = [(k, b) for k, b in missing if k in first]
    fresh = processor.run(head, settings, cache, stats, log) if head else {}
    if not stats.budget_stopped:
        responses = [
            hits[k] if k in hits else (fresh[k].response if k in fresh else None) for k in order[: canary.requests]
        ]
        canary.check(responses)
    tail = [(k, b) for k, b in missing if k not in first]
    if tail and not stats.budget_stopped:
        fresh.update(processor.run(tail, settings, cache, stats, log))
    return fresh


def recorded_responses(
    requests: list[list[dict[str, str]]],
    settings: TeacherSettings,
    cache: TeacherCache,
    seeds: list[int | None] | None = None,
) -> list[dict[str, Any]]:
    """The cache's entries for these requests ({key, endpoint, model, response}), once each, in
    the requests' order: what a stage writes beside its answers (build/*/responses.jsonl), so that
    `distill reproduce` in a fresh clone seeds the cache from them and asks nothing. A response's
    id and creation time name the call, not the answer: left out, so the same answers asked again
    write the same bytes."""
    seeds = seeds or [None] * len(requests)
    keys = list(dict.fromkeys(request_key(settings.endpoint_id, settings.body(m, s)) for m, s in zip(requests, seeds)))
    held = cache.get_many(keys)
    return [
        {"key": k, "endpoint": settings.endpoint_id, "model": settings.model, "response": _answer_only(held[k])}
        for k in keys
        if k in held
    ]


# Fields of a completion that identify the call (differ each time it is asked), not the answer.
CALL_FIELDS = ("id", "created")


def _answer_only(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k not in CALL_FIELDS}
