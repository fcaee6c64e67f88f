"""The diff report as Markdown: a pull-request comment."""

from __future__ import annotations

import json
import re
from typing import Any

CELL_CHARS = 60  # a table cell's value is cut after this many characters
MAX_CHANGE_ROWS = 50
MAX_METRIC_ROWS = 40


def code(text: str) -> str:
    """`text` as an inline code span, whatever backticks it holds."""
    text = " ".join(text.split("\n"))
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _value(value: Any, present: bool = True) -> str:
    if not present:
        return "*(absent)*"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    if len(text) <= CELL_CHARS:
        return code(text)
    if isinstance(value, list):
        size = f" ({len(value)} items)"
    elif isinstance(value, dict):
        size = f" ({len(value)} keys)"
    elif isinstance(value, str):
        size = f" ({len(value):,} characters)"
    else:
        size = ""
    return code(text[: CELL_CHARS - 1] + "…") + size


def _row(*cells: str) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _signed(v: Any) -> str:
    if v is None:
        return "–"
    text = _num(v)
    return text if text == "0" or text.startswith("-") else "+" + text


def _money(v: Any) -> str:
    return "n/a (no `teacher.price`)" if v is None else f"${v:,.4f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown for a pull-request comment."""
    lines = (
        _md_header(report)
        + _md_changes(report["changes"])
        + _md_stages(report["stages"])
        + _md_teacher(report["teacher"])
        + _md_metrics(report["metrics"])
    )
    return "\n".join(lines).rstrip() + "\n"


def _md_header(report: dict[str, Any]) -> list[str]:
    base = report["base"]
    lines: list[str] = [
        f"### distill diff: {code(str(report.get('name')))} against {code(base['rev'])}",
        "",
        f"Spec {code(report['spec'])}, compared with {code(base['rev'])} ({code(base['commit'][:10])}).",
        "",
    ]
    changes, stage_records = report["changes"], report["stages"]
    calls = report["teacher"]["new_calls"]
    summary = [
        f"{len(changes)} spec change{'s' if len(changes) != 1 else ''}",
        f"{sum(s['rebuilds'] for s in stage_records)} of {len(stage_records)} stages rebuild",
        ("teacher calls unknown" if calls is None else f"{calls:,} new teacher call{'s' if calls != 1 else ''}"),
        *(
            [f"{seeding['to_call']:,} seed generator call{'s' if seeding['to_call'] != 1 else ''}"]
            if (seeding := report["teacher"]["seed"]) is not None
            else []
        ),
        ("metrics compared" if report["metrics"]["available"] else "metrics not built on both sides"),
    ]
    lines += ["**" + " · ".join(summary) + "**", ""]
    for note in report["notes"]:
        lines += [f"> {note}", ""]
    if report["dvc_yaml"]["stale"]:
        what = "missing" if report["dvc_yaml"]["missing"] else "stale"
        lines += [
            f"> **Warning:** {code(report['dvc_yaml']['path'])} is {what}: run "
            f"{code('distill compile ' + report['spec'])} and commit it (`distill compile --check` fails). "
            "The stages below are those of the recompiled pipeline.",
            "",
        ]
    return lines


def _md_changes(changes: list[dict[str, Any]]) -> list[str]:
    lines = ["#### Spec changes", ""]
    if not changes:
        return lines + ["None: the two sides hold the same data (comments, formatting and key order do not count).", ""]
    lines += [_row("key", "old", "new"), _row("---", "---", "---")]
    for c in changes[:MAX_CHANGE_ROWS]:
        lines.append(
            _row(code(c["key"]), _value(c["old"], c["status"] != "added"), _value(c["new"], c["status"] != "removed"))
        )
    if len(changes) > MAX_CHANGE_ROWS:
        lines.append(_row(f"… and {len(changes) - MAX_CHANGE_ROWS} more", "", ""))
    return lines + [""]


def _md_stages(stage_records: list[dict[str, Any]]) -> list[str]:
    lines = ["#### Stages", "", _row("stage", "rebuilds?", "why"), _row("---", "---", "---")]
    for s in stage_records:
        verdict = "no" if not s["rebuilds"] else ("yes †" if s["conditional"] else "**yes**")
        lines.append(_row(code(s["stage"]), verdict, "; ".join(s["reasons"])))
    lines.append("")
    if any(s["conditional"] for s in stage_records):
        lines += [
            "† only if the outputs of the stages before it change: DVC skips a stage whose dependencies hash the same.",
            "",
        ]
    return lines


def _md_teacher(teacher: dict[str, Any]) -> list[str]:
    lines = ["#### Teacher", ""]
    who = f"{code(str(teacher['provider']) + ':' + str(teacher['model']))}"
    sim = (
        (
            " The teacher is the **simulated stand-in**: nothing is billed; the dollars are what the same calls "
            "would cost at `teacher.price`."
        )
        if teacher["simulated"]
        else ""
    )
    if teacher["seed_error"] is not None:
        lines += [
            f"{code('seed')} rebuilds, but its calls could not be estimated: {code(teacher['seed_error'])}.",
            "",
        ]
    elif teacher["seed"] is not None:
        lines += [
            f"{code('seed')} rebuilds: {_calls(teacher['seed'], 'generator call')} in its first round "
            "(later rounds ask only for what the filters dropped). The teacher's count below holds the "
            "generated inputs already on disk, not those the seed stage is about to write: it will also "
            "answer the ones it keeps.",
            "",
        ]
    if not teacher["rebuilds"]:
        return lines + [f"0 new teacher calls ($0): {code('teacher')} does not rebuild.{sim}", ""]
    if teacher["error"] is not None:
        return lines + [
            f"{code('teacher')} rebuilds, but its cost could not be estimated: {code(str(teacher['error']))}.{sim}",
            "",
        ]
    e = teacher["estimate"]
    budget = f" (budget ${e['budget_usd']:,.2f})" if e.get("budget_usd") is not None else ""
    lines.append(f"{code('teacher')} rebuilds ({who}): {_calls(e, 'new teacher call')}{budget}.{sim}")
    if teacher["explanations"] is not None:
        lines += [
            "",
            f"Then its explanations (`teacher.reasoning` explain mode): {_calls(teacher['explanations'], 'new call')}.",
        ]
    return lines + [""]


def _calls(e: dict[str, Any], what: str) -> str:
    """One estimate as a sentence: calls of requests, tokens, dollars."""
    return (
        f"**{e['to_call']:,} {what}{'s' if e['to_call'] != 1 else ''}** of {e['requests']:,} requests "
        f"({e['cached']:,} already in the teacher cache on this machine), {e['prompt_tokens']:,} prompt tokens, "
        f"~{e['completion_tokens_expected']:,} completion tokens; ~{_money(e['cost_usd_expected'])} expected, "
        f"at most {_money(e['cost_usd_max'])}"
    )


def _md_metrics(metrics: dict[str, Any]) -> list[str]:
    lines = ["#### Metrics", ""]
    if not metrics["available"]:
        return lines + [f"Metrics are not built on both sides ({metrics['reason']}).", ""]
    rows = metrics["rows"]
    if rows:
        lines += [_row("metric", "old", "new", "change"), _row("---", "---:", "---:", "---:")]
        for r in rows[:MAX_METRIC_ROWS]:
            lines.append(_row(code(r["metric"]), _num(r["old"]), _num(r["new"]), _signed(r["change"])))
        if len(rows) > MAX_METRIC_ROWS:
            lines.append(_row(f"… and {len(rows) - MAX_METRIC_ROWS} more", "", "", ""))
        lines.append("")
    unchanged = metrics["unchanged"]
    if unchanged:
        names = ", ".join(code(n) for n in unchanged[:8]) + (
            f" and {len(unchanged) - 8} more" if len(unchanged) > 8 else ""
        )
        lines += [f"Unchanged: {names}.", ""]
    if not rows:
        lines += ["No metric moved.", ""]
    lines += [
        "The charts (training curves, confusion matrix, per-class F1, route curve) of each side: "
        f"{code('distill report')} writes one self-contained `build/report.html` to attach here.",
        "",
    ]
    return lines
