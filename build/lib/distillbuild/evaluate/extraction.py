"""Extraction metrics: the student and the teacher on the same held-out set, field by field.

For each answer (a string that should hold one JSON object): JSON validity, schema validity
against ``task.output_schema``, a match per field (:mod:`.field_match`: normalised strings,
numbers within 1e-6, ``null`` only for ``null``) and whole-object exact match, all scored through
DeepEval (:mod:`.extraction_metrics`). The aggregates are computed here: field accuracy (the mean
over fields of per-field accuracy), whole-object exact match, retention (student / teacher field
accuracy), their bootstrap 95% intervals, student-teacher agreement, and the best constant
predictor's field accuracy as a trivial baseline.

The aggregation is pure; only the scoring imports deepeval, on first use.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from distillbuild.errors import StageError
from distillbuild.evaluate.classification import bootstrap_intervals
from distillbuild.evaluate.extraction_metrics import deepeval_version, score_answers
from distillbuild.evaluate.latency import Serving
from distillbuild.protocol.field_match import MISSING, RowScore, field_value, parse_answer, values_match
from distillbuild.spec.output_schema import FieldSpec, schema_fields
from distillbuild.text import normalize_text

# --------------------------------------------------------------------------- aggregation (pure)


def summarize(rows: Sequence[RowScore], fields: Sequence[FieldSpec]) -> dict[str, Any]:
    """Rates over the rows: json_valid_rate, schema_valid_rate, per_field_accuracy, field_accuracy
    (the mean of per_field_accuracy), exact_match."""
    n = len(rows)
    if n == 0:
        nan = float("nan")
        return {
            "json_valid_rate": nan,
            "schema_valid_rate": nan,
            "per_field_accuracy": {f.name: nan for f in fields},
            "field_accuracy": nan,
            "exact_match": nan,
        }
    per_field = {f.name: sum(r.fields[f.name] for r in rows) / n for f in fields}
    return {
        "json_valid_rate": sum(r.json_valid for r in rows) / n,
        "schema_valid_rate": sum(r.schema_valid for r in rows) / n,
        "per_field_accuracy": per_field,
        "field_accuracy": sum(per_field.values()) / len(per_field),
        "exact_match": sum(r.exact for r in rows) / n,
    }


def agreement(fields: Sequence[FieldSpec], student: Sequence[Any], teacher: Sequence[Any]) -> float:
    """Fraction of (row, field) pairs where the student's value counts as the teacher's."""
    total = same = 0
    for s, t in zip(student, teacher):
        _, s_obj = parse_answer(s)
        _, t_obj = parse_answer(t)
        for f in fields:
            total += 1
            t_value = field_value(t_obj, f)
            same += t_value is not MISSING and values_match(field_value(s_obj, f), t_value)
    return same / total if total else float("nan")


def constant_baseline(fields: Sequence[FieldSpec], golds: Sequence[dict[str, Any]]) -> float:
    """Field accuracy of the best constant answer (each field's most common gold value): the
    trivial baseline a student must beat by a wide margin."""
    if not golds:
        return float("nan")
    scores = []
    for f in fields:
        values = Counter(
            normalize_text(v) if isinstance(v, str) else json.dumps(v) for v in (g.get(f.name) for g in golds)
        )
        scores.append(values.most_common(1)[0][1] / len(golds))
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------- the held-out evaluation


def gold_object(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A held-out row's gold label as an object (the label may be the object or its JSON text)."""
    label = row.get("label")
    if isinstance(label, str):
        try:
            label = json.loads(label)
        except ValueError:
            raise StageError(f"{where}: the gold label is a string that is not JSON") from None
    if not isinstance(label, dict):
        raise StageError(f"{where}: the gold label of an extraction task must be a JSON object")
    return label


@dataclass(frozen=True)
class ExtractionResult:
    metrics: dict[str, Any]  # metrics.json
    predictions: list[dict[str, Any]]  # predictions.json
    student: dict[str, Any]  # summarize() of the student's answers, unrounded (for the log)
    teacher: dict[str, Any]  # and of the teacher's
    scoring_s: float  # DeepEval's time


def evaluate_extraction(
    schema: dict[str, Any],
    heldout: Sequence[dict[str, Any]],
    golds: Sequence[dict[str, Any]],
    student_objs: Sequence[dict[str, Any]],
    teacher_answers: Sequence[Any],
    serving: Serving,
    resamples: int,
    *,
    teacher_simulated: bool,
) -> ExtractionResult:
    """The student's objects and the teacher's answers (JSON text) against the gold objects.
    heldout: {"id", "text"} rows, in the order of golds, student_objs and teacher_answers."""
    fields = schema_fields(schema)
    student = [json.dumps(o, ensure_ascii=False) for o in student_objs]
    t0 = time.perf_counter()
    s_rows, t_rows = _score(schema, heldout, golds, student, teacher_answers)
    scoring_s = time.perf_counter() - t0
    s, t = summarize(s_rows, fields), summarize(t_rows, fields)
    metrics = {
        **_student_and_teacher_rates(s, t),
        "agreement": _r6(agreement(fields, student, teacher_answers)),
        "baseline_field_accuracy": _r6(constant_baseline(fields, golds)),
        "latency_p50_ms": serving.latency_p50_ms,
        "latency_p95_ms": serving.latency_p95_ms,
        "latency": serving.latency.record(),
        **_intervals(s_rows, t_rows, resamples),
        "heldout_rows": len(heldout),
        "teacher_cost_per_1k_usd": serving.teacher_cost_per_1k_usd,
        "student_cost_per_1k_usd": serving.student_cost_per_1k_usd,
        "per_field_accuracy": {k: _r6(v) for k, v in s["per_field_accuracy"].items()},
        "teacher_per_field_accuracy": {k: _r6(v) for k, v in t["per_field_accuracy"].items()},
        "teacher_simulated": teacher_simulated,
        "batch_throughput_rows_per_s": serving.throughput(len(heldout)),
        "evaluator": f"deepeval {deepeval_version()}",
    }
    predictions = _predictions(fields, heldout, golds, student_objs, teacher_answers, s_rows)
    return ExtractionResult(metrics, predictions, s, t, scoring_s)


def _r6(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def _score(
    schema: dict[str, Any],
    heldout: Sequence[dict[str, Any]],
    golds: Sequence[dict[str, Any]],
    student: list[str],
    teacher_answers: Sequence[Any],
) -> tuple[list[RowScore], list[RowScore]]:
    """The student's and the teacher's RowScores, scored in one DeepEval run."""
    texts = [r["text"] for r in heldout]
    ids = [str(r["id"]) for r in heldout]
    scored = score_answers(
        schema,
        texts + texts,
        student + list(teacher_answers),
        list(golds) + list(golds),
        names=[f"student:{i}" for i in ids] + [f"teacher:{i}" for i in ids],
    )
    return scored[: len(heldout)], scored[len(heldout) :]


def _student_and_teacher_rates(s: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {
        "field_accuracy": _r6(s["field_accuracy"]),
        "teacher_field_accuracy": _r6(t["field_accuracy"]),
        "retention": _r6(s["field_accuracy"] / t["field_accuracy"]) if t["field_accuracy"] > 0 else None,
        "exact_match": _r6(s["exact_match"]),
        "teacher_exact_match": _r6(t["exact_match"]),
        "json_valid_rate": _r6(s["json_valid_rate"]),
        "teacher_json_valid_rate": _r6(t["json_valid_rate"]),
        "schema_valid_rate": _r6(s["schema_valid_rate"]),
        "teacher_schema_valid_rate": _r6(t["schema_valid_rate"]),
    }


def _intervals(s_rows: Sequence[RowScore], t_rows: Sequence[RowScore], resamples: int) -> dict[str, float]:
    """Bootstrap 95% intervals of field accuracy, retention and exact match (rows resampled jointly)."""
    fa = bootstrap_intervals([r.field_fraction for r in s_rows], [r.field_fraction for r in t_rows], resamples)
    em = bootstrap_intervals([r.exact for r in s_rows], [r.exact for r in t_rows], resamples)
    intervals = {f"field_{k}": v for k, v in fa.items() if k.startswith("accuracy")}
    intervals.update({k: v for k, v in fa.items() if k.startswith("retention")})
    intervals.update({k.replace("accuracy", "exact_match"): v for k, v in em.items() if k.startswith("accuracy")})
    return intervals


def _predictions(
    fields: Sequence[FieldSpec],
    heldout: Sequence[dict[str, Any]],
    golds: Sequence[dict[str, Any]],
    student_objs: Sequence[dict[str, Any]],
    teacher_answers: Sequence[Any],
    s_rows: Sequence[RowScore],
) -> list[dict[str, Any]]:
    """One record per row; `actual` / `predicted` / `teacher` hold the first enum field (for a confusion view)."""
    plot_field = next((f.name for f in fields if f.kind == "enum"), fields[0].name)
    plot_spec = next(f for f in fields if f.name == plot_field)
    preds = []
    for r, gold, so, ta, sr in zip(heldout, golds, student_objs, teacher_answers, s_rows):
        _, t_obj = parse_answer(ta)
        teacher_value = field_value(t_obj, plot_spec)
        preds.append(
            {
                "id": r["id"],
                "field": plot_field,
                "actual": str(gold.get(plot_field)),
                "predicted": str(so.get(plot_field)),
                "teacher": "(unparseable)" if teacher_value is MISSING else str(teacher_value),
                "fields_correct": sum(sr.fields.values()),
                "wrong_fields": ",".join(k for k, ok in sr.fields.items() if not ok),
                "student_answer": json.dumps(so, ensure_ascii=False),
                "gold_answer": json.dumps(gold, ensure_ascii=False),
            }
        )
    return preds
