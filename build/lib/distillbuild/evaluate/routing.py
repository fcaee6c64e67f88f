"""Fallback routing: the student answers when it is confident, the teacher answers the rest.

On held-out rows where both answered, a threshold t on the student's confidence sends rows with
confidence >= t to the student and the others (and any row without a confidence) to the
teacher. `curve` gives, for every threshold the data can tell apart, the share the student
answers (coverage) and the routed system's accuracy. `choose` picks the threshold for a target:
`min_accuracy` (the most coverage whose routed accuracy reaches it; when none does, the best
routed accuracy there is) or `max_teacher_share` (the best routed accuracy sending at most that
share to the teacher).

A threshold fitted on the rows it is scored on flatters itself, so `cross_fit` splits the rows in
two by a hash of their id, fits on each half and scores on the other: every row's routed answer
comes from a threshold that never saw it. The threshold to deploy is fitted on all rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from distillbuild.stats import half

NEVER = math.inf  # a threshold no confidence reaches: everything goes to the teacher


@dataclass(frozen=True)
class Row:
    id: str
    confidence: float | None  # the student's probability of its answer
    student_right: bool
    teacher_right: bool


@dataclass(frozen=True)
class Target:
    min_accuracy: float | None = None
    max_teacher_share: float | None = None


def _routed(rows: Sequence[Row], threshold: float) -> tuple[float, float]:
    """(routed accuracy, teacher share) at `threshold`."""
    to_student = [r.confidence is not None and r.confidence >= threshold for r in rows]
    right = sum(r.student_right if s else r.teacher_right for r, s in zip(rows, to_student))
    return right / len(rows), 1 - sum(to_student) / len(rows)


def thresholds(rows: Sequence[Row]) -> list[float]:
    """Every threshold that routes differently, from all-student (the lowest confidence) to all-teacher."""
    return sorted({r.confidence for r in rows if r.confidence is not None}) + [NEVER]


def curve(rows: Sequence[Row]) -> list[dict]:
    """[{threshold, coverage, accuracy}] from all-student to all-teacher."""
    out = []
    for t in thresholds(rows):
        accuracy, teacher_share = _routed(rows, t)
        out.append(
            {
                "threshold": None if t == NEVER else round(t, 6),
                "coverage": round(1 - teacher_share, 6),
                "accuracy": round(accuracy, 6),
            }
        )
    return out


def choose(rows: Sequence[Row], target: Target) -> float:
    """The threshold meeting `target` on `rows` (NEVER when only the teacher can)."""
    scored = [(t, *_routed(rows, t)) for t in thresholds(rows)]
    if target.min_accuracy is not None:
        meeting = [t for t, accuracy, _ in scored if accuracy >= target.min_accuracy]
        if meeting:
            return min(meeting)  # the lowest threshold: the most rows on the student
        allowed = scored  # out of reach: the best routed accuracy there is (target_met says so)
    else:
        allowed = [s for s in scored if s[2] <= target.max_teacher_share + 1e-12]
    return max(allowed, key=lambda s: (s[1], -s[2]))[0]  # best accuracy; on a tie, the fewest to the teacher


def cross_fit(rows: Sequence[Row], target: Target) -> tuple[list[bool], list[bool], list[float]]:
    """Out-of-fold routing: (right?, sent to the teacher?) per row, and the two halves' thresholds."""
    halves = [[r for r in rows if half(r.id) == h] for h in (0, 1)]
    fitted = [choose(h, target) if h else NEVER for h in halves]
    right, to_teacher = [], []
    for r in rows:
        t = fitted[1 - half(r.id)]  # the other half's threshold
        student = r.confidence is not None and r.confidence >= t
        right.append(r.student_right if student else r.teacher_right)
        to_teacher.append(not student)
    return right, to_teacher, fitted
