"""What the filter learns from labelled rows before it filters: a calibrator for `calibrated`
confidence, and the threshold for a target (filters.min_confidence as a mapping).

Labelled rows are teacher answers whose right label is known (filters.calibration.fit_on):
inputs that carry a gold label (`inputs`), inputs a person labelled in data.human (`human`), or
the calibration half of the held-out set (`heldout`; the student is then scored on the other
half). `auto` takes human rows, else labelled inputs. Contextual calibration needs no labels:
it reads the teacher's answers to content-free inputs (build/teacher/content_free.jsonl).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distillbuild.curate.confidence import Calibrator, fit_temperature, mean_distribution, score
from distillbuild.curate.threshold import Labelled, curve, fit
from distillbuild.errors import StageError
from distillbuild.spec.model import Filters, Task
from distillbuild.stats import half
from distillbuild.text import normalize_text

Row = dict[str, Any]


@dataclass(frozen=True)
class FitResult:
    min_confidence: float | None = None  # the fitted threshold (None: the spec's number applies)
    calibrator: Calibrator = Calibrator()
    report: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)

    def log_lines(self) -> list[str]:
        lines = []
        cal = self.report.get("calibration")
        if cal:
            lines.append(
                f"filter: calibration {cal['calibrator']['method']} on {cal.get('labelled_rows', 0)} labelled "
                f"rows ({cal.get('fit_on')}): teacher accuracy {cal.get('accuracy_before')} -> "
                f"{cal.get('accuracy_after')}"
            )
        th = self.report.get("fitted_threshold")
        if th:
            lines.append(
                f"filter: min_confidence {th['threshold']} fitted for {th['target']} on {th['labelled_rows']} "
                f"labelled rows: precision {th['precision']} (95% {th['precision_ci_low']}-"
                f"{th['precision_ci_high']}, cross-fitted), keeps {th['kept_share']:.1%} of the answers"
            )
        return lines


def labelled_rows(
    fit_on: str, rows: list[Row], human: list[Row] | None, heldout: list[Row] | None
) -> tuple[str, list[Row]]:
    """(where they came from, teacher answer rows with a `gold_label`)."""
    if fit_on in ("auto", "human") and human:
        by_text = {normalize_text(h["text"]): h["answer"] for h in human}
        matched = [{**r, "gold_label": by_text[k]} for r in rows if (k := normalize_text(r["text"])) in by_text]
        if matched or fit_on == "human":
            return "human", matched
    if fit_on in ("auto", "inputs"):
        return "inputs", [r for r in rows if r.get("gold_label") is not None]
    if fit_on == "heldout":
        return "heldout", [r for r in heldout or [] if r.get("gold_label") is not None and calibration_half(r["id"])]
    return fit_on, []


def contextual_calibration(task: Task, filters: Filters) -> bool:
    """Calibrated confidence by contextual calibration: the teacher also answers content-free inputs."""
    return (
        task.type == "classification"
        and filters.confidence == "calibrated"
        and filters.calibration.method == "contextual"
    )


def fits_on_heldout(task: Task, filters: Filters) -> bool:
    """Does the filter fit on the held-out set's calibration half (so the student is scored on the other)?"""
    if task.type != "classification" or filters.calibration.fit_on != "heldout":
        return False  # asked first: the keys below matter only then (the evaluate stage declares them so)
    calibrated = filters.confidence == "calibrated" and filters.calibration.method == "temperature"
    return calibrated or filters.threshold_target is not None


def calibration_half(row_id: Any) -> bool:
    """The held-out rows a `fit_on: heldout` fit reads; the student is scored on the others."""
    return half(str(row_id)) == 0


def _accuracy(rows: list[Row], labels: tuple[str, ...], measure: str, calibrator: Calibrator) -> float | None:
    scored = [score(r, labels, measure, 0.0, calibrator).label for r in rows]
    pairs = [(s, r["gold_label"]) for s, r in zip(scored, rows)]
    return round(sum(s == g for s, g in pairs) / len(pairs), 6) if pairs else None


def _calibrator(
    filters: Filters, labels: tuple[str, ...], labelled: list[Row], content_free: list[Row] | None
) -> Calibrator:
    if filters.calibration.method == "contextual":
        dists = [r.get("label_probs") for r in content_free or []]
        prior = mean_distribution([d for d in dists if d], labels)
        if not prior:
            raise StageError(
                "contextual calibration needs the teacher's label probabilities for the content-free "
                "inputs, and none came back: set teacher.top_logprobs >= 1, or filters.calibration.method: "
                "temperature"
            )
        return Calibrator("contextual", prior=prior)
    with_probs = [r for r in labelled if r.get("label_probs")]
    if not with_probs:
        raise StageError(
            "calibrated confidence by temperature needs labelled rows with the teacher's label "
            "probabilities (filters.calibration.fit_on): give some inputs a `label`, add data.human, "
            "or use filters.calibration.method: contextual, which needs no labels"
        )
    temperature = fit_temperature([r["label_probs"] for r in with_probs], [r["gold_label"] for r in with_probs], labels)
    return Calibrator("temperature", temperature=temperature)


def fit_confidence(
    task: Task,
    filters: Filters,
    rows: list[Row],
    *,
    human: list[Row] | None = None,
    heldout: list[Row] | None = None,
    content_free: list[Row] | None = None,
) -> FitResult:
    labels = tuple(task.labels or ())
    calibrated = filters.confidence == "calibrated"
    target = filters.threshold_target
    if not calibrated and target is None:
        return FitResult()
    source, labelled = labelled_rows(filters.calibration.fit_on, rows, human, heldout)
    report: dict[str, Any] = {}
    calibrator = Calibrator()
    if calibrated:
        calibrator = _calibrator(filters, labels, labelled, content_free)
        report["calibration"] = {
            "calibrator": calibrator.describe(),
            "fit_on": source,
            "labelled_rows": len(labelled),
            "accuracy_before": _accuracy(labelled, labels, "renormalised", calibrator),
            "accuracy_after": _accuracy(labelled, labels, "calibrated", calibrator),
        }
        if calibrator.method == "contextual":
            report["calibration"]["content_free_inputs"] = len(content_free or [])
    if target is None:
        return FitResult(calibrator=calibrator, report=report)
    if "target_precision" in target and not labelled:
        raise StageError(
            f"filters.min_confidence {target} is fitted on labelled rows, and there are none "
            f"(filters.calibration.fit_on: {filters.calibration.fit_on}): give some inputs a `label`, "
            "add data.human, or set fit_on: heldout"
        )
    scored = [(r, score(r, labels, filters.confidence, filters.min_label_mass, calibrator)) for r in rows]
    every = [s.confidence for r, s in scored if s.confidence is not None and r.get("error") is None]
    labelled_scores = []
    for r in labelled:
        s = score(r, labels, filters.confidence, filters.min_label_mass, calibrator)
        if s.confidence is not None:
            labelled_scores.append(Labelled(str(r["id"]), s.confidence, s.label == r["gold_label"]))
    threshold, fitted = fit(target, labelled_scores, every)
    fitted["fit_on"] = source
    report["fitted_threshold"] = fitted
    return FitResult(
        min_confidence=threshold,
        calibrator=calibrator,
        report=report,
        curve=curve(labelled_scores) if labelled_scores else [],
    )
