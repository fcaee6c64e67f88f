"""Processor (distillbuild.llm.engine) that spreads the uncached calls over a Ray cluster and over
one or more endpoints serving the same model (vLLM replicas behind teacher.base_url and
execution.teacher.endpoints).

The driver cuts the calls into chunks and keeps `workers` chunks in flight, each a Ray task that
runs the online processor (the same retries, rate limiting and unreadable-answer handling)
against one endpoint, round robin. A task holds its answers in memory; the driver writes them
to the repository's cache as each chunk comes back, so a run killed with -9 loses at most the
chunks in flight, and the rerun pays only for those.

The teacher's API key is never sent in a task: each worker reads it from its own environment
(teacher.api_key_env), as the driver does; on a cluster, export it on every node before `ray
start`. Shared limits hold across the workers: each endpoint's share of teacher.concurrency, rpm and
tpm is divided among the tasks that use it at once, and the budget is handed out per chunk: a
chunk leaves only when what was spent plus the most every chunk in flight may spend, its own
included, stays within teacher.budget_usd, and inside the chunk the online processor stops at
its share as it stops at the whole budget locally.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from typing import Any, Callable

from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.results import CallResult, RunStats, most_cost
from distillbuild.llm.settings import RayCalls, TeacherSettings

CHUNK = 64  # calls per task: small enough that a kill loses little, large enough to keep a task busy


class _MemoryCache:
    """What a task's online run writes its answers to; the driver puts them in the real cache."""

    def __init__(self):
        self.entries: list[tuple[str, str, str, dict[str, Any]]] = []

    def put(self, key: str, endpoint_id: str, model: str, response: dict[str, Any]) -> None:
        self.entries.append((key, endpoint_id, model, response))


def _answer_chunk(items: list[tuple[str, dict[str, Any]]], settings: TeacherSettings, api_key_env: str | None):
    """In a Ray task: the online processor over one chunk, against settings.base_url."""
    import os

    from distillbuild.llm.online import OnlineProcessor

    if api_key_env:  # the key from this worker's environment: it never travels in a task
        settings = replace(settings, api_key=os.environ.get(api_key_env, ""))

    cache, stats = _MemoryCache(), RunStats()
    try:
        results = OnlineProcessor().run(items, settings, cache, stats, lambda line: None)
    except StageError as exc:
        return None, cache.entries, stats, str(exc)
    return results, cache.entries, stats, None


class RayProcessor:
    def __init__(self, calls: RayCalls):
        self.calls = calls

    def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: RunStats,
        log: Callable[[str], None],
    ) -> dict[str, CallResult]:
        import ray

        calls, endpoints = self.calls, self.calls.endpoints
        in_flight_max = max(1, calls.workers)
        per_endpoint = math.ceil(in_flight_max / len(endpoints))  # tasks sharing one endpoint at once
        share = lambda n: None if n is None else max(1, n // per_endpoint)  # noqa: E731
        task = ray.remote(num_cpus=calls.num_cpus, max_retries=0)(_answer_chunk)
        chunks = deque(items[i : i + CHUNK] for i in range(0, len(items), CHUNK))
        total = len(chunks)
        log(
            f"teacher: {len(items):,} calls in {total} chunks over {len(endpoints)} endpoint(s), "
            f"{in_flight_max} Ray task(s) at once"
        )
        results: dict[str, CallResult] = {}
        pending: dict[Any, float] = {}  # task -> the most it may spend
        turn, done = 0, 0
        while chunks or pending:
            while chunks and len(pending) < in_flight_max:
                chunk = self._affordable(chunks, settings, stats.cost_usd + sum(pending.values()))
                if chunk is None:  # not one more call fits beside what is in flight
                    if not pending:  # and nothing will come back: stop here, as the local engine does
                        stats.budget_stopped = True
                        chunks.clear()
                    break
                most = most_cost(chunk, settings)
                endpoint = endpoints[turn % len(endpoints)]
                turn += 1
                local = replace(
                    settings,
                    base_url=endpoint,
                    concurrency=max(1, settings.concurrency // per_endpoint),
                    rpm=share(settings.rpm),
                    tpm=share(settings.tpm),
                    budget_usd=None if settings.budget_usd is None else most,
                    ray=None,
                    shared_limits=True,
                    api_key="" if calls.api_key_env else settings.api_key,
                )
                pending[task.remote(chunk, local, calls.api_key_env)] = most
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                answered, entries, chunk_stats, fatal = ray.get(ref)
                for key, endpoint_id, model, response in entries:  # in the cache before anything else
                    cache.put(key, endpoint_id, model, response)
                stats.add(_counts_only(chunk_stats))
                if fatal:
                    for other in pending:
                        ray.cancel(other)
                    raise StageError(fatal)
                results.update(answered or {})
                done += 1
                if done % 10 == 0 or not pending:
                    log(f"teacher: {done} of {total} chunks back, {len(results):,} calls answered")
        return results

    def _affordable(self, chunks: deque, settings: TeacherSettings, committed: float):
        """The next chunk, or as much of it as the budget left allows (the rest stays queued)."""
        chunk = chunks.popleft()
        if settings.budget_usd is None:
            return chunk
        room, fits = settings.budget_usd - committed, 0
        for _, body in chunk:
            cost = most_cost([(None, body)], settings)
            if cost > room:
                break
            room -= cost
            fits += 1
        if fits < len(chunk):
            chunks.appendleft(chunk[fits:])
        return chunk[:fits] or None


def _counts_only(stats: RunStats) -> RunStats:
    """A task's counts without what answer_all counts itself (requested, unique, cache hits, time)."""
    return replace(stats, requested=0, unique=0, cache_hits=0, seconds=0.0)
