"""Classification metrics (pure): accuracy, macro-F1, per-class F1, agreement, percentiles."""

from __future__ import annotations

import math
from typing import Sequence


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    return sum(g == p for g, p in zip(gold, pred)) / len(gold) if gold else float("nan")


def per_class_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> dict[str, float]:
    scores = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred))
        fp = sum(g != label and p == label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        scores[label] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return scores


def macro_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> float:
    present = [l for l in labels if l in set(gold)]  # classes absent from the held-out set would score 0 unfairly
    scores = per_class_f1(gold, pred, present)
    return sum(scores.values()) / len(scores) if scores else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 1]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.95 * 200 must be 190, not 190.00000000000003
    return ordered[min(max(rank, 1), len(ordered)) - 1]
