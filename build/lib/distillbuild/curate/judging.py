"""The LLM-as-judge filter (filters.judge): G-Eval verdicts attached to teacher answers.

Only answers that pass every other row check are judged (a refusal or an empty answer is not
worth a judge call; the set passes, dedup and decontamination, come after and are not saved);
each gets row["judge"] = {"score", "reason"}, which the `judge_low_score` row check in
distillbuild/curate/filters.py reads. The calls, cache hits and cost go into the filter report
under "judge".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from distillbuild.curate.filters import FilterConfig, Row, row_verdict
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.judge import judge_all
from distillbuild.llm.settings import TeacherSettings
from distillbuild.spec.model import Judge


def rows_to_judge(rows: list[Row], cfg: FilterConfig) -> list[int]:
    """Indices of the rows that pass every row check but the judge's."""
    unjudged = replace(cfg, judge_min_score=None)
    return [i for i, row in enumerate(rows) if row_verdict(row, unjudged) is None]


def judge_rows(
    rows: list[Row],
    todo: list[int],
    judge: Judge,
    settings: TeacherSettings | None,
    cache: TeacherCache | None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Judge rows[i] for i in `todo` (in place: row["judge"]); the report's "judge" section.
    settings and cache: the judge's endpoint and the teacher cache (None when `todo` is empty)."""
    pairs = [(str(rows[i]["text"]), str(rows[i]["answer"])) for i in todo]
    judgements, stats = judge_all(pairs, judge, settings, cache, "filters.judge", log)
    for i, verdict in zip(todo, judgements):
        rows[i]["judge"] = {"score": round(verdict.score, 6), "reason": verdict.reason}
    scores = [v.score for v in judgements]
    return {
        "provider": judge.provider,
        "model": judge.model,
        "simulated": judge.provider == "simulated",
        "metric": "G-Eval (deepeval)",
        "min_score": judge.min_score,
        "weighted_by_logprobs": bool(judge.logprobs),
        "rows_judged": len(todo),
        "below_min_score": sum(s < judge.min_score for s in scores),
        "mean_score": round(sum(scores) / len(scores), 6) if scores else None,
        **stats.as_dict(),
    }


def summary(rep: dict[str, Any]) -> str:
    who = f"{rep['provider']}:{rep['model']}" + (" (SIMULATED stand-in)" if rep["simulated"] else "")
    calls = rep["calls"]
    rate = rep["distinct_pairs"] / rep["seconds"] if rep["seconds"] else 0.0
    mean = f"{rep['mean_score']:.3f}" if rep["mean_score"] is not None else "-"
    return (
        f"judge: {who}: {rep['rows_judged']} answers judged, {rep['below_min_score']} below {rep['min_score']} "
        f"(mean score {mean}); {calls['requested']} requests, {calls['from_cache']} from cache, "
        f"{calls['billed']} billed; ${rep['cost_usd']:.4f}; {rep['seconds']:.1f} s ({rate:.0f} verdicts/s)"
    )
