"""`route` (only when the spec has a `route` section): the student answers what it is confident
about, the teacher the rest, with the threshold set on the held-out set for `route`'s target.

From evaluate's predictions (the student's label and its probability, the teacher's label, the
gold label per held-out row; distillbuild/evaluate/routing.py): the coverage/accuracy curve (a
DVC plot), the threshold fitted on every row (the one to deploy), and the routed system scored
cross-fitted, each half with the threshold fitted on the other: its accuracy with a bootstrap
95% interval and the share sent to the teacher. Beside them the student alone, the teacher alone,
and what 1,000 requests cost each way (the student answers every request first; the teacher
only the routed ones).
"""

from __future__ import annotations

from pathlib import Path

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.evaluate.routing import NEVER, Row, Target, choose, cross_fit, curve
from distillbuild.io import read_json, read_json_or_none, write_json
from distillbuild.markup import charts
from distillbuild.markup.tables import table
from distillbuild.measurements import read_report, write_report
from distillbuild.metric_names import MEASURED_METRICS
from distillbuild.pipeline.contract import Out, uncached
from distillbuild.spec import Spec
from distillbuild.stats import bootstrap_mean_interval

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

READS = ("route", "evaluation.bootstrap")


def applies(spec: Spec) -> bool:
    return spec.route is not None


def deps(spec: Spec) -> list[str]:
    return [layout.PREDICTIONS, layout.METRICS]


def metrics(spec: Spec) -> list[Out]:
    return [uncached(layout.ROUTE_REPORT)]


def plots(spec: Spec) -> list[Out]:
    return [uncached(layout.ROUTE_CURVE)]


def views(spec: Spec) -> list[dict]:
    return [
        {
            layout.ROUTE_CURVE: {
                "x": "coverage",
                "y": "accuracy",
                "template": "linear",
                "title": "Routed accuracy by the share the student answers",
            }
        }
    ]


def rows_from(predictions: list[dict]) -> list[Row]:
    if predictions and "actual" not in predictions[0]:
        raise StageError("routing reads classification predictions (actual, predicted, teacher, student_confidence)")
    return [
        Row(str(p["id"]), p.get("student_confidence"), p["predicted"] == p["actual"], p["teacher"] == p["actual"])
        for p in predictions
    ]


def target_met(rows: list[Row], threshold: float, target: Target) -> bool:
    """Whether routing every held-out row at `threshold` meets the target (fitted on them all)."""
    point = next(p for p in curve(rows) if p["threshold"] == (None if threshold == NEVER else round(threshold, 6)))
    if target.min_accuracy is not None:
        return point["accuracy"] >= target.min_accuracy
    return 1 - point["coverage"] <= target.max_teacher_share + 1e-9


def run(spec: Spec) -> int:
    rows = rows_from(read_json(Path(layout.PREDICTIONS)))
    evaluated = read_report(Path(layout.METRICS))  # with the student's cost, measured on this machine
    target = Target(spec.route.min_accuracy, spec.route.max_teacher_share)
    right, to_teacher, halves = cross_fit(rows, target)
    deployed = choose(rows, target)
    share = sum(to_teacher) / len(rows)
    student_cost, teacher_cost = evaluated.get("student_cost_per_1k_usd"), evaluated.get("teacher_cost_per_1k_usd")
    report = {
        "target": {k: v for k, v in vars(target).items() if v is not None},
        "threshold": None if deployed == NEVER else round(deployed, 6),
        "target_met": target_met(rows, deployed, target),
        "cross_fit_thresholds": [None if t == NEVER else round(t, 6) for t in halves],
        "routed_accuracy": round(sum(right) / len(rows), 6),
        **{
            f"routed_accuracy_{k}": v
            for k, v in bootstrap_mean_interval(  # gates may name routed_accuracy (bound: ci_low too)
                [float(r) for r in right], spec.evaluation.bootstrap
            ).items()
        },
        "teacher_share": round(share, 6),
        "student_accuracy": round(sum(r.student_right for r in rows) / len(rows), 6),
        "teacher_accuracy": round(sum(r.teacher_right for r in rows) / len(rows), 6),
        "heldout_rows": len(rows),
        "student_cost_per_1k_usd": student_cost,
        "teacher_cost_per_1k_usd": teacher_cost,
        "routed_cost_per_1k_usd": (
            round(student_cost + share * teacher_cost, 6)
            if student_cost is not None and teacher_cost is not None
            else None
        ),
    }
    write_report(Path(layout.ROUTE_REPORT), report, MEASURED_METRICS)
    write_json(Path(layout.ROUTE_CURVE), curve(rows))
    log(
        f"route: threshold {report['threshold']} for {report['target']} (met on all rows: "
        f"{report['target_met']}); cross-fitted on {len(rows)} held-out rows: "
        f"routed accuracy {report['routed_accuracy']:.4f} ({report.get('routed_accuracy_ci_low')}-"
        f"{report.get('routed_accuracy_ci_high')}), {share:.1%} to the teacher; student alone "
        f"{report['student_accuracy']:.4f}, teacher alone {report['teacher_accuracy']:.4f}; per 1,000 requests "
        f"${report['routed_cost_per_1k_usd']} routed, ${student_cost} student, ${teacher_cost} teacher"
    )
    return 0


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the coverage/accuracy curve and the routed system."""
    out = []
    curve, route = read_json_or_none(spec.dir / layout.ROUTE_CURVE), read_report(spec.dir / layout.ROUTE_REPORT)
    if curve:
        pts = sorted((c["coverage"], c["accuracy"]) for c in curve)
        out.append(
            "<h2>Routing</h2>"
            + charts.lines(
                [("routed accuracy", pts)],
                title="Coverage and accuracy",
                x_label="share answered by the student",
                y_label="accuracy",
            )
        )
        if route:
            out.append(table([[k, v] for k, v in route.items() if not isinstance(v, (dict, list))], ["", ""]))
    return "".join(out)
