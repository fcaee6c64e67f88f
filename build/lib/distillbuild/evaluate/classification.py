"""Classification metrics (pure): accuracy, macro-F1, per-class F1, agreement, percentiles, and
the metrics.json and predictions.json of a held-out evaluation built from them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from distillbuild.evaluate.latency import Serving
from distillbuild.stats import mcnemar_p, percentile  # noqa: F401 - percentile: part of this module's API

UNPARSEABLE = "(unparseable)"  # predictions.json's label for an answer that names no label


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


@dataclass(frozen=True)
class PairedGain:
    """One student against another on the same rows: the other's accuracy, this one's gain over
    it, the rows right for one of them only, and the exact McNemar p-value of the difference."""

    other_accuracy: float
    gain: float
    only_this: int
    only_other: int
    p: float


def paired_gain(gold: Sequence[str], this: Sequence[str | None], other: Sequence[str | None]) -> PairedGain:
    right_this = [p == g for p, g in zip(this, gold)]
    right_other = [p == g for p, g in zip(other, gold)]
    only_this = sum(a and not b for a, b in zip(right_this, right_other))
    only_other = sum(b and not a for a, b in zip(right_this, right_other))
    return PairedGain(
        accuracy(gold, other),
        accuracy(gold, this) - accuracy(gold, other),
        only_this,
        only_other,
        mcnemar_p(only_this, only_other),
    )


def bootstrap_intervals(
    student_correct: Sequence[bool], teacher_correct: Sequence[bool], resamples: int, seed: int = 0
) -> dict[str, float]:
    """95% percentile intervals of student accuracy, teacher accuracy and retention (student /
    teacher accuracy), resampling held-out rows with replacement, jointly for both models."""
    import numpy as np  # lazy: ~0.1 s to import, and only the bootstrap needs it

    s = np.asarray(student_correct, dtype=float)
    t = np.asarray(teacher_correct, dtype=float)
    if resamples <= 0 or len(s) == 0:
        return {}
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    acc_s = np.empty(resamples)
    acc_t = np.empty(resamples)
    for start in range(0, resamples, 256):  # chunks keep memory at 256 x n
        idx = rng.integers(0, len(s), size=(min(256, resamples - start), len(s)))
        acc_s[start : start + len(idx)] = s[idx].mean(axis=1)
        acc_t[start : start + len(idx)] = t[idx].mean(axis=1)
    retention = np.divide(acc_s, acc_t, out=np.full_like(acc_s, np.nan), where=acc_t > 0)
    out["accuracy_ci_low"], out["accuracy_ci_high"] = (float(v) for v in np.percentile(acc_s, [2.5, 97.5]))
    out["teacher_accuracy_ci_low"], out["teacher_accuracy_ci_high"] = (
        float(v) for v in np.percentile(acc_t, [2.5, 97.5])
    )
    if np.isfinite(retention).all():
        out["retention_ci_low"], out["retention_ci_high"] = (float(v) for v in np.percentile(retention, [2.5, 97.5]))
    return {k: round(v, 6) for k, v in out.items()}


@dataclass(frozen=True)
class ClassificationResult:
    metrics: dict[str, Any]  # metrics.json
    predictions: list[dict[str, Any]]  # predictions.json
    accuracy: float  # unrounded, for the log
    teacher_accuracy: float


def evaluate_classification(
    heldout: Sequence[dict[str, Any]],
    labels: Sequence[str],
    student: Sequence[str | None],
    teacher: Sequence[str | None],
    serving: Serving,
    resamples: int,
    *,
    student_text: Sequence[str | None],
    teacher_simulated: bool,
    student_confidence: Sequence[float | None] | None = None,
) -> ClassificationResult:
    """The student's and the teacher's labels against the held-out gold labels. heldout: {"id",
    "label"} rows; student / teacher: one label per row (None when an answer is no label);
    student_text: a causal student's answer behind each label (None for an encoder's);
    student_confidence: the student's probability of its label (None where unknown)."""
    confidence = list(student_confidence or [None] * len(heldout))
    gold = [r["label"] for r in heldout]
    acc, teacher_acc = accuracy(gold, student), accuracy(gold, teacher)
    intervals = bootstrap_intervals(
        [g == s for g, s in zip(gold, student)], [g == t for g, t in zip(gold, teacher)], resamples
    )
    metrics = {
        "accuracy": round(acc, 6),
        "teacher_accuracy": round(teacher_acc, 6),
        "retention": round(acc / teacher_acc, 6) if teacher_acc > 0 else None,
        # Always answering the held-out set's commonest label: a student (or teacher) near this
        # has learned nothing, whatever its retention says.
        "baseline_accuracy": round(max(Counter(gold).values()) / len(gold), 6) if gold else None,
        "macro_f1": round(macro_f1(gold, student, labels), 6),
        "teacher_macro_f1": round(macro_f1(gold, teacher, labels), 6),
        "agreement": round(accuracy(teacher, student), 6),
        "latency_p50_ms": serving.latency_p50_ms,
        "latency_p95_ms": serving.latency_p95_ms,
        "latency": serving.latency.record(),
        **intervals,
        "heldout_rows": len(heldout),
        "teacher_cost_per_1k_usd": serving.teacher_cost_per_1k_usd,
        "student_cost_per_1k_usd": serving.student_cost_per_1k_usd,
        "teacher_unparseable": sum(p is None for p in teacher),
        "student_unparseable": sum(p is None for p in student),  # a causal student's answer that is no label
        "per_class_f1": {k: round(v, 6) for k, v in per_class_f1(gold, student, labels).items()},
        "teacher_simulated": teacher_simulated,
        "batch_throughput_rows_per_s": serving.throughput(len(heldout)),
    }
    predictions = [
        {
            "id": r["id"],
            "actual": g,
            "predicted": s or UNPARSEABLE,
            "teacher": t or UNPARSEABLE,
            **({"student_text": st} if st is not None else {}),
            **({"student_confidence": round(c, 6)} if c is not None else {}),
        }
        for r, g, s, t, st, c in zip(heldout, gold, student, teacher, student_text, confidence)
    ]
    return ClassificationResult(metrics, predictions, acc, teacher_acc)
