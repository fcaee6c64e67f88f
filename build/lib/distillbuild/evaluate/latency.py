"""The student as it would serve: one text at a time, timed, after a few warm-up calls.

On a shared machine a burst of someone else's load lands in a few timings and moves a p95 by
tens of percent, so a latency gate would flip between builds. The loop therefore runs in rounds
(evaluation.latency_rounds, each over evaluation.latency_samples texts) and each percentile
reported is the median of the rounds' own: a burst moves one round, not the figure. The rounds'
figures and the machine's facts (CPU, cores, threads, load average before and after) are kept
beside them in metrics.json, so a reader knows what a latency was measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any

from distillbuild.console import Progress, eta_text, rate_text
from distillbuild.stats import percentile

WARMUP = 5


def latencies_ms(
    model: Any, texts: list[str], samples: int, offset: int = 0, warmup: bool = True, progress: Progress | None = None
) -> list[float]:
    """Milliseconds of `samples` calls of model.predict([text]), cycling through the texts."""
    if warmup:
        for text in texts[:WARMUP]:
            model.predict([text])
    out = []
    for i in range(samples):
        t0 = time.perf_counter()
        model.predict([texts[(offset + i) % len(texts)]])
        out.append((time.perf_counter() - t0) * 1000)
        if progress is not None:  # after the clock stopped: the bar's own time is not the model's
            progress.advance()
    return out


def _progress_line(done: int, total: int, rate: float, eta_s: float | None) -> str:
    return f"evaluate: latency {done}/{total} one-text calls timed, {rate_text(rate)}, ETA {eta_text(eta_s)}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@dataclass(frozen=True)
class Latency:
    rounds: list[list[float]]  # milliseconds, one list per round
    machine: dict[str, Any]

    @property
    def all_ms(self) -> list[float]:
        return [ms for r in self.rounds for ms in r]

    def _median_of(self, q: float) -> float:
        return round(statistics.median(percentile(r, q) for r in self.rounds), 3)

    @property
    def p50_ms(self) -> float:
        return self._median_of(0.50)

    @property
    def p95_ms(self) -> float:
        return self._median_of(0.95)

    def record(self) -> dict[str, Any]:
        """What metrics.json keeps beside the two figures (a dict: never a gate's, never compared by reproduce)."""
        return {
            "method": f"median over {len(self.rounds)} rounds of {len(self.rounds[0])} one-text calls, "
            f"after {WARMUP} warm-up calls",
            "rounds_p50_ms": [round(percentile(r, 0.50), 3) for r in self.rounds],
            "rounds_p95_ms": [round(percentile(r, 0.95), 3) for r in self.rounds],
            "machine": self.machine,
        }


def measure(model: Any, texts: list[str], samples: int, rounds: int, threads: int) -> Latency:
    """`rounds` rounds of `samples` one-text calls, each round on the next texts."""
    before = _load()
    with Progress("latency", samples * rounds, _progress_line) as progress:
        timed = [
            latencies_ms(model, texts, samples, offset=r * samples, warmup=r == 0, progress=progress)
            for r in range(rounds)
        ]
    machine = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "load_average_before": before,
        "load_average_after": _load(),
    }
    return Latency(timed, machine)


@dataclass(frozen=True)
class Serving:
    """What the evaluation measured of the student serving, and what 1,000 answers cost from each model."""

    latency: Latency  # one text at a time
    batch_s: float  # the whole held-out set in one predict call
    teacher_cost_per_1k_usd: float | None
    student_cost_per_1k_usd: float

    @property
    def latencies_ms(self) -> list[float]:
        return self.latency.all_ms

    @property
    def latency_p50_ms(self) -> float:
        return self.latency.p50_ms

    @property
    def latency_p95_ms(self) -> float:
        return self.latency.p95_ms

    def throughput(self, rows: int) -> float | None:
        """Rows per second of the batch call."""
        return round(rows / self.batch_s, 1) if self.batch_s > 0 else None
