"""The filter engine (pure): which teacher answers a student may learn from, and why not.

Inputs that the input checks dropped before the teacher was asked (curate/input_checks.py)
come marked `skipped` and keep that reason. Row checks run first, in the order of ROW_CHECKS;
a row gets the first reason that applies.
The survivors then go through the set-level passes, in order: exact duplicates (NFKC, case
folding, whitespace), copies of held-out inputs (decontamination), near-duplicates (MinHash
LSH over word 3-grams; the earliest of a cluster stays), and the per-class cap. Every rejected
row keeps its reason and a detail; the report counts them all.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from distillbuild.curate.confidence import Calibrator, row_label, score
from distillbuild.curate.input_checks import (
    OnRay,
    Reject,
    drop_contaminated,
    drop_exact_duplicates,
    drop_near_duplicates,
)
from distillbuild.protocol.normalize import normalize_label, normalize_text
from distillbuild.spec.model import Filters, Task, thaw

Row = dict[str, Any]
Verdict = tuple[str, str] | None

# What refusals look like from providers that do not fill `message.refusal`.
_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry,? (?:but )?i|i can(?:no|')t (?:help|assist|comply)|i cannot "
    r"(?:help|assist|comply)"
    r"|i'?m (?:not able|unable) to|i am (?:not able|unable) to|as an ai\b)",
    re.I,
)


@dataclass(frozen=True)
class FilterConfig:
    task_type: str = "classification"
    labels: tuple[str, ...] = ()
    output_schema: dict[str, Any] | None = None
    min_confidence: float = 0.0
    min_agreement: float = 0.0
    exact_dedup: bool = True
    near_threshold: float | None = None
    decontaminate: bool = True
    decontaminate_threshold: float = 0.8
    min_chars: int | None = None
    max_chars: int | None = None
    must_match: str | None = None
    must_not_match: str | None = None
    max_per_class: int | None = None
    judge_min_score: float | None = None  # filters.judge: None when no judge is configured
    seed_label_match: bool = True  # a generated input the teacher files under another label is dropped
    confidence: str = "raw"  # raw | renormalised | calibrated (curate/confidence.py)
    min_label_mass: float = 0.0
    label_from: tuple[str, ...] = ("text", "constrained", "prefix", "probabilities", "calibration")
    calibrator: Calibrator = Calibrator()
    on_ray: OnRay | None = None  # the set passes spread over a Ray cluster (execution.engine: ray)

    @classmethod
    def from_spec(
        cls, task: Task, filters: Filters, min_confidence: float | None = None, calibrator: Calibrator = Calibrator()
    ) -> "FilterConfig":
        """The filter's settings; `min_confidence` is the threshold fitted for a target when the
        spec gives one (filters.min_confidence as a mapping), else the spec's number."""
        dedup, rules = filters.dedup, filters.rules
        if min_confidence is None:
            min_confidence = 0.0 if filters.threshold_target else filters.min_confidence
        return cls(
            task_type=task.type,
            labels=tuple(task.labels or ()),
            output_schema=thaw(task.output_schema),
            min_confidence=min_confidence,
            min_agreement=filters.min_agreement,
            exact_dedup=dedup.exact,
            near_threshold=dedup.near_threshold,
            decontaminate=filters.decontaminate,
            decontaminate_threshold=filters.decontaminate_threshold,
            min_chars=rules.min_chars,
            max_chars=rules.max_chars,
            must_match=rules.must_match,
            must_not_match=rules.must_not_match,
            max_per_class=rules.max_per_class,
            judge_min_score=filters.judge.min_score if filters.judge else None,
            seed_label_match=filters.seed_label_match,
            confidence=filters.confidence,
            min_label_mass=filters.min_label_mass,
            label_from=tuple(filters.label_from),
            calibrator=calibrator,
        )


# --- row checks: one function each, (reason, detail) or None -------------------------------------


def _not_asked(row: Row, cfg: FilterConfig) -> Verdict:
    """An input the teacher stage's input checks dropped before any call (curate/input_checks.py)."""
    if row.get("skipped"):
        return row["skipped"], row.get("skipped_detail") or ""
    return None


def _teacher_error(row: Row, cfg: FilterConfig) -> Verdict:
    # A reasoning row with no answer line is _reasoning's (no_final_answer), not a failed call.
    if (
        row.get("error")
        or "answer" not in row
        or (row.get("answer") is None and not row.get("refusal") and "rationale" not in row)
    ):
        return "teacher_error", str(row.get("error") or "no answer")
    return None


def _refusal(row: Row, cfg: FilterConfig) -> Verdict:
    if row.get("refusal"):
        return "refusal", str(row["refusal"])[:200]
    if _REFUSAL.match(row.get("answer") or ""):
        return "refusal", f"answer reads as a refusal: {row['answer'][:80]!r}"
    return None


def _empty(row: Row, cfg: FilterConfig) -> Verdict:
    return ("empty", "the answer is blank") if not (row.get("answer") or "").strip() else None


def _truncated(row: Row, cfg: FilterConfig) -> Verdict:
    if row.get("finish_reason") != "length" or row.get("_label_from") == "prefix":
        return None  # a whole label, then words cut at max_tokens: the label is complete
    return "truncated", "finish_reason: length (the answer hit max_tokens)"


def _reasoning(row: Row, cfg: FilterConfig) -> Verdict:
    """teacher.reasoning rows (they carry `rationale`): a rationale to learn from, a final answer
    line, and a final answer that is the most probable label at the answer's position (a
    rationale that argues one way while the teacher's probabilities lean the other is noise)."""
    if "rationale" not in row:
        return None
    if row.get("finish_reason") == "length":
        return "truncated", "finish_reason: length (the reply hit teacher.max_tokens)"
    if row.get("rationale_truncated"):  # explain mode: the explanation, asked apart, was cut
        return "truncated", "finish_reason: length (the explanation hit teacher.reasoning.max_tokens)"
    if not (row.get("rationale") or "").strip():
        why = f": {row['rationale_error']}" if row.get("rationale_error") else ""
        return "no_rationale", f"the teacher gave no reasoning{why}"
    if _REFUSAL.match(row["rationale"].strip()):  # a refusal is no reasoning to learn from
        return "refusal", f"the reasoning reads as a refusal: {row['rationale'].strip()[:80]!r}"
    if row.get("answer") is None:
        return "no_final_answer", f"no answer line after the reasoning: {(row.get('raw_answer') or '')[-80:]!r}"
    probs = row.get("label_probs")
    if cfg.task_type == "classification" and probs:
        label, top = normalize_label(row["answer"], list(cfg.labels)), max(probs, key=probs.get)
        if label is not None and probs.get(label, 0.0) < probs[top]:  # a tie for the top is no disagreement
            return (
                "rationale_disagrees",
                f"the answer after the reasoning is {label!r}; the soft label's most probable is {top!r}",
            )
    return None


def _invalid_label(row: Row, cfg: FilterConfig) -> Verdict:
    if cfg.task_type != "classification":
        return None
    if _label(row, cfg) is None:
        return "invalid_label", f"answer {row['answer'][:80]!r} is not one of the labels"
    source = row.get("_label_from")
    if source is not None and source not in cfg.label_from:
        return "invalid_label", (
            f"answer {row['answer'][:60]!r} names no label; {_label(row, cfg)!r} was read from "
            f"{source}, which filters.label_from does not allow"
        )
    return None


def _label(row: Row, cfg: FilterConfig) -> str | None:
    """The row's label as the filter reads it (scored by _scored; a person's label as written)."""
    return row["_label"] if "_label" in row else row_label(row, cfg.labels)


def _invalid_json(row: Row, cfg: FilterConfig) -> Verdict:
    if cfg.task_type != "extraction":
        return None
    try:
        value = json.loads(row["answer"])
    except ValueError as exc:
        return "invalid_json", f"not JSON: {exc}"[:200]
    if cfg.output_schema is not None:
        from jsonschema import Draft202012Validator

        error = next(iter(Draft202012Validator(cfg.output_schema).iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return "schema_mismatch", f"{where}: {error.message}"[:200]
    return None


def _low_confidence(row: Row, cfg: FilterConfig) -> Verdict:
    if cfg.min_confidence <= 0:
        return None
    confidence = row.get("_confidence", row.get("confidence"))
    if confidence is None:
        return "low_confidence", "no logprobs to measure confidence"
    if confidence < cfg.min_confidence:
        return "low_confidence", f"p={confidence:.3f} < {cfg.min_confidence:.4g} ({cfg.confidence})"
    return None


def _low_agreement(row: Row, cfg: FilterConfig) -> Verdict:
    agreement = row.get("agreement")
    if cfg.min_agreement > 0 and agreement is not None and agreement < cfg.min_agreement:
        return "low_agreement", f"{agreement:.2f} of the samples agree < {cfg.min_agreement}"
    return None


def _seed_label_mismatch(row: Row, cfg: FilterConfig) -> Verdict:
    """A generated input written for one category that the teacher files under another: the
    generator missed, or the teacher did; either way not a clean example (self-instruct's
    consistency check)."""
    wanted = row.get("seed_label")
    if not cfg.seed_label_match or row.get("source") != "seed" or wanted is None or cfg.task_type != "classification":
        return None
    label = _label(row, cfg)
    if label != wanted:
        return "seed_label_mismatch", f"written as {wanted!r}; the teacher says {label!r}"
    return None


def _length(row: Row, cfg: FilterConfig) -> Verdict:
    n = len(row["answer"])
    if cfg.min_chars is not None and n < cfg.min_chars:
        return "length", f"{n} characters < {cfg.min_chars}"
    if cfg.max_chars is not None and n > cfg.max_chars:
        return "length", f"{n} characters > {cfg.max_chars}"
    return None


def _pattern(row: Row, cfg: FilterConfig) -> Verdict:
    if cfg.must_match and not re.search(cfg.must_match, row["answer"]):
        return "pattern", f"does not match /{cfg.must_match}/"
    if cfg.must_not_match and re.search(cfg.must_not_match, row["answer"]):
        return "pattern", f"matches /{cfg.must_not_match}/"
    return None


def _judge_low_score(row: Row, cfg: FilterConfig) -> Verdict:
    """filters.judge: the G-Eval verdict the filter stage attached as row["judge"] ({"score", "reason"}).
    Last of the row checks, so only answers that passed every other row check are judged (and paid for);
    the set passes (dedup, decontamination, class cap) run after it, so their rows are judged too."""
    if cfg.judge_min_score is None:
        return None
    verdict = row.get("judge")
    if not isinstance(verdict, dict) or verdict.get("score") is None:
        return "judge_low_score", "no verdict: the judge was not asked about this row"
    if verdict["score"] < cfg.judge_min_score:
        return (
            "judge_low_score",
            f"score {verdict['score']:.3f} < {cfg.judge_min_score}: {verdict.get('reason') or ''}"[:400],
        )
    return None


ROW_CHECKS: tuple[Callable[[Row, FilterConfig], Verdict], ...] = (
    _not_asked,
    _teacher_error,
    _refusal,
    _reasoning,
    _empty,
    _truncated,
    _invalid_label,
    _invalid_json,
    _low_confidence,
    _low_agreement,
    _seed_label_mismatch,
    _length,
    _pattern,
    _judge_low_score,
)
SET_REASONS = ("duplicate", "contaminated", "near_duplicate", "class_cap")
REASONS = (
    "input_length",  # the input checks' own; their duplicate, contaminated and near_duplicate are SET_REASONS
    "teacher_error",
    "refusal",
    "no_rationale",
    "no_final_answer",
    "rationale_disagrees",
    "empty",
    "truncated",
    "invalid_label",
    "invalid_json",
    "schema_mismatch",
    "low_confidence",
    "low_agreement",
    "seed_label_mismatch",
    "length",
    "pattern",
    "judge_low_score",
) + SET_REASONS


# A person's label is not the teacher's answer: only what makes it unusable is checked.
HUMAN_CHECKS = (_empty, _invalid_label)


def human_rows(rows: list[Row]) -> list[Row]:
    """data.human's rows as answer rows the passes over the set treat like any other."""
    return [{"id": f"human:{r['id']}", "text": r["text"], "answer": r["label"], "source": "human"} for r in rows]


def row_verdict(row: Row, cfg: FilterConfig) -> Verdict:
    if row.get("source") == "human":
        return next((v for v in (check(row, cfg) for check in HUMAN_CHECKS) if v), None)
    for check in ROW_CHECKS:
        verdict = check(row, cfg)
        if verdict:
            return verdict
    return None


def _kept_row(row: Row, cfg: FilterConfig) -> Row:
    label = _label(row, cfg) if cfg.task_type == "classification" else row["answer"]
    kept = {
        "id": row["id"],
        "text": row["text"],
        "label": label,
        "label_probs": row.get("_probs", row.get("label_probs")),
        "confidence": row.get("_confidence", row.get("confidence")),
    }
    if row.get("_label_from") not in (None, "text", "constrained"):  # read otherwise than from the answer's text
        kept["label_from"] = row["_label_from"]
    if row.get("kd"):  # logit distillation trains on the teacher's own tokens, not the normalised label
        kept.update(kd=row["kd"], teacher_text=row["answer"])
    if "gold_label" in row:  # for the audit only: the dataset trains on the teacher's label
        kept["gold_label"] = row["gold_label"]
    if row.get("rationale"):  # teacher.reasoning: what a trace-trained student learns beside the label
        kept["rationale"] = row["rationale"]
    if row.get("source") in ("human", "seed"):
        kept["source"] = row["source"]
    return kept


def curate(
    rows: list[Row], cfg: FilterConfig, heldout_texts: list[str] | None = None, human: list[Row] | None = None
) -> tuple[list[Row], list[Row], dict]:
    """(kept rows, rejected rows with reason and detail, report). Row checks first, then the
    passes over the set, in this order: exact dedup, decontamination, near dedup, class cap.
    `human` rows (human_rows()) go first, so a person's label wins over the teacher's answer to
    the same input; the report counts how often the two disagree there."""
    rows = [_scored(r, cfg) for r in rows]
    teacher_rows, rows = rows, list(human or []) + rows
    rejected: list[Row] = []

    def reject(row: Row, reason: str, detail: str) -> None:
        rejected.append(
            {
                "id": row["id"],
                "text": row["text"],
                "answer": row.get("answer"),
                "reason": reason,
                "detail": detail,
                **({"gold_label": row["gold_label"]} if "gold_label" in row else {}),
                # the label and confidence as the filter read them: what min_rows_per_label's advice reads
                **({"label": row["_label"], "confidence": row["_confidence"]} if "_label" in row else {}),
            }
        )

    survivors = _row_checks(rows, cfg, reject)
    if cfg.exact_dedup:
        survivors = drop_exact_duplicates(survivors, reject)
    if cfg.decontaminate and heldout_texts:
        survivors = drop_contaminated(survivors, heldout_texts, cfg.decontaminate_threshold, reject, cfg.on_ray)
    if cfg.near_threshold is not None and survivors:
        survivors = drop_near_duplicates(survivors, cfg.near_threshold, reject, cfg.on_ray)
    kept = [_kept_row(r, cfg) for r in survivors]
    balance_before = Counter(r["label"] for r in kept)
    if cfg.max_per_class is not None:
        kept = _cap_classes(kept, cfg.max_per_class, reject)
    order = {row["id"]: i for i, row in enumerate(rows)}
    rejected.sort(key=lambda r: order.get(r["id"], 0))
    report = _report(rows, kept, rejected, balance_before, cfg)
    if human is not None:
        report["human"] = human_report(human, teacher_rows, kept, cfg)
    if any(r.get("source") == "seed" for r in teacher_rows):
        report["seed"] = seed_report(teacher_rows, kept, cfg)
    return kept, rejected, report


def _scored(row: Row, cfg: FilterConfig) -> Row:
    """The row with the label and confidence the checks read (curate/confidence.py), under
    underscored keys that no written row copies."""
    if cfg.task_type != "classification":
        return row
    s = score(row, cfg.labels, cfg.confidence, cfg.min_label_mass, cfg.calibrator)
    return {**row, "_label": s.label, "_label_from": s.label_from, "_confidence": s.confidence, "_probs": s.probs}


def seed_report(teacher_rows: list[Row], kept: list[Row], cfg: FilterConfig) -> dict:
    """The generated inputs as the teacher saw them: how many it answered, how often it filed
    them under the category they were written for, and the label balance of its answers."""
    seeded = [r for r in teacher_rows if r.get("source") == "seed" and r.get("answer") is not None]
    out: dict[str, Any] = {
        "rows": sum(r.get("source") == "seed" for r in teacher_rows),
        "answered": len(seeded),
        "kept": sum(r.get("source") == "seed" for r in kept),
    }
    if cfg.task_type == "classification":
        labels = [_label(r, cfg) for r in seeded]
        asked = [(label, r["seed_label"]) for label, r in zip(labels, seeded) if r.get("seed_label") is not None]
        agree = sum(a == b for a, b in asked)
        out.update(
            teacher_agrees_with_asked=agree,
            teacher_agreement_rate=round(agree / len(asked), 6) if asked else None,
            teacher_label_balance=dict(sorted(Counter(str(l) for l in labels).items())),
        )
    return out


def human_report(human: list[Row], teacher_rows: list[Row], kept: list[Row], cfg: FilterConfig) -> dict:
    """How many human rows were kept, and where the teacher answered the same input, how often it
    disagreed with the person (a measure of the teacher, on your own data)."""
    labels = list(cfg.labels)
    by_text = {normalize_text(r["text"]): normalize_label(r["answer"], labels) for r in human}
    pairs = [
        (by_text[key], _label(r, cfg))
        for r in teacher_rows
        if (key := normalize_text(r["text"])) in by_text and r.get("answer") is not None
    ]
    disagree = sum(h != t for h, t in pairs)
    return {
        "rows": len(human),
        "kept": sum(r.get("source") == "human" for r in kept),
        "answered_by_teacher_too": len(pairs),
        "teacher_disagrees": disagree,
        "teacher_disagreement_rate": round(disagree / len(pairs), 6) if pairs else None,
    }


def _row_checks(rows: list[Row], cfg: FilterConfig, reject: Reject) -> list[Row]:
    survivors = []
    for row in rows:
        verdict = row_verdict(row, cfg)
        if verdict:
            reject(row, *verdict)
        else:
            survivors.append(row)
    return survivors


def _cap_classes(kept: list[Row], max_per_class: int, reject: Reject) -> list[Row]:
    counts: Counter = Counter()
    capped = []
    for row in kept:
        counts[row["label"]] += 1
        if counts[row["label"]] > max_per_class:
            reject(row, "class_cap", f"more than {max_per_class} rows of {row['label']!r}")
        else:
            capped.append(row)
    return capped


def _report(rows: list[Row], kept: list[Row], rejected: list[Row], balance_before: Counter, cfg: FilterConfig) -> dict:
    reasons = Counter(r["reason"] for r in rejected)
    classification = cfg.task_type == "classification"
    return {
        "rows": len(rows),
        "kept": len(kept),
        "rejected": len(rejected),
        "by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        "class_balance": dict(sorted(Counter(r["label"] for r in kept).items())) if classification else None,
        "class_balance_before_cap": dict(sorted(balance_before.items()))
        if cfg.max_per_class and classification
        else None,
        **(
            {"label_from": _label_sources(rows, kept)}
            if classification and any("_label_from" in r for r in rows)
            else {}
        ),
        **(
            {"gold_audit": gold_audit(rows, kept, cfg)}
            if classification and any("gold_label" in r for r in rows)
            else {}
        ),
    }


def _label_sources(rows: list[Row], kept: list[Row]) -> dict[str, dict[str, int]]:
    """How the teacher's answers were read as labels (text, constrained, prefix, probabilities,
    calibration), over every answered row and over the kept ones."""
    answered = Counter(r["_label_from"] for r in rows if r.get("_label_from"))
    kept_ids = {r["id"] for r in kept}
    kept_from = Counter(r["_label_from"] for r in rows if r.get("_label_from") and r["id"] in kept_ids)
    return {"answered": dict(sorted(answered.items())), "kept": dict(sorted(kept_from.items()))}


def gold_audit(rows: list[Row], kept: list[Row], cfg: FilterConfig) -> dict:
    """The teacher's labels against the gold labels some inputs carry: over every answer, and
    over the answers the filter kept (garbage in, garbage out, measured)."""

    def accuracy(pairs: list[tuple[Any, Any]]) -> float | None:
        return round(sum(t == g for t, g in pairs) / len(pairs), 6) if pairs else None

    audited = [r for r in rows if "gold_label" in r]
    before = [(_label(r, cfg) if r.get("answer") is not None else None, r["gold_label"]) for r in audited]
    after = [(r["label"], r["gold_label"]) for r in kept if "gold_label" in r]
    # What each min_confidence would keep of the labelled answers, and how many of those are right:
    # the threshold for this teacher, read off your own data.
    scored = [
        (label, r["gold_label"], c)
        for (label, _), r in zip(before, audited)
        if label is not None and (c := r.get("_confidence", r.get("confidence"))) is not None
    ]
    sweep = [
        {"min_confidence": t / 10, "kept": len(pairs), "teacher_accuracy": accuracy(pairs)}
        for t in range(1, 10)
        for pairs in [[(l, g) for l, g, c in scored if c >= t / 10]]
    ]
    by_source = Counter(r.get("_label_from") for r in audited if r.get("_label_from"))
    by_label_from = {
        source: {
            "rows": n,
            "teacher_accuracy": accuracy(
                [(l, g) for (l, g), r in zip(before, audited) if r.get("_label_from") == source]
            ),
        }
        for source, n in sorted(by_source.items())
    }
    return {
        "rows_with_gold": len(before),
        "teacher_accuracy_all": accuracy(before),
        **({"teacher_accuracy_by_label_from": by_label_from} if by_label_from else {}),
        "kept_with_gold": len(after),
        "teacher_accuracy_kept": accuracy(after),
        "by_min_confidence": sweep,
    }
