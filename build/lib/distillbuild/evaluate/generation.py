"""Generation metrics: the student's and the teacher's held-out answers scored by an LLM judge.

Each answer gets DeepEval's G-Eval score in 0..1 from the judge of `evaluation.judge` (the
same shape as filters.judge: an OpenAI-compatible endpoint or the simulated stand-in; every
judge request cached in the teacher cache, so re-evaluating the same answers pays nothing).
An answer passes when its score is at least the judge's min_score. Retention is the student's
mean score over the teacher's, with a bootstrap 95% interval (rows resampled jointly).

A missing or blank answer (the student produced nothing, the teacher errored) scores 0 without
asking the judge, and is counted. Any judge failure is a StageError (exit 3), never a silent 0.

`evaluate_generation` is what the evaluate stage calls, with the judge's endpoint and the
cache it opened (only when `judge_pairs` finds something to judge).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.judge import judge_all
from distillbuild.llm.settings import TeacherSettings
from distillbuild.spec.model import Judge


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def retention_interval(
    student: Sequence[float], teacher: Sequence[float], resamples: int, seed: int = 0
) -> dict[str, float]:
    """95% percentile interval of mean(student) / mean(teacher), resampling rows jointly."""
    if resamples <= 0 or not student:
        return {}
    import numpy as np

    s, t = np.asarray(student, dtype=float), np.asarray(teacher, dtype=float)
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    for start in range(0, resamples, 256):  # chunks keep memory at 256 x n
        idx = rng.integers(0, len(s), size=(min(256, resamples - start), len(s)))
        ms, mt = s[idx].mean(axis=1), t[idx].mean(axis=1)
        ratios[start : start + len(idx)] = np.divide(ms, mt, out=np.full_like(ms, np.nan), where=mt > 0)
    if not np.isfinite(ratios).all():
        return {}
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"retention_ci_low": round(float(low), 6), "retention_ci_high": round(float(high), 6)}


def _answered(value: str | None) -> bool:
    return isinstance(value, str) and bool(value.strip())


def judge_pairs(
    heldout_rows: Sequence[dict[str, Any]], student_outputs: Sequence[str | None], teacher_outputs: Sequence[str | None]
) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """The (input, answer) pairs the judge scores, and the ("student" | "teacher", row index) of
    each; missing or blank answers are not asked about. Refuses mismatched or empty inputs."""
    n = len(heldout_rows)
    if len(student_outputs) != n or len(teacher_outputs) != n:
        raise StageError(
            f"{n} held-out rows but {len(student_outputs)} student and {len(teacher_outputs)} teacher answers"
        )
    if n == 0:
        raise StageError("no held-out rows to evaluate")
    pairs: list[tuple[str, str]] = []
    slots: list[tuple[str, int]] = []
    for who, outputs in (("student", student_outputs), ("teacher", teacher_outputs)):
        for i, (row, output) in enumerate(zip(heldout_rows, outputs)):
            if _answered(output):
                pairs.append((str(row["text"]), str(output)))
                slots.append((who, i))
    return pairs, slots


def evaluate_generation(
    heldout_rows: Sequence[dict[str, Any]],
    student_outputs: Sequence[str | None],
    teacher_outputs: Sequence[str | None],
    judge: Judge,
    settings: TeacherSettings | None,
    cache: TeacherCache | None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    details: list[dict[str, Any]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Metrics of one held-out evaluation (metrics.json material).

    heldout_rows: {"id", "text", ...} rows; student_outputs / teacher_outputs: one answer per
    row, in the same order (None for none). judge: the evaluation.judge section; settings and
    cache: its endpoint and the teacher cache (None when `judge_pairs` finds nothing to judge).
    When `details` is a list, one {"id", "student_score", "student_reason", "teacher_score",
    "teacher_reason"} per row is appended to it (for predictions files)."""
    n = len(heldout_rows)
    pairs, slots = judge_pairs(heldout_rows, student_outputs, teacher_outputs)
    judgements, stats = judge_all(pairs, judge, settings, cache, "evaluation.judge", log)

    scores = {"student": [0.0] * n, "teacher": [0.0] * n}
    reasons = {"student": ["no answer"] * n, "teacher": ["no answer"] * n}
    for (who, i), verdict in zip(slots, judgements):
        scores[who][i], reasons[who][i] = verdict.score, verdict.reason
    threshold = judge.min_score
    student_mean, teacher_mean = _mean(scores["student"]), _mean(scores["teacher"])
    metrics: dict[str, Any] = {
        "geval_mean": _r(student_mean),
        "geval_pass_rate": _r(_mean([float(s >= threshold) for s in scores["student"]])),
        "teacher_geval_mean": _r(teacher_mean),
        "teacher_geval_pass_rate": _r(_mean([float(s >= threshold) for s in scores["teacher"]])),
        "retention": _r(student_mean / teacher_mean) if teacher_mean else None,
        **retention_interval(scores["student"], scores["teacher"], bootstrap, seed),
        "heldout_rows": n,
        "student_missing": sum(not _answered(o) for o in student_outputs),
        "teacher_missing": sum(not _answered(o) for o in teacher_outputs),
        "judge_cost_usd": round(stats.cost_usd, 6),
        "judge_simulated": judge.provider == "simulated",
        "judge": {
            "provider": judge.provider,
            "model": judge.model,
            "metric": "G-Eval (deepeval)",
            "min_score": threshold,
            "weighted_by_logprobs": bool(judge.logprobs),
            **stats.as_dict(),
        },
    }
    if details is not None:
        for i, row in enumerate(heldout_rows):
            details.append(
                {
                    "id": row.get("id"),
                    "student_score": round(scores["student"][i], 6),
                    "student_reason": reasons["student"][i],
                    "teacher_score": round(scores["teacher"][i], 6),
                    "teacher_reason": reasons["teacher"][i],
                }
            )
    who = f"{judge.provider}:{judge.model}" + (" (SIMULATED stand-in judge)" if metrics["judge_simulated"] else "")
    log(
        f"evaluate: G-Eval by {who}: student mean {metrics['geval_mean']}, pass rate {metrics['geval_pass_rate']}; "
        f"teacher mean {metrics['teacher_geval_mean']}; retention {metrics['retention']}; "
        f"{stats.billed_calls} judge calls billed, {stats.cache_hits} from cache, ${stats.cost_usd:.4f}"
    )
    return metrics
