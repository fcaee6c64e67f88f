"""How sure the teacher is of an answer, in a form a threshold can mean something on.

A real model's probability of its answer label is low even when the label is right: its mass
spreads over near-synonyms and other words ("technology", "tele", "internet" for `sci/tech`).
Three measures (filters.confidence):

- `raw`: the answer label's probability under the teacher, as the teacher stage read it;
- `renormalised`: the label's share of the probability that names a label (the soft label the
  student learns from), times min(1, label_mass / min_label_mass), so an answer whose
  probability mostly went elsewhere is not trusted on its renormalised share alone;
- `calibrated`: the label distribution recalibrated (a `Calibrator`), then as renormalised.

Calibrators: temperature scaling (one temperature fitted by likelihood on labelled rows; it keeps
every answer's label and makes its probability honest), and contextual calibration (Zhao et al.
2021, "Calibrate Before Use": each distribution divided by the teacher's answer to content-free
inputs, which removes the prompt's prior toward a label; it needs no labels and can change the
label). Pure functions on rows; the filter stage chooses and fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from distillbuild.protocol.normalize import normalize_label
from distillbuild.spec.model import Filters

Row = dict[str, Any]
PROB_FLOOR = 1e-6  # a label never seen among the alternatives still has some probability


def row_label(row: Row, labels: Sequence[str]) -> str | None:
    """The label a row's answer names: the one the teacher stage read (protocol/answers.py
    read_label), or for rows that carry none (a person's label), the answer's text read as one."""
    if "label" in row:
        return row["label"]
    return normalize_label(row.get("answer"), list(labels))


@dataclass(frozen=True)
class Calibrator:
    """A map from a label distribution to a calibrated one."""

    method: str = "none"  # none | temperature | contextual
    temperature: float = 1.0
    prior: Mapping[str, float] | None = None  # contextual: the content-free answers' mean distribution

    def apply(self, probs: Mapping[str, float], labels: Sequence[str]) -> dict[str, float]:
        if self.method == "contextual" and self.prior:
            weights = {l: max(probs.get(l, 0.0), 0.0) / max(self.prior.get(l, 0.0), PROB_FLOOR) for l in labels}
        elif self.method == "temperature":
            weights = {l: max(probs.get(l, 0.0), PROB_FLOOR) ** (1.0 / self.temperature) for l in labels}
        else:
            return dict(probs)
        total = sum(weights.values())
        return {l: w / total for l, w in weights.items()} if total > 0 else dict(probs)

    def describe(self) -> dict[str, Any]:
        if self.method == "temperature":
            return {"method": "temperature", "temperature": round(self.temperature, 6)}
        if self.method == "contextual":
            return {"method": "contextual", "prior": {l: round(p, 6) for l, p in (self.prior or {}).items()}}
        return {"method": "none"}


@dataclass(frozen=True)
class Scored:
    """A row's label and confidence as the filter reads them."""

    label: str | None
    label_from: str | None
    confidence: float | None
    probs: dict[str, float] | None  # the distribution the confidence came from (calibrated, when it is)


def score(
    row: Row, labels: Sequence[str], measure: str, min_label_mass: float, calibrator: Calibrator = Calibrator()
) -> Scored:
    label, label_from = row_label(row, labels), row.get("label_from")
    probs = row.get("label_probs")
    if measure == "raw" or not labels:
        return Scored(label, label_from, row.get("confidence"), probs)
    if label is None:
        return Scored(label, label_from, None, probs)
    if not probs:  # no distribution over the labels to renormalise: the answer's own probability
        return Scored(label, label_from, row.get("confidence"), probs)
    if measure == "calibrated":
        probs = calibrator.apply(probs, labels)
        top = max(labels, key=lambda l: (probs.get(l, 0.0), -list(labels).index(l)))
        if top != label:
            label, label_from = top, "calibration"
    mass = row.get("label_mass")
    factor = min(1.0, mass / min_label_mass) if min_label_mass > 0 and mass is not None else 1.0
    return Scored(label, label_from, probs.get(label, 0.0) * factor, probs)


def mean_distribution(dists: Sequence[Mapping[str, float]], labels: Sequence[str]) -> dict[str, float]:
    """The content-free prior: the mean of the answers' label distributions."""
    dists = [d for d in dists if d]
    if not dists:
        return {}
    return {l: sum(d.get(l, 0.0) for d in dists) / len(dists) for l in labels}


def fit_temperature(dists: Sequence[Mapping[str, float]], gold: Sequence[str], labels: Sequence[str]) -> float:
    """The temperature T minimising the negative log-likelihood of the gold labels under
    p^(1/T) renormalised: a golden-section search over log T in [1/20, 20] (the NLL is convex
    in 1/T for this family)."""
    pairs = [(d, g) for d, g in zip(dists, gold) if d and g in labels]
    if not pairs:
        return 1.0
    logs = [({l: math.log(max(d.get(l, 0.0), PROB_FLOOR)) for l in labels}, g) for d, g in pairs]

    def nll(log_t: float) -> float:
        inv = math.exp(-log_t)
        total = 0.0
        for lp, g in logs:
            scaled = {l: v * inv for l, v in lp.items()}
            top = max(scaled.values())
            total -= scaled[g] - top - math.log(sum(math.exp(v - top) for v in scaled.values()))
        return total

    lo, hi = math.log(1 / 20), math.log(20)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def distribution(
    rows: Sequence[Row], labels: Sequence[str], measure: str, min_label_mass: float, thresholds: Sequence[float]
) -> dict[str, Any]:
    """The confidence of answered rows under `measure` (calibrated ones shown renormalised: the
    calibration is fitted in the filter stage): quartiles, and the share each threshold keeps."""
    shown = "renormalised" if measure == "calibrated" else measure
    values = sorted(
        c
        for r in rows
        if r.get("error") is None and (c := score(r, labels, shown, min_label_mass).confidence) is not None
    )
    if not values:
        return {"measure": shown, "answers": 0}

    def at(q: float) -> float:
        return round(values[min(int(q * (len(values) - 1) + 0.5), len(values) - 1)], 4)

    return {
        "measure": shown,
        "answers": len(values),
        "without_confidence": len(rows) - len(values),
        "min": at(0),
        "p25": at(0.25),
        "median": at(0.5),
        "p75": at(0.75),
        "max": at(1),
        "kept_share": {f"{t:g}": round(sum(v >= t for v in values) / len(values), 4) for t in thresholds},
    }


def fixed_threshold(filters: Filters) -> float | None:
    """filters.min_confidence when it is a number above 0 (not a target to fit)."""
    t = filters.min_confidence
    return t if isinstance(t, (int, float)) and t > 0 else None


def canary_confidence(rows: Sequence[Row], labels: Sequence[str], filters: Filters, threshold: float | None) -> dict:
    """The canary's answers as the filter will read them (`distill estimate --canary`): their
    confidence, and what the asked threshold, the spec's and 0.5, 0.7, 0.9 would keep."""
    thresholds = sorted({t for t in (threshold, fixed_threshold(filters), 0.5, 0.7, 0.9) if t is not None})
    return distribution(rows, labels, filters.confidence, filters.min_label_mass, thresholds)
