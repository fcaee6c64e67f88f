"""A confidence threshold chosen for a target, on labelled rows (filters.min_confidence as a mapping).

`{target_precision: P}`: the lowest threshold whose kept labelled answers are right at least P
of the time (the most rows for that precision). `{keep_share: S}`: the threshold that keeps that
share of all answered rows, the most confident first (it needs no labels; the labelled rows
then say how right the kept ones are).

A threshold fitted on the rows it is scored on flatters itself, so the precision reported is
cross-fitted: the labelled rows are split in two by a hash of their id, a threshold is fitted
on each half and applied to the other, and the kept rows of both halves are pooled. The
threshold the filter applies is fitted on all labelled rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from distillbuild.stats import half

Z95 = 1.959964


@dataclass(frozen=True)
class Labelled:
    id: str
    confidence: float
    right: bool


def wilson(right: int, n: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return None, None
    p = right / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    width = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return round(max(centre - width, 0.0), 6), round(min(centre + width, 1.0), 6)


def _precision_at(rows: Sequence[Labelled], t: float) -> tuple[int, int]:
    kept = [r for r in rows if r.confidence >= t]
    return sum(r.right for r in kept), len(kept)


def for_precision(rows: Sequence[Labelled], target: float) -> float:
    """The lowest threshold whose kept rows reach `target` precision; when none does, the one
    with the best precision (the report says the target was missed)."""
    best, best_p = math.inf, -1.0
    for t in sorted({r.confidence for r in rows}):
        right, n = _precision_at(rows, t)
        p = right / n
        if p >= target:
            return t
        if p > best_p:
            best, best_p = t, p
    return best


def for_share(confidences: Sequence[float], share: float) -> float:
    """The threshold that keeps `share` of the rows (ties at the threshold all kept)."""
    ordered = sorted(confidences, reverse=True)
    if not ordered:
        return math.inf
    return ordered[max(min(math.ceil(share * len(ordered)), len(ordered)), 1) - 1]


def curve(rows: Sequence[Labelled], points: int = 50) -> list[dict[str, Any]]:
    """Precision and kept share of the labelled rows by threshold (the DVC plot)."""
    thresholds = sorted({r.confidence for r in rows})
    if len(thresholds) > points:
        step = len(thresholds) / points
        thresholds = [thresholds[int(i * step)] for i in range(points)] + [thresholds[-1]]
    out = []
    for t in thresholds:
        right, n = _precision_at(rows, t)
        out.append(
            {
                "threshold": round(t, 6),
                "kept_share": round(n / len(rows), 6),
                "precision": round(right / n, 6) if n else None,
            }
        )
    return out


def fit(
    target: Mapping[str, float], labelled: Sequence[Labelled], all_confidences: Sequence[float]
) -> tuple[float, dict[str, Any]]:
    """The threshold for `target` (exact, as the filter applies it), and a report of what it
    achieves: {threshold, target, precision (cross-fitted, with a 95% interval), kept_share,
    labelled_rows, target_met}."""

    def choose(rows: Sequence[Labelled]) -> float:
        if "target_precision" in target:
            return for_precision(rows, target["target_precision"]) if rows else math.inf
        return for_share(all_confidences, target["keep_share"])

    threshold = choose(labelled)
    halves = [[r for r in labelled if half(r.id) == h] for h in (0, 1)]
    out_of_fold = [r for h in (0, 1) for r in halves[h] if r.confidence >= choose(halves[1 - h])]
    right = sum(r.right for r in out_of_fold)
    low, high = wilson(right, len(out_of_fold))
    precision = round(right / len(out_of_fold), 6) if out_of_fold else None
    kept_share = sum(c >= threshold for c in all_confidences) / len(all_confidences) if all_confidences else 0.0
    report: dict[str, Any] = {
        "target": dict(target),
        "threshold": None if math.isinf(threshold) else round(threshold, 6),
        "labelled_rows": len(labelled),
        "precision": precision,
        "precision_ci_low": low,
        "precision_ci_high": high,
        "precision_method": "cross-fitted: thresholds fitted on each half of the labelled rows, scored on the other",
        "kept_labelled_out_of_fold": len(out_of_fold),
        "kept_share": round(kept_share, 6),
    }
    if "target_precision" in target:
        report["target_met"] = precision is not None and high is not None and high >= target["target_precision"]
    return threshold, report
