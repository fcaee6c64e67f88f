"""`pairs` (when student.preference is set): where the SFT student and the teacher disagree.

The trained (SFT) student answers every training prompt of the dataset stage, as evaluation asks
it; where its label is not the teacher's (or is no label at all), the row becomes a DPO pair in
the shape Axolotl's `chat_template.default` DPO strategy reads: the prompt's `messages`, `chosen`
(the teacher's answer, or trace) and `rejected` (the student's own words). Oversampled copies of
a row and a step-by-step student's rationale task are asked once / not at all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.io import read_jsonl, write_json, write_jsonl
from distillbuild.spec import Spec
from distillbuild.stages.contract import Out
from distillbuild.teacher.prompts import STEP_PREFIXES

READS = ("task.type", "task.labels", "task.instruction", "student.base_model", "student.endpoint", "student.reasoning",
         "student.preference.max_pairs", "teacher.reasoning", "evaluation.max_new_tokens", "evaluation.threads")
READS_WHEN = {"student.reasoning": lambda spec: spec.student.reasoning != "answer",
              "teacher.reasoning": lambda spec: spec.student.reasoning == "trace"}


def applies(spec: Spec) -> bool:
    return spec.student.preference is not None


def deps(spec: Spec) -> list[str]:
    return [layout.DATASET_DIR, layout.MODEL_DIR]


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


def make_pairs(rows: list[dict[str, Any]], predicted: list[str | None], said: list[str],
               max_pairs: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(pairs, report): a pair for each row whose predicted label is not the teacher's."""
    pairs, reasons = [], Counter()
    for row, label, words in zip(rows, predicted, said):
        if label == row["label"]:
            reasons["student_agrees"] += 1
            continue
        reasons["no_label" if label is None else "other_label"] += 1
        pairs.append({"id": row["id"], "messages": row["messages"][:-1], "chosen": row["messages"][-1]["content"],
                      "rejected": words, "student_label": label, "teacher_label": row["label"]})
    capped = 0
    if max_pairs is not None and len(pairs) > max_pairs:  # a seeded choice, by id: stable as rows are added
        keep = set(sorted((hashlib.sha256(p["id"].encode()).hexdigest(), p["id"]) for p in pairs)[:max_pairs])
        kept_ids = {i for _, i in keep}
        capped = len(pairs) - max_pairs
        pairs = [p for p in pairs if p["id"] in kept_ids]
    asked = len(rows)
    return pairs, {"asked": asked, "pairs": len(pairs), "capped": capped, **dict(reasons),
                   "student_agreement": round(reasons["student_agrees"] / asked, 6) if asked else None}


def run(spec: Spec) -> int:
    from distillbuild.stages.evaluate import causal_classifier, load_causal_student  # lazy: the evaluation stack

    rows = prompts_to_ask(read_jsonl(Path(layout.DATASET_TRAIN)), spec.student.reasoning)
    classifier = causal_classifier(spec, load_causal_student(spec, Path(layout.MODEL_DIR), spec.evaluation.threads))
    log(f"pairs: the SFT student answers {len(rows)} training prompts")
    predicted = classifier.predict([r["text"] for r in rows])
    pairs, report = make_pairs(rows, predicted, classifier.last_answers, spec.student.preference.max_pairs)
    write_jsonl(Path(layout.PAIRS), pairs)
    write_json(Path(layout.PAIRS_REPORT), report)
    log(f"pairs: {report['pairs']} pairs; the SFT student agrees with the teacher on {report.get('student_agrees', 0)} "
        f"of {report['asked']} training prompts ({report.get('other_label', 0)} other labels, "
        f"{report.get('no_label', 0)} no label, {report['capped']} capped)")
    if not pairs:
        raise StageError("no preference pairs: the SFT student agrees with the teacher on every training prompt, so "
                         "DPO has nothing to learn; remove student.preference")
    return 0
