"""`gate`: promotion is refused unless every gate in `gates` holds.

Fails closed: a metric that is missing, not a number, or NaN fails its gate, and so does a
held-out set smaller than evaluation.min_heldout_rows. Prints the table of gate, required,
observed and verdict on stderr, like every stage; writes decision.json with the build's lineage
(hashes of the spec, data, teacher answers, dataset, model files and metrics); on a pass writes
the model card; exits 1 on failure.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any, Mapping

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import EXIT_GATE_FAILED
from distillbuild.io import read_json_or_none, write_text
from distillbuild.markup.tables import fmt
from distillbuild.markup.tables import table as html_table
from distillbuild.measurements import read_measured, read_report, write_report
from distillbuild.metric_names import ROUTE_METRICS, gate_figure
from distillbuild.pipeline.contract import Out, posix, uncached
from distillbuild.pipeline.lineage import lineage
from distillbuild.pipeline.model_card import model_card
from distillbuild.spec import Spec

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

READS = (
    "name",
    "task.type",
    "task.instruction",
    "task.labels",
    "data",
    "teacher.provider",
    "teacher.model",
    "teacher.base_url",
    "teacher.terms",
    "teacher.pipeline",
    "student.kind",
    "student.base_model",
    "evaluation.min_heldout_rows",
    "gates",
    "promote",
    "route",
)
# Its lineage records the spec as every stage sees it (the values of their declared keys), so it
# declares their keys as well (pipeline/stage_list.py), and run() is given them.
READS_EVERY_STAGE = True


def deps(spec: Spec) -> list[str]:
    routed = [layout.ROUTE_REPORT] if spec.route is not None else []  # gates may bound the routed system
    return [
        layout.METRICS,
        *routed,
        layout.MODEL_DIR,
        layout.DATASET_DIR,
        layout.TEACHER_ANSWERS,
        layout.TEACHER_HELDOUT,
        posix(spec.data_files.inputs),
        posix(spec.data_files.heldout),
    ]


def outs(spec: Spec) -> list[Out]:
    return [uncached(layout.DECISION), uncached(layout.MODEL_CARD)]


def check(name: str, bound: Mapping[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One gate's row; `bound` is {min, max, bound} as written (the order of min and max shows)."""
    on = gate_figure(bound)
    observed = metrics.get(name if on == "value" else f"{name}_{on}")
    required = " and ".join(f"{'>=' if k == 'min' else '<='} {v:g}" for k, v in bound.items() if k in ("min", "max"))
    gate = name if on == "value" else f"{name} ({on.replace('_', ' ')})"
    row = {"gate": gate, "required": required, "observed": observed, "pass": False, "reason": ""}
    if not isinstance(observed, (int, float)) or isinstance(observed, bool) or math.isnan(observed):
        row["reason"] = "metric missing or not a number"
        return row
    low, high = bound.get("min"), bound.get("max")
    if low is not None and observed < low:
        row["reason"] = f"below {low:g}"
    elif high is not None and observed > high:
        row["reason"] = f"above {high:g}"
    else:
        row["pass"] = True
    return row


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("missing" if v is None else str(v))

    cells = [("gate", "required", "observed", "verdict")] + [
        (r["gate"], r["required"], fmt(r["observed"]), "pass" if r["pass"] else f"FAIL ({r['reason']})") for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}  # fails every gate below: closed, not open


def _with_route(spec: Spec, metrics: dict[str, Any], routed: dict[str, Any]) -> dict[str, Any]:
    """evaluate's metrics, and the route stage's when the spec routes (their names never clash)."""
    if spec.route is None:
        return metrics
    names = [*ROUTE_METRICS, *(f"{n}_{end}" for n in ROUTE_METRICS for end in ("ci_low", "ci_high"))]
    return {**metrics, **{k: routed[k] for k in names if k in routed}}


def _built_and_measured(spec: Spec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics the build decided (metrics.json, the route report), and those this machine
    measured (latency and what follows from it: distillbuild/measurements.py)."""
    metrics, route = Path(layout.METRICS), Path(layout.ROUTE_REPORT)
    built = _with_route(spec, _metrics(metrics), _metrics(route))
    measured = _with_route(spec, read_measured(metrics), read_measured(route))
    return built, measured


ON_THIS_MACHINE = "observed_on_this_machine"


def run(spec: Spec, keys: tuple[str, ...] = ()) -> int:
    built, measured = _built_and_measured(spec)
    metrics = {**built, **measured}
    rows = [check(name, bound, metrics) for name, bound in spec.gates.items()]
    if "heldout_rows" not in spec.gates:  # too few rows prove nothing
        rows.append(check("heldout_rows", {"min": spec.evaluation.min_heldout_rows}, metrics))
    log(table(rows))
    # A gate on a measured figure (latency): the record keeps its verdict; the figure, this
    # machine's, is kept apart (measurements.py), so the record does not change with every run.
    seen = {r["gate"]: r["observed"] for r, name in zip(rows, spec.gates) if name in measured}
    rows = [{**r, "observed": None, "measured": True} if r["gate"] in seen else r for r in rows]
    passed = all(r["pass"] for r in rows)
    promote = spec.registry_name
    record = lineage(spec, keys)
    decision = {"verdict": "pass" if passed else "fail", "model": promote, "gates": rows, "lineage": record}
    write_report(Path(layout.DECISION), {**decision, ON_THIS_MACHINE: seen}, (ON_THIS_MACHINE,))
    card = Path(layout.MODEL_CARD)
    if passed:
        write_text(card, model_card(spec, built, rows, record))
    elif card.exists():
        card.unlink()  # no card for a model that failed its gates
    if passed:
        log(f"gate: PASS: {promote} may be promoted (`distill promote`)")
        return 0
    failed = ", ".join(r["gate"] for r in rows if not r["pass"])
    log(f"gate: FAIL ({failed}): {promote} is not promoted")
    return EXIT_GATE_FAILED


def summary_lines(spec: Spec) -> list[str]:
    """Its line in `distill summary`: the verdict, and the gates that failed."""
    decision = read_json_or_none(spec.dir / layout.DECISION)
    if not decision:
        return ["  gate       not run yet"]
    failed = ", ".join(g["gate"] for g in decision["gates"] if not g["pass"])
    return [f"  gate       {'PASS' if decision['verdict'] == 'pass' else f'FAIL ({failed})'}"]


def headline_html(spec: Spec) -> str:
    """Its part of the page's first screen: the verdict and the revision it was reached at."""
    decision = read_json_or_none(spec.dir / layout.DECISION)
    if not decision:
        return '<p><span class="muted">not gated yet</span></p>'
    verdict, lineage = decision.get("verdict"), decision.get("lineage") or {}
    badge = f'<span class="badge {"pass" if verdict == "pass" else "fail"}">{escape(str(verdict).upper())}</span>'
    revision = escape(str(lineage.get("git_revision") or "-")[:10])
    dirty = " (uncommitted changes)" if lineage.get("git_dirty") else ""
    return f"<p>{badge} <span class=muted>gated at git {revision}{dirty}</span></p>"


def _gates_html(decision: dict | None) -> str:
    if not decision:
        return ""
    seen = decision.get(ON_THIS_MACHINE) or {}  # a measured figure: this machine's

    def observed(g: dict) -> str:
        return (
            fmt(seen.get(g["gate"])) + " <span class=muted>(this machine)</span>"
            if g.get("measured")
            else fmt(g["observed"])
        )

    rows = "".join(
        f"<tr><td>{escape(g['gate'])}</td><td>{escape(g['required'])}</td><td class=num>{observed(g)}"
        f"</td><td class={'pass' if g['pass'] else 'fail'}>{'pass' if g['pass'] else 'FAIL ' + escape(g['reason'])}"
        "</td></tr>"
        for g in decision.get("gates", [])
    )
    return (
        f"<h2>Gates</h2><table><tr><th>gate</th><th>required</th><th>observed</th><th>verdict</th></tr>{rows}</table>"
    )


def _lineage_and_card_html(spec: Spec, decision: dict | None) -> str:
    lineage = (decision or {}).get("lineage") or {}
    out = []
    if lineage:
        flat = [[k, v] for k, v in lineage.items() if not isinstance(v, dict)]
        flat += [[f"data {k}", v] for k, v in (lineage.get("data_sha256") or {}).items()]
        flat += [
            [f"teacher {k}", v] for k, v in (lineage.get("teacher") or {}).items() if not isinstance(v, (dict, list))
        ]
        out.append("<h2>Lineage</h2>" + html_table(flat, ["", ""]))
    card = spec.dir / layout.MODEL_CARD
    if card.is_file():
        out.append(f"<h2>Model card</h2><pre>{escape(card.read_text(encoding='utf-8'))}</pre>")
    return "".join(out)


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the gates, the lineage and the model card."""
    decision = read_report(spec.dir / layout.DECISION)
    return _gates_html(decision) + _lineage_and_card_html(spec, decision)
