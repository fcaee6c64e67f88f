"""`distill report`: the last build as one self-contained HTML page a reviewer can open anywhere.

Read from the stages' own outputs (nothing is recomputed): the summary and verdict, the teacher's
calls, cache and cost, the filter's reasons with examples of rejected rows, the class balance,
the training curves, the confusion matrix and per-class F1, latency and the machine it was
measured on, the gates, the route's coverage/accuracy curve and the export when built, lineage
and the model card. Charts are inline SVG; a Content-Security-Policy forbids the page any
request, so it renders the same offline, in CI artifacts and in mail.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.reports import charts
from distillbuild.spec import Spec

EXAMPLES_PER_REASON = 3

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;max-width:1080px;margin:24px auto;padding:0 20px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d9dee4;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 10px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{color:#6b7785;font-weight:600} .num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1e7b45;font-weight:700} .fail{color:#b42323;font-weight:700} .muted{color:#6b7785}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:700}
.badge.pass{background:#1e7b45;color:#fff} .badge.fail{background:#b42323;color:#fff}
.warn{background:#fff4e0;border:1px solid #f0c36d;padding:8px 12px;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:18px} svg.chart{background:#fff;font-size:11px}
svg .t{font-size:13px;font-weight:600;fill:#1f2933} svg .m{fill:#4a5561} svg .w{fill:#fff} svg text{fill:#1f2933}
pre{background:#f6f8fa;padding:12px;overflow:auto;font-size:12px;white-space:pre-wrap} code{font-size:12px}
"""


def _read(spec: Spec, rel: str) -> Any:
    try:
        return json.loads((spec.dir / rel).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _jsonl(spec: Spec, rel: str) -> list[dict]:
    path = spec.dir / rel
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if isinstance(c, (int, float)) else ''}>{_fmt(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _interval(m: dict, name: str) -> str:
    v, lo, hi = m.get(name), m.get(f"{name}_ci_low"), m.get(f"{name}_ci_high")
    if v is None:
        return "-"
    return f"{v:.4f}" + (f" <span class=muted>({lo:.3f}-{hi:.3f})</span>" if lo is not None and hi is not None else "")


def _summary(spec: Spec, metrics: dict | None, decision: dict | None, teacher: dict | None) -> str:
    verdict = (decision or {}).get("verdict")
    badge = (
        f'<span class="badge {"pass" if verdict == "pass" else "fail"}">{escape(str(verdict).upper())}</span>'
        if verdict
        else '<span class="muted">not gated yet</span>'
    )
    lineage = (decision or {}).get("lineage") or {}
    out = [
        f"<h1>{escape(spec.name)} {badge}</h1>",
        f"<p class=muted>{escape(spec.task.type)} &middot; student {escape(spec.student.kind)} "
        f"<code>{escape(spec.student.base_model)}</code> &middot; teacher <code>{escape(spec.teacher.provider)}:"
        f"{escape(spec.teacher.model)}</code> &middot; git {escape(str(lineage.get('git_revision') or '-')[:10])}"
        f"{' (uncommitted changes)' if lineage.get('git_dirty') else ''}</p>",
    ]
    if teacher and teacher.get("simulated"):
        out.append(
            "<p class=warn>The teacher was the <b>simulated stand-in</b> (an offline server answering from an "
            "answer key): these figures test the pipeline, not a real model.</p>"
        )
    if metrics:
        rows = []
        for name in ("accuracy", "teacher_accuracy", "retention", "field_accuracy", "geval_mean"):
            if name in metrics:
                rows.append(f"<tr><th>{name}</th><td class=num>{_interval(metrics, name)}</td></tr>")
        for name in (
            "macro_f1",
            "teacher_macro_f1",
            "baseline_accuracy",
            "agreement",
            "latency_p50_ms",
            "latency_p95_ms",
            "teacher_cost_per_1k_usd",
            "student_cost_per_1k_usd",
            "heldout_rows",
        ):
            if name in metrics:
                rows.append(f"<tr><th>{name}</th><td class=num>{_fmt(metrics[name])}</td></tr>")
        out.append("<table>" + "".join(rows) + "</table>")
    return "".join(out)


def _teacher(teacher: dict | None) -> str:
    if not teacher:
        return ""
    c, lat = teacher["calls"], teacher.get("latency_s") or {}
    chart = charts.bars(
        [("from the cache", c["from_cache"]), ("billed calls", c["billed"]), ("deduplicated", c["deduplicated"])],
        title="Teacher requests",
        color=charts.PALETTE[1],
    )
    rows = [
        ["requested", c["requested"]],
        ["from the cache", c["from_cache"]],
        ["billed", c["billed"]],
        ["cost (USD)", teacher.get("cost_usd")],
        ["prompt tokens", (teacher.get("tokens") or {}).get("prompt")],
        ["completion tokens", (teacher.get("tokens") or {}).get("completion")],
        ["latency p50 / p95 (s)", " / ".join(_fmt(lat.get(q)) for q in ("p50", "p95"))],
        ["errors", json.dumps(teacher.get("errors") or {})],
    ]
    return "<h2>Teacher</h2><div class=charts>" + _table(rows, ["", ""]) + chart + "</div>"


def _filter(spec: Spec, filt: dict | None) -> str:
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
    for row in _jsonl(spec, layout.FILTER_REJECTED):
        bucket = examples.setdefault(row.get("reason", "?"), [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append(row)
    if examples:
        rows = [
            [reason, (r.get("text") or "")[:160], r.get("answer"), r.get("detail")]
            for reason, rs in examples.items()
            for r in rs
        ]
        out.append("<h3>Examples of rejected rows</h3>" + _table(rows, ["reason", "input", "teacher's answer", "why"]))
    return "".join(out)


def _training(spec: Spec) -> str:
    history = _read(spec, layout.TRAIN_HISTORY) or []
    report = _read(spec, layout.TRAIN_REPORT) or {}
    if not history and not report:
        return ""
    steps = [(h["step"], h["loss"]) for h in history if isinstance(h.get("loss"), (int, float))]
    epochs = report.get("epochs") or []
    val = [(e["epoch"], e["val_loss"]) for e in epochs if isinstance(e.get("val_loss"), (int, float))]
    val_acc = [(e["epoch"], e["val_accuracy"]) for e in epochs if isinstance(e.get("val_accuracy"), (int, float))]
    out = ["<h2>Training</h2><div class=charts>"]
    out.append(charts.lines([("training loss", steps)], title="Training loss by step", x_label="step", y_label="loss"))
    if val or val_acc:
        series = [s for s in (("validation loss", val), ("validation accuracy", val_acc)) if s[1]]
        out.append(charts.lines(series, title="Validation by epoch", x_label="epoch", y_label="value"))
    out.append("</div>")
    facts = [
        [k, report[k]]
        for k in ("train_rows", "val_rows", "soft_label_rows", "best_epoch", "seconds", "trainer", "device")
        if k in report
    ]
    return "".join(out) + (_table(facts, ["", ""]) if facts else "")


def _evaluation(spec: Spec, metrics: dict | None) -> str:
    if not metrics:
        return ""
    out = ["<h2>Evaluation on the held-out set</h2><div class=charts>"]
    predictions = _read(spec, layout.PREDICTIONS) or []
    labels = list(spec.task.labels or [])
    if labels and predictions and "actual" in predictions[0]:
        index = {label: i for i, label in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for p in predictions:
            if p.get("actual") in index and p.get("predicted") in index:
                counts[index[p["actual"]]][index[p["predicted"]]] += 1
        out.append(
            charts.heat_grid(
                labels,
                counts,
                title="Confusion matrix (student)",
                row_title="rows: actual",
                col_title="columns: predicted",
            )
        )
    f1 = metrics.get("per_class_f1") or {}
    if f1:
        out.append(
            charts.bars(
                sorted(f1.items(), key=lambda kv: kv[1]),
                title="Per-class F1 (student)",
                value_format="{:.3f}",
                max_value=1.0,
            )
        )
    out.append("</div>")
    latency = metrics.get("latency") or {}
    if latency:
        machine = latency.get("machine") or {}
        rows = [
            ["method", latency.get("method")],
            ["rounds p50 (ms)", ", ".join(map(str, latency.get("rounds_p50_ms", [])))],
            ["rounds p95 (ms)", ", ".join(map(str, latency.get("rounds_p95_ms", [])))],
            *([k.replace("_", " "), json.dumps(v) if isinstance(v, list) else v] for k, v in machine.items()),
        ]
        out.append("<h3>Latency and the machine it was measured on</h3>" + _table(rows, ["", ""]))
    return "".join(out)


def _gates(decision: dict | None) -> str:
    if not decision:
        return ""
    rows = "".join(
        f"<tr><td>{escape(g['gate'])}</td><td>{escape(g['required'])}</td><td class=num>{_fmt(g['observed'])}"
        f"</td><td class={'pass' if g['pass'] else 'fail'}>{'pass' if g['pass'] else 'FAIL ' + escape(g['reason'])}"
        "</td></tr>"
        for g in decision.get("gates", [])
    )
    return (
        f"<h2>Gates</h2><table><tr><th>gate</th><th>required</th><th>observed</th><th>verdict</th></tr>{rows}</table>"
    )


def _route_and_export(spec: Spec) -> str:
    out = []
    curve, route = _read(spec, layout.ROUTE_CURVE), _read(spec, layout.ROUTE_REPORT)
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
            out.append(_table([[k, v] for k, v in route.items() if not isinstance(v, (dict, list))], ["", ""]))
    export = _read(spec, layout.EXPORT_REPORT)
    if export:
        files = export.get("files") or {export.get("quantize"): export}
        rows = [
            [
                kind,
                f.get("bytes"),
                f.get("agreement"),
                f.get("accuracy"),
                f.get("student_accuracy"),
                f.get("latency_p50_ms"),
                f.get("student_latency_p50_ms"),
            ]
            for kind, f in files.items()
        ]
        out.append(
            f"<h2>Export ({escape(str(export.get('format')))})</h2>"
            + _table(
                rows, ["file", "bytes", "agreement", "accuracy", "unexported accuracy", "p50 ms", "unexported p50 ms"]
            )
        )
    return "".join(out)


def _lineage_and_card(spec: Spec, decision: dict | None) -> str:
    lineage = (decision or {}).get("lineage") or {}
    out = []
    if lineage:
        flat = [[k, v] for k, v in lineage.items() if not isinstance(v, dict)]
        flat += [[f"data {k}", v] for k, v in (lineage.get("data_sha256") or {}).items()]
        flat += [
            [f"teacher {k}", v] for k, v in (lineage.get("teacher") or {}).items() if not isinstance(v, (dict, list))
        ]
        out.append("<h2>Lineage</h2>" + _table(flat, ["", ""]))
    card = spec.dir / layout.MODEL_CARD
    if card.is_file():
        out.append(f"<h2>Model card</h2><pre>{escape(card.read_text(encoding='utf-8'))}</pre>")
    return "".join(out)


def render(spec: Spec) -> str:
    metrics, decision = _read(spec, layout.METRICS), _read(spec, layout.DECISION)
    teacher, filt = _read(spec, layout.TEACHER_REPORT), _read(spec, layout.FILTER_REPORT)
    sections = [
        _summary(spec, metrics, decision, teacher),
        _teacher(teacher),
        _filter(spec, filt),
        _training(spec),
        _evaluation(spec, metrics),
        _gates(decision),
        _route_and_export(spec),
        _lineage_and_card(spec, decision),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(spec.name)}: distillbuild report</title><style>{STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write(spec: Spec, out: Path | None = None) -> Path:
    target = out or spec.dir / layout.BUILD / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(spec), encoding="utf-8")
    return target
