"""Answer many prompts: the cache first, identical requests once, the rest through a processor.

A processor answers the requests the cache lacks and writes each answer to the cache as it
comes: `OnlineProcessor` (distillbuild.teacher.online) calls the endpoint for each,
`BatchProcessor` (distillbuild.teacher.batch) sends them through the Batch API. Both have
the same `run` (the `Processor` protocol); `settings.batch` chooses.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from distillbuild.teacher.batch import BatchProcessor
from distillbuild.teacher.cache import TeacherCache, request_key
from distillbuild.teacher.online import OnlineProcessor
from distillbuild.teacher.results import CallResult, RunStats
from distillbuild.teacher.settings import TeacherSettings


class Processor(Protocol):
    def run(self, items: list[tuple[str, dict[str, Any]]], settings: TeacherSettings, cache: TeacherCache,
            stats: RunStats, log: Callable[[str], None]) -> dict[str, CallResult]:
        """{cache key: result} for each (cache key, request body) in `items`; counts go into `stats`."""
        ...


def processor_for(settings: TeacherSettings) -> Processor:
    return BatchProcessor() if settings.batch else OnlineProcessor()


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
    fresh = processor_for(settings).run(missing, settings, cache, stats, log) if missing else {}
    stats.seconds = time.monotonic() - t0
    return [CallResult(hits[key], True) if key in hits else fresh.get(key) for key in keys], stats
