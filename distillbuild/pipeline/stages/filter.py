"""`filter`: keep the teacher answers a student should learn from; a reason on every rejection.

The checks and their order are in distillbuild/curate/filters.py. The held-out inputs are read
only to drop training inputs that copy them (decontamination); their answers are never used.
With filters.judge, an LLM judge (DeepEval's G-Eval, cached) scores the answers that pass every
other row check first (distillbuild/curate/judging.py); a judge failure stops the stage (exit 3).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.curate.filters import FilterConfig, Row, curate, human_rows
from distillbuild.curate.fitting import FitResult, contextual_calibration, fit_confidence, fits_on_heldout
from distillbuild.curate.judging import judge_rows, rows_to_judge, summary
from distillbuild.endpoints.open import open_judge
from distillbuild.io import read_jsonl, write_json, write_jsonl
from distillbuild.markup import charts
from distillbuild.markup.tables import rows_of, table
from distillbuild.measurements import read_report, write_report
from distillbuild.metric_names import JUDGE_MEASURED
from distillbuild.pipeline.contract import Out, posix, uncached
from distillbuild.pipeline.execution import cluster_for
from distillbuild.pipeline.privacy_doors import spec_rows
from distillbuild.spec import Spec

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

READS = (
    "data.scrub",  # rows masked as they are read (pipeline/privacy_doors.py)
    "data.heldout",
    "data.heldout_sets",
    "data.human",
    "task.type",
    "task.labels",
    "task.output_schema",
    "task.input_template",
    # The whole section, min_rows_per_label (the dataset stage's) too: declared key by key, a key
    # added to distill.yaml would go unseen by `dvc repro` until `distill compile`.
    "filters",
)
READS_WHEN = {
    "data.human": lambda spec: spec.data_files.human is not None,  # DVC refuses a param the file lacks
    "data.heldout_sets": lambda spec: bool(spec.data_files.heldout_sets),
}


def deps(spec: Spec) -> list[str]:
    files = [layout.TEACHER_ANSWERS, posix(spec.data_files.heldout)]
    if spec.data_files.human:  # people's labels, trained on beside the teacher's
        files.append(posix(spec.data_files.human))
    files += [posix(path) for path in spec.data_files.heldout_sets.values()]  # decontaminated against too
    if contextual(spec):
        files.append(layout.TEACHER_CONTENT_FREE)
    if fits_on_heldout(
        spec.task, spec.filters
    ):  # the calibration half of the held-out set: the teacher's answers there
        files.append(layout.TEACHER_HELDOUT)
    judge = spec.filters.judge
    if judge is not None and judge.provider == "simulated":  # the stand-in judge's answer key
        files += [p for p in [posix(judge.simulated.answers)] if p not in files]
    return files


def outs(spec: Spec) -> list[Out]:
    return [layout.FILTER_KEPT, layout.FILTER_REJECTED, layout.FILTER_REPORT]


def plots(spec: Spec) -> list[Out]:
    return [uncached(layout.FILTER_THRESHOLD_CURVE)] if fitted_threshold(spec) else []


def views(spec: Spec) -> list[dict]:
    if not fitted_threshold(spec):
        return []
    return [
        {
            layout.FILTER_THRESHOLD_CURVE: {
                "x": "kept_share",
                "y": "precision",
                "template": "linear",
                "title": "The teacher's precision on labelled rows by the share the filter keeps",
            }
        }
    ]


def fitted_threshold(spec: Spec) -> bool:
    """filters.min_confidence is a target ({target_precision} or {keep_share}), fitted on labelled rows."""
    return spec.filters.threshold_target is not None


def contextual(spec: Spec) -> bool:
    """Calibrated confidence by contextual calibration: the teacher answers content-free inputs."""
    return contextual_calibration(spec.task, spec.filters)


def judge(spec: Spec, rows: list[Row], cfg: FilterConfig) -> dict[str, Any]:
    """filters.judge's verdicts on the rows that need one; its endpoint open only when some do."""
    judge_section = spec.filters.judge
    todo = rows_to_judge(rows, cfg)
    opened = (
        open_judge(judge_section, spec.dir, spec.repo_root, "filters.judge", log) if todo else nullcontext((None, None))
    )
    with opened as (settings, cache):
        return judge_rows(rows, todo, judge_section, settings, cache, log)


def fit(spec: Spec, rows: list[Row], human: list[Row] | None) -> FitResult:
    """The calibrator and the fitted threshold (curate/fitting.py) from the spec's labelled rows."""
    heldout = None
    if fits_on_heldout(spec.task, spec.filters):
        gold = {r["id"]: r["label"] for r in spec_rows(spec, spec.data_files.heldout, need_label=True)}
        heldout = [{**r, "gold_label": gold.get(r["id"])} for r in read_jsonl(Path(layout.TEACHER_HELDOUT))]
    content_free = read_jsonl(Path(layout.TEACHER_CONTENT_FREE)) if contextual(spec) else None
    return fit_confidence(spec.task, spec.filters, rows, human=human, heldout=heldout, content_free=content_free)


def run(spec: Spec) -> int:
    rows = read_jsonl(Path(layout.TEACHER_ANSWERS))
    human = (
        human_rows(spec_rows(spec, spec.data_files.human, need_label=True, door="human"))
        if spec.data_files.human
        else None
    )
    fitted = fit(spec, rows, human) if spec.task.type == "classification" else FitResult()
    cfg = FilterConfig.from_spec(spec.task, spec.filters, fitted.min_confidence, fitted.calibrator)
    sets = [spec.data_files.heldout, *spec.data_files.heldout_sets.values()]  # every held-out set
    heldout = (
        [r["text"] for path in sets for r in spec_rows(spec, path, need_label=False)] if cfg.decontaminate else None
    )
    verdicts = judge(spec, rows, cfg) if spec.filters.judge else None
    with cluster_for(spec, "filter") as on_ray:  # the set passes: local, or spread over the Ray cluster
        kept, rejected, report = curate(rows, replace(cfg, on_ray=on_ray), heldout, human)
    report["confidence"] = {"measure": cfg.confidence, "min_confidence": cfg.min_confidence, **fitted.report}
    if fitted.curve:
        write_json(Path(layout.FILTER_THRESHOLD_CURVE), fitted.curve)
    for line in fitted.log_lines():
        log(line)
    if verdicts is not None:
        report["judge"] = verdicts
        log(summary(verdicts))
    write_jsonl(Path(layout.FILTER_KEPT), kept)
    write_jsonl(Path(layout.FILTER_REJECTED), rejected)
    write_report(Path(layout.FILTER_REPORT), report, JUDGE_MEASURED)
    by_reason = ", ".join(f"{k} {v}" for k, v in report["by_reason"].items() if v) or "none"
    log(f"filter: kept {report['kept']} of {report['rows']} (rejected: {by_reason})")
    if human is not None:
        h = report["human"]
        log(
            f"filter: {h['kept']} of {h['rows']} human rows kept; the teacher answered {h['answered_by_teacher_too']} "
            f"of the same inputs and disagreed with the person on {h['teacher_disagrees']}"
        )
    seeded = report.get("seed")
    if seeded:
        agreement = (
            (
                f"; the teacher filed {seeded['teacher_agrees_with_asked']} of {seeded['answered']} under the "
                "category they were written for"
            )
            if seeded.get("teacher_agreement_rate") is not None
            else ""
        )
        log(f"filter: {seeded['kept']} of {seeded['rows']} generated inputs kept{agreement}")
    audit = report.get("gold_audit")
    if audit:
        log(
            f"filter: against the {audit['rows_with_gold']} gold labels in the inputs, the teacher's labels are "
            f"{audit['teacher_accuracy_all']} right over all answers and {audit['teacher_accuracy_kept']} "
            f"over the {audit['kept_with_gold']} kept"
        )
    return 0


def summary_lines(spec: Spec) -> list[str]:
    """Its lines in `distill summary`: rows kept, why the others went, and the judge's bill."""
    report = read_report(spec.dir / layout.FILTER_REPORT)
    if not report:
        return []
    rejected = ", ".join(f"{k} {v}" for k, v in report["by_reason"].items() if v) or "none"
    lines = [f"  rows kept  {report['kept']} of {report['rows']} (rejected: {rejected})"]
    judge = report.get("judge")
    if judge:
        calls = judge.get("calls") or {}
        lines.append(
            f"  judge      {judge.get('provider')}:{judge.get('model')}"
            + (" (SIMULATED stand-in)" if judge.get("simulated") else "")
            + f", {calls.get('billed', 0)} billed, ${judge.get('cost_usd') or 0:.4f}"
        )
    return lines


REPORT_EXAMPLES_PER_REASON = 3  # rejected rows shown per reason on the report page


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the reasons, the class balance, examples of rejected rows."""
    filt = read_report(spec.dir / layout.FILTER_REPORT)
    if not filt:
        return ""
    reasons = sorted(((k, v) for k, v in (filt.get("by_reason") or {}).items() if v), key=lambda kv: -kv[1])
    out = [
        f"<h2>Filter</h2><p>{filt['kept']} of {filt['rows']} rows kept, {filt['rejected']} rejected.</p>",
        "<div class=charts>",
        charts.bars(reasons, title="Rejected rows by reason", color=charts.PALETTE[3]),
        charts.bars(
            sorted((filt.get("class_balance") or {}).items()),
            title="Kept rows by class (class balance)",
            color=charts.PALETTE[2],
        ),
        "</div>",
    ]
    examples: dict[str, list[dict]] = {}
    for row in rows_of(spec.dir / layout.FILTER_REJECTED):
        bucket = examples.setdefault(row.get("reason", "?"), [])
        if len(bucket) < REPORT_EXAMPLES_PER_REASON:
            bucket.append(row)
    if examples:
        rows = [
            [reason, (r.get("text") or "")[:160], r.get("answer"), r.get("detail")]
            for reason, rs in examples.items()
            for r in rs
        ]
        out.append("<h3>Examples of rejected rows</h3>" + table(rows, ["reason", "input", "teacher's answer", "why"]))
    return "".join(out)
