"""Too few rows of a class to train on (filters.min_rows_per_label): which classes, why their rows
were dropped, and the setting that would keep them.

A student trained on 4 rows, all of one class, scores at chance and the gate fails, rightly,
after a training run that was paid for nothing. Below `min_rows_per_label` rows of any label
the dataset stage stops first (exit 3) with this diagnosis.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

Row = dict[str, Any]

# What to change for a class whose rows were mostly dropped for this reason.
ADVICE = {
    "invalid_label": "hold the teacher to the labels with teacher.answer_format: choice, or allow filters.label_from: "
    "[..., probabilities] to take the most probable label of an answer that names none",
    "truncated": "raise teacher.max_tokens, or use teacher.answer_format: choice so decoding stops after the label",
    "teacher_error": "rerun the teacher stage: its failed calls are asked again (answered ones come from the cache)",
    "refusal": "reword task.instruction: the teacher refuses these inputs",
    "seed_label_mismatch": "set filters.seed_label_match: false, or write the seed stage's instruction more precisely",
    "class_cap": "raise filters.rules.max_per_class",
}


def shortfall(
    kept: Sequence[Row],
    rejected: Sequence[Row],
    labels: Sequence[str],
    minimum: int,
    min_confidence: float | None,
    measure: str = "raw",
) -> str | None:
    """None when every label keeps at least `minimum` rows; else the message naming the short
    labels, the reasons their rows were dropped and a setting that would keep them."""
    counts = Counter(r.get("label") for r in kept)
    short = [l for l in labels if counts.get(l, 0) < minimum]
    if not short:
        return None
    lines = []
    for label in short:
        dropped = [r for r in rejected if r.get("label") == label]
        reasons = Counter(r["reason"] for r in dropped)
        why = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or (
            "none: the teacher gave no more inputs this label"
            if counts.get(label)
            else "none: the teacher never gave it"
        )
        advice = _suggestion(label, kept, dropped, reasons, minimum, min_confidence, measure)
        lines.append(f"  {label}: {counts.get(label, 0)} kept; dropped: {why}. {advice}")
    return (
        f"too few rows to train on: {len(short)} of {len(labels)} labels keep fewer than "
        f"filters.min_rows_per_label ({minimum}) rows after the filter:\n"
        + "\n".join(lines)
        + "\nNothing was trained. Change the setting named above and rerun (the teacher's answers are cached), "
        "or set filters.min_rows_per_label lower."
    )


def _suggestion(
    label: str,
    kept: Sequence[Row],
    dropped: Sequence[Row],
    reasons: Counter,
    minimum: int,
    min_confidence: float | None,
    measure: str,
) -> str:
    if not reasons:
        return (
            "Add inputs of this kind (or people's labels, data.human), show the teacher an example of it in "
            "task.examples, or check that the inputs hold any."
        )
    top = reasons.most_common(1)[0][0]
    if top == "low_confidence":
        scores = sorted(
            (
                r["confidence"]
                for r in [*dropped, *[k for k in kept if k.get("label") == label]]
                if r.get("confidence") is not None
            ),
            reverse=True,
        )
        if len(scores) >= minimum:
            keep_at = scores[minimum - 1]
            other = (
                "; or filters.confidence: renormalised, the label's share of the probability that names a label, "
                "a scale a real model's answers reach"
                if measure == "raw"
                else ""
            )
            return f"filters.min_confidence: {_floor(keep_at)} (now {min_confidence:.4g}) would keep {minimum}{other}."
        return (
            "even with no confidence threshold there are too few: lower filters.min_confidence and add inputs of "
            "this kind, or people's labels (data.human)"
        )
    return ADVICE.get(top, "loosen the filter that dropped them (filters)") + "."


def _floor(value: float) -> float:
    """Two decimals, rounded down, so the suggested threshold keeps the row it is read from."""
    return int(value * 100) / 100
