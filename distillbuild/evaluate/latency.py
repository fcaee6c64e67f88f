"""The student as it would serve: one text at a time, timed, after a few warm-up calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from distillbuild.stats import percentile

WARMUP = 5


def latencies_ms(model: Any, texts: list[str], samples: int) -> list[float]:
    """Milliseconds of `samples` calls of model.predict([text]), cycling through the texts."""
    for text in texts[:WARMUP]:
        model.predict([text])
    out = []
    for i in range(samples):
        t0 = time.perf_counter()
        model.predict([texts[i % len(texts)]])
        out.append((time.perf_counter() - t0) * 1000)
    return out


@dataclass(frozen=True)
class Serving:
    """What the evaluation measured of the student serving, and what 1,000 answers cost from each model."""

    latencies_ms: list[float]  # one text at a time
    batch_s: float  # the whole held-out set in one predict call
    teacher_cost_per_1k_usd: float | None
    student_cost_per_1k_usd: float

    @property
    def latency_p50_ms(self) -> float:
        return round(percentile(self.latencies_ms, 0.50), 3)

    @property
    def latency_p95_ms(self) -> float:
        return round(percentile(self.latencies_ms, 0.95), 3)

    def throughput(self, rows: int) -> float | None:
        """Rows per second of the batch call."""
        return round(rows / self.batch_s, 1) if self.batch_s > 0 else None
