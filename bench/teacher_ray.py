"""Teacher calls through Ray over two endpoints, against their ceiling.

Two stand-in endpoints (the project's simulated teacher, each with its own latency and a real
rpm limit that answers 429 past it) serve the same model; 20,000 prompts go through
`answer_all` with `execution.engine: ray` (llm/ray_calls.py: chunks as Ray tasks, round robin
over the endpoints, each endpoint's concurrency and rpm shared among the tasks using it), on an
empty cache. The ceiling is what a client costing nothing could reach: for each endpoint
min(its concurrency / latency, rpm / 60), summed. Printed: requests/s, the ratio to the
ceiling, 429s and errors. The one-endpoint local engine runs beside it on a quarter of the
prompts, against its own ceiling.

    .venv/bin/python bench/teacher_ray.py                 # 20,000 prompts: ~4 minutes here
    .venv/bin/python bench/teacher_ray.py --prompts 2000  # a smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teacher_throughput import make_teacher, prompts, teacher_settings  # noqa: E402

from distillbuild.endpoints.standin.server import SimulatedTeacherServer  # noqa: E402
from distillbuild.llm.cache import TeacherCache  # noqa: E402
from distillbuild.llm.engine import answer_all  # noqa: E402
from distillbuild.llm.settings import RayCalls  # noqa: E402

LATENCY_MS = 200
RPM = 3000  # per endpoint: 50 requests/s
CONCURRENCY = 16  # per endpoint


def run(requests, settings) -> tuple[float, object]:
    with tempfile.TemporaryDirectory(prefix="bench-ray-cache-") as tmp:
        cache = TeacherCache(Path(tmp) / "teacher.sqlite")
        started = time.perf_counter()
        results, stats = answer_all(requests, settings, cache, log=lambda line: None)
        seconds = time.perf_counter() - started
        cache.close()
    ok = sum(1 for r in results if r is not None and r.response is not None)
    return seconds, stats, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4, help="Ray tasks at once")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    n = args.prompts
    teacher = make_teacher(n)
    limits = {"rpm": RPM}
    per_endpoint = min(CONCURRENCY / (LATENCY_MS / 1000), RPM / 60)
    with (
        SimulatedTeacherServer(teacher, latency_ms=LATENCY_MS, limits=limits) as one,
        SimulatedTeacherServer(teacher, latency_ms=LATENCY_MS, limits=limits) as two,
    ):
        # teacher.concurrency and rpm are each endpoint's (what its server allows), on both engines
        base = replace(teacher_settings(one.base_url, CONCURRENCY), rpm=RPM, max_retries=5)
        local_n = n // 4
        seconds, stats, ok = run(prompts(local_n), base)
        print(
            f"local engine, 1 endpoint:  {local_n:,} prompts in {seconds:.1f} s = {ok / seconds:.1f}/s; "
            f"ceiling {per_endpoint:.0f}/s; ratio {ok / seconds / per_endpoint:.2f}; "
            f"retries {dict(stats.retries) or 'none'}, errors {dict(stats.errors) or 'none'}",
            flush=True,
        )
        ray.init(
            address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
        )
        try:
            on_ray = replace(base, ray=RayCalls((one.base_url, two.base_url), workers=args.workers))
            served_before = one.requests_served + two.requests_served
            seconds, stats, ok = run(prompts(n), on_ray)
            served = one.requests_served + two.requests_served - served_before
        finally:
            ray.shutdown()
        ceiling = 2 * per_endpoint
        print(
            f"Ray, 2 endpoints, {args.workers} tasks: {n:,} prompts in {seconds:.1f} s = {ok / seconds:.1f}/s; "
            f"ceiling {ceiling:.0f}/s (2 x min({CONCURRENCY} / {LATENCY_MS} ms, {RPM} rpm)); "
            f"ratio {ok / seconds / ceiling:.2f}; answered {ok:,}, served {served:,}; "
            f"retries {dict(stats.retries) or 'none'}, errors {dict(stats.errors) or 'none'}"
        )


if __name__ == "__main__":
    main()
