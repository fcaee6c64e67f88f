"""Small numeric helpers shared by engines (teacher latencies, student latencies)."""

from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 1]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.95 * 200 must be 190, not 190.00000000000003
    return ordered[min(max(rank, 1), len(ordered)) - 1]
