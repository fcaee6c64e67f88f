"""Small numeric helpers shared by engines (teacher latencies, student latencies)."""

from __future__ import annotations

import hashlib
import math
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 1]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.95 * 200 must be 190, not 190.00000000000003
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def bootstrap_mean_interval(values: Sequence[float], resamples: int, seed: int = 0) -> dict[str, float]:
    """{"ci_low", "ci_high"}: the 95% percentile interval of the mean, rows resampled with
    replacement ({} with no resamples or no values)."""
    if resamples <= 0 or not values:
        return {}
    import numpy as np  # lazy: ~0.1 s to import

    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            v[rng.integers(0, len(v), size=(min(256, resamples - s), len(v)))].mean(axis=1)
            for s in range(0, resamples, 256)
        ]
    )
    low, high = np.percentile(means, [2.5, 97.5])
    return {"ci_low": round(float(low), 6), "ci_high": round(float(high), 6)}


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value for paired right/wrong outcomes: `only_a` rows right for A
    alone, `only_b` for B alone (a binomial test of the discordant pairs at 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def round_p(p: float) -> float:
    """A p-value to 4 significant figures, rounded up: a gate `max: 0.05` must not pass a p of
    0.0500004 (rounding to decimal places would also write 1.7e-07 as 0.0)."""
    if p <= 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(p)) - 3)
    return min(1.0, float(f"{math.ceil(p / step - 1e-9) * step:.4g}"))  # 1e-9: p already on the grid stays


def half(row_id: str) -> int:
    """0 or 1: which half of a cross-fit a row is in, by a hash of its id (stable across runs):
    what a threshold is fitted on, the other half is scored on (routing, the filter's fits)."""
    return hashlib.sha256(row_id.encode("utf-8")).digest()[0] & 1
