"""`filter`: keep the teacher answers a student should learn from; a reason on every rejection.

Checks, in order (a row gets the first reason that applies): the call failed, the teacher
refused, the answer was cut off (finish_reason: length), the answer names no label, the
teacher's probability of its answer is below filters.min_confidence, the sampled answers
agree less than filters.min_agreement, the input is an exact
duplicate of an earlier kept one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.curate.normalize import normalize_label, normalize_text
from distillbuild.io import read_jsonl, write_json, write_jsonl
from distillbuild.spec import Spec
from distillbuild.stages import log

REASONS = ("teacher_error", "refusal", "truncated", "invalid_label", "low_confidence", "low_agreement", "duplicate")


def rejection(row: dict[str, Any], labels: list[str], min_confidence: float, min_agreement: float = 0.0) -> tuple[str, str] | None:
    """(reason, detail) for a row that must not be trained on; None for a keeper (dedup aside)."""
    if row.get("error") or row.get("answer") is None:
        return "teacher_error", str(row.get("error") or "no answer")
    if row.get("refusal"):
        return "refusal", str(row["refusal"])[:200]
    if row.get("finish_reason") == "length":
        return "truncated", "the answer hit max_tokens"
    if labels and normalize_label(row["answer"], labels) is None:
        return "invalid_label", f"answer {row['answer'][:80]!r} is not one of the labels"
    confidence = row.get("confidence")
    if min_confidence > 0:
        if confidence is None:
            return "low_confidence", "no logprobs to measure confidence"
        if confidence < min_confidence:
            return "low_confidence", f"p={confidence:.3f} < {min_confidence}"
    agreement = row.get("agreement")
    if min_agreement > 0 and agreement is not None and agreement < min_agreement:
        return "low_agreement", f"{agreement:.2f} of the samples agree < {min_agreement}"
    return None


def curate(rows: list[dict[str, Any]], labels: list[str], filters: dict[str, Any]) -> tuple[list, list, dict]:
    min_conf = filters.get("min_confidence", 0.0)
    exact_dedup = (filters.get("dedup") or {}).get("exact", True)
    kept, rejected, seen = [], [], {}
    for row in rows:
        verdict = rejection(row, labels, min_conf, filters.get("min_agreement", 0.0))
        if verdict is None and exact_dedup:
            key = normalize_text(row["text"])
            if key in seen:
                verdict = ("duplicate", f"same text as {seen[key]}")
            else:
                seen[key] = row["id"]
        if verdict:
            rejected.append({"id": row["id"], "text": row["text"], "answer": row.get("answer"),
                             "reason": verdict[0], "detail": verdict[1]})
            continue
        kept.append({
            "id": row["id"],
            "text": row["text"],
            "label": normalize_label(row["answer"], labels) if labels else row["answer"],
            "label_probs": row.get("label_probs"),
            "confidence": row.get("confidence"),
        })
    reasons = Counter(r["reason"] for r in rejected)
    report = {
        "rows": len(rows),
        "kept": len(kept),
        "rejected": len(rejected),
        "by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        "class_balance": dict(sorted(Counter(r["label"] for r in kept).items())),
    }
    return kept, rejected, report


def run(spec: Spec) -> int:
    rows = read_jsonl(Path(layout.TEACHER_ANSWERS))
    kept, rejected, report = curate(rows, spec.get("task.labels") or [], spec["filters"])
    write_jsonl(Path(layout.FILTER_KEPT), kept)
    write_jsonl(Path(layout.FILTER_REJECTED), rejected)
    write_json(Path(layout.FILTER_REPORT), report)
    by_reason = ", ".join(f"{k} {v}" for k, v in report["by_reason"].items() if v) or "none"
    log(f"filter: kept {report['kept']} of {report['rows']} (rejected: {by_reason})")
    return 0
