"""`pairs` (when student.preference is set): where the SFT student and the teacher disagree.

The trained (SFT) student answers every training prompt of the dataset stage, as evaluation asks
it; where its label is not the teacher's (or is no label at all), the row becomes a DPO pair in
the shape Axolotl's `chat_template.default` DPO strategy reads: the prompt's `messages`, `chosen`
(the teacher's answer, or trace) and `rejected` (the student's own words). Oversampled copies of
a row and a step-by-step student's rationale task are asked once / not at all. With
student.preference.judge, filters.judge scores both answers of each pair and a pair is kept only
when the teacher's answer wins by the margin (the teacher can be the one that is wrong).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.io import read_jsonl, write_jsonl
from distillbuild.measurements import write_report
from distillbuild.metric_names import JUDGE_MEASURED
from distillbuild.pipeline.contract import Out, posix, trace_reads_teacher_max_tokens
from distillbuild.protocol.prompts import STEP_PREFIXES
from distillbuild.spec import Spec
from distillbuild.spec.model import Judge, PairJudge

READS = (
    "task.type",
    "task.labels",
    "task.instruction",
    "student.base_model",
    "student.endpoint",
    "student.reasoning",
    "student.preference.max_pairs",
    "student.preference.judge",
    "filters.judge",
    "teacher.reasoning",
    "teacher.max_tokens",
    "evaluation.max_new_tokens",
    "evaluation.threads",
)
READS_WHEN = {
    "student.reasoning": lambda spec: spec.student.reasoning != "answer",
    "teacher.reasoning": lambda spec: spec.student.reasoning == "trace",
    "teacher.max_tokens": trace_reads_teacher_max_tokens,
    "student.preference.judge": lambda spec: spec.student.preference.judge is not None,
    "filters.judge": lambda spec: spec.student.preference.judge is not None,
}


def applies(spec: Spec) -> bool:
    return spec.student.preference is not None


def deps(spec: Spec) -> list[str]:
    files = [layout.DATASET_DIR, layout.MODEL_DIR]
    judge = spec.filters.judge
    if spec.student.preference.judge is not None and judge.provider == "simulated":  # the stand-in's answer key
        files.append(posix(judge.simulated.answers))
    return files


def outs(spec: Spec) -> list[Out]:
    return [layout.PAIRS, layout.PAIRS_REPORT]


def prompts_to_ask(rows: list[dict[str, Any]], reasoning: str) -> list[dict[str, Any]]:
    """The training rows the student is asked about: each input once (no oversampled copy), and
    for a step-by-step student its label task only."""
    out, seen = [], set()
    for row in rows:
        if row.get("task") == "rationale":
            continue
        base = row["id"].split("#")[0]
        if base in seen:
            continue
        seen.add(base)
        text = next(m["content"] for m in row["messages"] if m["role"] == "user")
        if reasoning == "step_by_step":
            text = text.removeprefix(STEP_PREFIXES["label"])
        out.append({**row, "id": base, "text": text})
    return out


def make_pairs(
    rows: list[dict[str, Any]], predicted: list[str | None], said: list[str]
) -> tuple[list[dict[str, Any]], Counter]:
    """(pairs, reasons): a pair for each row whose predicted label is not the teacher's."""
    pairs, reasons = [], Counter()
    for row, label, words in zip(rows, predicted, said):
        if label == row["label"]:
            reasons["student_agrees"] += 1
            continue
        reasons["no_label" if label is None else "other_label"] += 1
        pairs.append(
            {
                "id": row["id"],
                "messages": row["messages"][:-1],
                "chosen": row["messages"][-1]["content"],
                "rejected": words,
                "student_label": label,
                "teacher_label": row["label"],
            }
        )
    return pairs, reasons


def judge_pairs(
    pairs: list[dict[str, Any]], rows: list[dict[str, Any]], judge: Judge, rule: PairJudge, settings, cache
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the pairs the judge confirms, each with both scores; the report's "judge" section)."""
    from distillbuild.llm.judge import judge_all  # lazy: deepeval

    text = {r["id"]: r["text"] for r in rows}
    asked = [(text[p["id"]], str(p[side])) for p in pairs for side in ("chosen", "rejected")]
    verdicts, stats = judge_all(asked, judge, settings, cache, "student.preference.judge", log)
    kept = []
    for i, pair in enumerate(pairs):
        chosen, rejected = verdicts[2 * i].score, verdicts[2 * i + 1].score
        if chosen - rejected >= rule.min_margin - 1e-9:
            kept.append({**pair, "chosen_score": round(chosen, 6), "rejected_score": round(rejected, 6)})
    scores = [(v.score, w.score) for v, w in zip(verdicts[::2], verdicts[1::2])]
    calls = stats.as_dict()
    calls["answers_judged"], calls["distinct_answers"] = (
        calls.pop("pairs"),
        calls.pop("distinct_pairs"),
    )  # G-Eval's pairs
    return kept, {
        "provider": judge.provider,
        "model": judge.model,
        "simulated": judge.provider == "simulated",
        "min_margin": rule.min_margin,
        "pairs_judged": len(pairs),
        "unconfirmed": len(pairs) - len(kept),
        "mean_chosen_score": round(sum(c for c, _ in scores) / len(scores), 6) if scores else None,
        "mean_rejected_score": round(sum(r for _, r in scores) / len(scores), 6) if scores else None,
        **calls,
    }


def cap(pairs: list[dict[str, Any]], max_pairs: int | None) -> list[dict[str, Any]]:
    """At most max_pairs, a seeded choice by id: stable as rows are added."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    kept_ids = {
        i for _, i in sorted((hashlib.sha256(p["id"].encode()).hexdigest(), p["id"]) for p in pairs)[:max_pairs]
    }
    return [p for p in pairs if p["id"] in kept_ids]


def run(spec: Spec) -> int:
    from distillbuild.endpoints.open import open_judge
    from distillbuild.pipeline.stages.evaluate import (  # lazy: the evaluation stack
        causal_classifier,
        load_causal_student,
    )

    rows = prompts_to_ask(read_jsonl(Path(layout.DATASET_TRAIN)), spec.student.reasoning)
    classifier = causal_classifier(spec, load_causal_student(spec, Path(layout.MODEL_DIR), spec.evaluation.threads))
    log(f"pairs: the SFT student answers {len(rows)} training prompts")
    predicted = classifier.predict([r["text"] for r in rows])
    pairs, reasons = make_pairs(rows, predicted, classifier.last_answers)
    disagreements, judged = len(pairs), None
    preference = spec.student.preference
    if preference.judge is not None:
        opened = (
            open_judge(spec.filters.judge, spec.dir, spec.repo_root, "filters.judge", log)
            if pairs
            else nullcontext((None, None))
        )
        with opened as (settings, cache):
            pairs, judged = judge_pairs(pairs, rows, spec.filters.judge, preference.judge, settings, cache)
    confirmed = len(pairs)
    pairs = cap(pairs, preference.max_pairs)
    report = {
        "asked": len(rows),
        "pairs": len(pairs),
        "disagreements": disagreements,
        "capped": confirmed - len(pairs),
        **dict(reasons),
        "student_agreement": round(reasons["student_agrees"] / len(rows), 6) if rows else None,
        **({"judge": judged} if judged is not None else {}),
    }
    write_jsonl(Path(layout.PAIRS), pairs)
    write_report(Path(layout.PAIRS_REPORT), report, JUDGE_MEASURED)
    unconfirmed = f", {judged['unconfirmed']} not confirmed by the judge" if judged else ""
    log(
        f"pairs: {report['pairs']} pairs; the SFT student agrees with the teacher on {reasons['student_agrees']} "
        f"of {report['asked']} training prompts ({reasons['other_label']} other labels, {reasons['no_label']} no label"
        f"{unconfirmed}, {report['capped']} capped)"
    )
    if not pairs:
        why = (
            "the judge confirmed none of the disagreements"
            if disagreements
            else "the SFT student agrees with the teacher on every training prompt, so DPO has nothing to learn"
        )
        raise StageError(f"no preference pairs: {why}; remove student.preference")
    return 0
