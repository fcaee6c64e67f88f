"""The one-screen summary of the last build, read from the stages' reports."""

from __future__ import annotations

import json
from typing import Any

from distillbuild import layout
from distillbuild.spec import Spec


def _read(spec: Spec, rel: str) -> dict[str, Any] | None:
    path = spec.dir / rel
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _pct(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"


HEADLINE = {
    "classification": ("accuracy", "accuracy"),
    "extraction": ("field_accuracy", "fields"),
    "generation": ("geval_mean", "G-Eval"),
}


def summary_text(spec: Spec) -> str:
    teacher = _read(spec, layout.TEACHER_REPORT)
    filt = _read(spec, layout.FILTER_REPORT)
    metrics = _read(spec, layout.METRICS)
    decision = _read(spec, layout.DECISION)
    lines = [f"distill summary: {spec.name}"]
    if teacher:
        who = f"{teacher['provider']}:{teacher['model']}" + (
            " (SIMULATED stand-in, not a real model)" if teacher["simulated"] else ""
        )
        c = teacher["calls"]
        lines.append(f"  teacher    {who}")
        lines.append(
            f"  calls      {c['requested']} requested, {c['from_cache']} from cache, {c['billed']} billed, "
            f"${teacher['cost_usd']:.4f}"
        )
    else:
        lines.append("  teacher    not run yet")
    if filt:
        rejected = ", ".join(f"{k} {v}" for k, v in filt["by_reason"].items() if v) or "none"
        lines.append(f"  rows kept  {filt['kept']} of {filt['rows']} (rejected: {rejected})")
    if filt and filt.get("judge"):
        judge = filt["judge"]
        calls = judge.get("calls") or {}
        lines.append(
            f"  judge      {judge.get('provider')}:{judge.get('model')}"
            + (" (SIMULATED stand-in)" if judge.get("simulated") else "")
            + f", {calls.get('billed', 0)} billed, ${judge.get('cost_usd') or 0:.4f}"
        )
    if metrics:
        # The headline metric of each task type: what its gates usually bound.
        name, label = HEADLINE.get(spec.task.type, HEADLINE["classification"])
        lines.append(
            f"  {label:<10} student {_pct(metrics.get(name))}, teacher {_pct(metrics.get('teacher_' + name))} "
            f"on {metrics.get('heldout_rows')} held-out rows"
        )
        lines.append(
            f"  retention  {_pct(metrics.get('retention'))}   latency p50 {metrics.get('latency_p50_ms')} ms, "
            f"p95 {metrics.get('latency_p95_ms')} ms"
        )
    if decision:
        failed = [g["gate"] for g in decision["gates"] if not g["pass"]]
        verdict = "PASS" if decision["verdict"] == "pass" else f"FAIL ({', '.join(failed)})"
        lines.append(f"  gate       {verdict}")
    else:
        lines.append("  gate       not run yet")
    exported = _read(spec, layout.EXPORT_REPORT) if spec.export else None
    if exported:
        lines.append(
            f"  export     {exported['format']} ({exported['quantize']}), agreement {exported['agreement']:.4f}; "
            f"latency p50 {exported['latency_p50_ms']} ms against {exported['student_latency_p50_ms']} ms "
            f"({exported['speedup_p50']}x)"
        )
    return "\n".join(lines)
