"""Extraction metrics: the student and the teacher on the same held-out set, field by field.

For each answer (a string that should hold one JSON object):

- JSON validity: it parses as JSON (custom DeepEval metric ``JSON Validity``);
- schema validity: DeepEval's ``JsonCorrectnessMetric`` (``eval_mode="system_one"``: decided in
  code, no judge) against a pydantic model built from ``task.output_schema``;
- field match, per field of the schema: the answer's value equals the gold value (custom
  ``Field Match [NAME]`` metrics). Strings are compared after Unicode NFKC, case folding and
  collapsing whitespace; numbers within 1e-6; ``null`` matches only ``null``; a value of the
  wrong type never matches; a required field that is absent is wrong. An answer that is not
  a JSON object gets every field wrong;
- whole-object exact match: every field matches (custom ``Object Exact Match``).

Everything runs through ``deepeval.evaluate`` (about 2 s for 400 answers x 9 metrics on 2 cores),
with telemetry, .env reading, caches and result files off. The aggregates are computed here:
field accuracy (the mean over fields of per-field accuracy), whole-object exact match,
retention (student / teacher field accuracy), their bootstrap 95% intervals, student-teacher
agreement, and the best constant predictor's field accuracy as a trivial baseline.

The pure parts (schema reading, matching, aggregation) import neither deepeval nor torch, so
the spec validator can use :func:`schema_fields`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

SPAN_KINDS = ("string", "number", "integer")
_SCALAR_TYPES = ("string", "number", "integer", "boolean")


class UnsupportedSchema(ValueError):
    """An output_schema the extraction student or the metrics cannot handle."""


@dataclass(frozen=True)
class FieldSpec:
    """One property of the answer object.

    kind: "enum" (a fixed set of values, booleans included), or "string" / "number" /
    "integer" (free values, found as spans of the input by the student)."""

    name: str
    kind: str
    values: tuple[Any, ...] = ()  # enum: the allowed values, None among them when null is allowed
    nullable: bool = False
    required: bool = True
    constraints: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_span(self) -> bool:
        return self.kind in SPAN_KINDS


def _options(prop: dict[str, Any]) -> tuple[list[str], list[Any] | None]:
    """(JSON types, enum values or None) of a property, flattening a simple anyOf/oneOf."""
    alts = prop.get("anyOf") or prop.get("oneOf")
    if alts is None:
        types = prop.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        enum = list(prop["enum"]) if "enum" in prop else ([prop["const"]] if "const" in prop else None)
        return types, enum
    types, enum = [], None
    for alt in alts:
        if not isinstance(alt, dict):
            raise UnsupportedSchema("anyOf/oneOf options must be objects")
        t, e = _options(alt)
        types += [x for x in t if x not in types]
        if e is not None:
            enum = (enum or []) + [v for v in e if v not in (enum or [])]
        elif t and t != ["null"] and enum is not None:
            raise UnsupportedSchema("mixes an enum with free values")
    if enum is not None and "null" in types and None not in enum:
        enum.append(None)
    return types, enum


def schema_fields(schema: Any) -> list[FieldSpec]:
    """The answer's fields, in the schema's order. Supported: an object whose properties are
    enums (strings, numbers, booleans, null), booleans, or strings / numbers / integers,
    each optionally nullable. Raises UnsupportedSchema saying what is not."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise UnsupportedSchema("output_schema must be a JSON Schema with type: object")
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        raise UnsupportedSchema("output_schema needs at least one property under `properties`")
    required = schema.get("required") or []
    if not isinstance(required, list) or any(r not in props for r in required):
        raise UnsupportedSchema("output_schema.required must list names of its properties")
    fields: list[FieldSpec] = []
    for name, prop in props.items():
        if not isinstance(prop, dict):
            raise UnsupportedSchema(f"property '{name}' must be a JSON Schema object")
        try:
            types, enum = _options(prop)
        except UnsupportedSchema as exc:
            raise UnsupportedSchema(f"property '{name}': {exc}") from None
        if enum is not None:
            if not enum:
                raise UnsupportedSchema(f"property '{name}': an empty enum admits no answer")
            if any(isinstance(v, (dict, list)) for v in enum):
                raise UnsupportedSchema(f"property '{name}': enum values must be strings, numbers, booleans or null")
            if len(set(json.dumps(v) for v in enum)) != len(enum):
                raise UnsupportedSchema(f"property '{name}': enum values repeat")
            fields.append(FieldSpec(name, "enum", tuple(enum), None in enum, name in required))
            continue
        base = [t for t in types if t != "null"]
        if len(base) != 1 or base[0] not in _SCALAR_TYPES:
            shown = "/".join(types) or "no type"
            raise UnsupportedSchema(f"property '{name}' is {shown}; the extraction student handles enums and "
                                    "single string, number, integer or boolean values (optionally null), "
                                    "not arrays, nested objects or unions")
        nullable = "null" in types
        if base[0] == "boolean":
            fields.append(FieldSpec(name, "enum", (True, False) + ((None,) if nullable else ()), nullable, name in required))
            continue
        keep = ("pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        fields.append(FieldSpec(name, base[0], (), nullable, name in required,
                                {k: prop[k] for k in keep if k in prop}))
    return fields


def pydantic_model(schema: dict[str, Any], name: str = "ExtractionAnswer"):
    """A strict pydantic model equivalent to the schema (as far as schema_fields reads it):
    what DeepEval's JsonCorrectnessMetric validates answers against. Fields are aliased, so any
    property name works (even `model_config` or `json`)."""
    from typing import Annotated, Literal, Optional

    from pydantic import ConfigDict, Field, create_model

    _PY = {"string": str, "number": float, "integer": int}
    _PD = {"pattern": "pattern", "minLength": "min_length", "maxLength": "max_length", "minimum": "ge",
           "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
    definitions: dict[str, Any] = {}
    for i, f in enumerate(schema_fields(schema)):
        if f.kind == "enum":
            allowed = tuple(v for v in f.values if v is not None)
            typ: Any = Literal[allowed] if allowed else type(None)
        else:
            typ = _PY[f.kind]
            if f.constraints:
                typ = Annotated[typ, Field(**{_PD[k]: v for k, v in f.constraints.items()})]
        if f.nullable:
            typ = Optional[typ]
        definitions[f"field_{i}"] = (typ, Field(... if f.required else None, alias=f.name))
    extra = "forbid" if schema.get("additionalProperties") is False else "allow"
    return create_model(name, __config__=ConfigDict(extra=extra, strict=True), **definitions)


# --------------------------------------------------------------------------- matching (pure)


def _norm_text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


_MISSING = object()


def values_match(predicted: Any, gold: Any) -> bool:
    """Whether one field's predicted value counts as the gold value (see the module docstring)."""
    if predicted is _MISSING:
        return False
    if gold is None or predicted is None:
        return gold is None and predicted is None
    if isinstance(gold, bool) or isinstance(predicted, bool):
        return isinstance(gold, bool) and isinstance(predicted, bool) and gold == predicted
    if isinstance(gold, (int, float)) and isinstance(predicted, (int, float)):
        return math.isclose(float(predicted), float(gold), rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(gold, str) and isinstance(predicted, str):
        return _norm_text(predicted) == _norm_text(gold)
    return False


def parse_answer(text: Any) -> tuple[bool, dict[str, Any] | None]:
    """(is it JSON at all, the object or None when it is not a JSON object)."""
    if not isinstance(text, str):
        return False, None
    try:
        value = json.loads(text)
    except ValueError:
        return False, None
    return True, value if isinstance(value, dict) else None


def field_value(obj: dict[str, Any] | None, f: FieldSpec) -> Any:
    """The answer's value for a field; _MISSING when it gives none (None for an absent optional field)."""
    if obj is None:
        return _MISSING
    if f.name in obj:
        return obj[f.name]
    return _MISSING if f.required else None


def field_matches(f: FieldSpec, answer: Any, gold: dict[str, Any]) -> bool:
    _, obj = parse_answer(answer)
    return values_match(field_value(obj, f), gold.get(f.name))


@dataclass(frozen=True)
class RowScore:
    json_valid: bool
    schema_valid: bool
    fields: dict[str, bool]

    @property
    def exact(self) -> bool:
        return all(self.fields.values())

    @property
    def field_fraction(self) -> float:
        return sum(self.fields.values()) / len(self.fields) if self.fields else float("nan")


def summarize(rows: Sequence[RowScore], fields: Sequence[FieldSpec]) -> dict[str, Any]:
    """Rates over the rows: json_valid_rate, schema_valid_rate, per_field_accuracy, field_accuracy
    (the mean of per_field_accuracy), exact_match."""
    n = len(rows)
    if n == 0:
        nan = float("nan")
        return {"json_valid_rate": nan, "schema_valid_rate": nan, "per_field_accuracy": {f.name: nan for f in fields},
                "field_accuracy": nan, "exact_match": nan}
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
            same += t_value is not _MISSING and values_match(field_value(s_obj, f), t_value)
    return same / total if total else float("nan")


def constant_baseline(fields: Sequence[FieldSpec], golds: Sequence[dict[str, Any]]) -> float:
    """Field accuracy of the best constant answer (each field's most common gold value): the
    trivial baseline a student must beat by a wide margin."""
    if not golds:
        return float("nan")
    scores = []
    for f in fields:
        values = Counter(_norm_text(v) if isinstance(v, str) else json.dumps(v) for v in (g.get(f.name) for g in golds))
        scores.append(values.most_common(1)[0][1] / len(golds))
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------- DeepEval


def quiet_deepeval_env() -> None:
    """DeepEval kept offline and out of the working directory (distillbuild.deepeval_env), then
    imported with its import-time banner ("configured for read only environment") swallowed."""
    from distillbuild.deepeval_env import quiet_deepeval

    quiet_deepeval()
    with contextlib.redirect_stdout(io.StringIO()):
        import deepeval.test_run  # noqa: F401


@lru_cache(maxsize=1)
def _metric_classes():
    """The custom DeepEval metrics (defined on first use: importing deepeval costs 1-2 s)."""
    quiet_deepeval_env()
    from deepeval.metrics import BaseMetric
    from deepeval.test_case import SingleTurnParams

    class _CodeMetric(BaseMetric):
        """A metric decided in code: score 1 or 0, success when the score reaches the threshold."""

        _required_params = [SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT]
        title = "code metric"

        def __init__(self, threshold: float = 1.0):
            self.threshold = threshold
            self.async_mode = False
            self.include_reason = True
            self.strict_mode = False
            self.verbose_mode = False
            self.evaluation_model = None

        def decide(self, test_case) -> tuple[bool, str]:
            raise NotImplementedError

        def measure(self, test_case, *args: Any, **kwargs: Any) -> float:
            self.error = None
            ok, self.reason = self.decide(test_case)
            self.score = 1.0 if ok else 0.0
            self.success = self.score >= self.threshold
            return self.score

        async def a_measure(self, test_case, *args: Any, **kwargs: Any) -> float:
            return self.measure(test_case)

        def is_successful(self) -> bool:
            return bool(self.success) and self.error is None

        @property
        def __name__(self) -> str:
            return self.title

    class JsonValidityMetric(_CodeMetric):
        title = "JSON Validity"

        def decide(self, test_case) -> tuple[bool, str]:
            valid, _ = parse_answer(test_case.actual_output)
            return valid, "parses as JSON" if valid else "not JSON"

    class FieldMatchMetric(_CodeMetric):
        _required_params = [SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT, SingleTurnParams.EXPECTED_OUTPUT]

        # DeepEval copies a metric per test case as type(m)(**{attributes named like __init__'s
        # parameters}): every parameter is kept under its own name.
        def __init__(self, field_spec: FieldSpec, threshold: float = 1.0):
            super().__init__(threshold)
            self.field_spec = field_spec
            self.title = f"Field Match [{field_spec.name}]"

        def decide(self, test_case) -> tuple[bool, str]:
            f = self.field_spec
            gold = json.loads(test_case.expected_output)
            _, obj = parse_answer(test_case.actual_output)
            got = field_value(obj, f)
            ok = values_match(got, gold.get(f.name))
            shown = "missing" if got is _MISSING else json.dumps(got, ensure_ascii=False)
            return ok, f"{f.name}: {shown} vs gold {json.dumps(gold.get(f.name), ensure_ascii=False)}"

    class ObjectMatchMetric(_CodeMetric):
        _required_params = FieldMatchMetric._required_params
        title = "Object Exact Match"

        def __init__(self, fields: Sequence[FieldSpec], threshold: float = 1.0):
            super().__init__(threshold)
            self.fields = list(fields)

        def decide(self, test_case) -> tuple[bool, str]:
            gold = json.loads(test_case.expected_output)
            wrong = [f.name for f in self.fields if not field_matches(f, test_case.actual_output, gold)]
            return not wrong, "every field matches" if not wrong else f"wrong: {', '.join(wrong)}"

    return JsonValidityMetric, FieldMatchMetric, ObjectMatchMetric


def deepeval_metrics(schema: dict[str, Any]) -> list[Any]:
    """The DeepEval metrics of one answer: JSON validity, schema validity (JsonCorrectnessMetric),
    one field match per field, whole-object exact match."""
    quiet_deepeval_env()
    from deepeval.metrics import JsonCorrectnessMetric

    fields = schema_fields(schema)
    json_validity, field_match, object_match = _metric_classes()
    return [json_validity(),
            JsonCorrectnessMetric(expected_schema=pydantic_model(schema), eval_mode="system_one", async_mode=False),
            *[field_match(f) for f in fields],
            object_match(fields)]


def score_answers(schema: dict[str, Any], texts: Sequence[str], answers: Sequence[Any],
                  golds: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> list[RowScore]:
    """Run every answer through deepeval.evaluate with :func:`deepeval_metrics`; one RowScore per
    answer, in order. A metric that errors counts as a failure (fail closed)."""
    quiet_deepeval_env()
    from deepeval import evaluate
    from deepeval.evaluate import AsyncConfig, CacheConfig, DisplayConfig, ErrorConfig
    from deepeval.test_case import LLMTestCase

    fields = schema_fields(schema)
    names = list(names) if names is not None else [f"row-{i}" for i in range(len(texts))]
    if len(set(names)) != len(names):
        raise ValueError("answer names must be unique")
    if not texts:
        return []
    cases = [LLMTestCase(input=text, actual_output=answer if isinstance(answer, str) else "",
                         expected_output=json.dumps(gold, ensure_ascii=False), name=name)
             for text, answer, gold, name in zip(texts, answers, golds, names)]
    metrics = deepeval_metrics(schema)
    sink = io.StringIO()  # evaluate() prints a banner even with print_results=False
    with contextlib.redirect_stdout(sink):
        result = evaluate(cases, metrics,
                          async_config=AsyncConfig(run_async=True, max_concurrent=20),
                          display_config=DisplayConfig(print_results=False, show_indicator=False,
                                                       inspect_after_run=False),
                          cache_config=CacheConfig(write_cache=False, use_cache=False),
                          error_config=ErrorConfig(ignore_errors=True))
    by_name: dict[str, dict[str, float]] = {}
    for tr in result.test_results:
        by_name[tr.name] = {m.name: (m.score if m.error is None and m.score is not None else 0.0)
                            for m in (tr.metrics_data or [])}
    rows = []
    for name in names:
        scores = by_name.get(name, {})
        rows.append(RowScore(
            json_valid=scores.get("JSON Validity", 0.0) >= 1.0,
            schema_valid=scores.get("Json Correctness", 0.0) >= 1.0,
            fields={f.name: scores.get(f"Field Match [{f.name}]", 0.0) >= 1.0 for f in fields},
        ))
    return rows


def deepeval_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("deepeval")
    except Exception:  # noqa: BLE001 - informational only
        return None


# --------------------------------------------------------------------------- the evaluate stage


def _gold(row: dict[str, Any], where: str) -> dict[str, Any]:
    from distillbuild.errors import StageError

    label = row.get("label")
    if isinstance(label, str):
        try:
            label = json.loads(label)
        except ValueError:
            raise StageError(f"{where}: the gold label is a string that is not JSON") from None
    if not isinstance(label, dict):
        raise StageError(f"{where}: the gold label of an extraction task must be a JSON object")
    return label


def run_stage(spec) -> int:
    """`distill stage evaluate` for extraction tasks: metrics.json and predictions.json."""
    from distillbuild import layout
    from distillbuild.errors import StageError
    from distillbuild.evaluate.classification import bootstrap_intervals, percentile
    from distillbuild.io import read_json, read_jsonl, write_json
    from distillbuild.console import log
    from distillbuild.stages.evaluate import _latencies_ms, _teacher_cost_per_1k, student_cost_per_1k

    schema = spec.get("task.output_schema")
    try:
        fields = schema_fields(schema)
    except UnsupportedSchema as exc:
        raise StageError(f"task.output_schema: {exc}") from None
    model_dir = Path(layout.MODEL_DIR)
    student_file = model_dir / "student.json"
    kind = read_json(student_file).get("kind") if student_file.exists() else None
    if kind != "encoder-extractor":
        raise StageError("evaluate supports extraction with encoder-extractor students so far "
                         f"({model_dir} holds {kind or 'no student.json'})")

    heldout_path = spec.resolve(spec.get("data.heldout"))
    heldout = read_jsonl(heldout_path)
    golds = [_gold(r, f"{heldout_path.name}: row {r.get('id')}") for r in heldout]
    teacher = {str(r["id"]): r for r in read_jsonl(Path(layout.TEACHER_HELDOUT))}
    missing = [r["id"] for r in heldout if str(r["id"]) not in teacher]
    if missing:
        raise StageError(f"the teacher has no answer for {len(missing)} held-out rows (first: {missing[0]}); rerun `teacher`")
    if not heldout:
        raise StageError(f"{heldout_path}: no held-out rows")

    from distillbuild.train.extractor import EncoderExtractor

    model = EncoderExtractor.load(model_dir, threads=spec.get("evaluation.threads"))
    texts = [r["text"] for r in heldout]
    t0 = time.perf_counter()
    student_objs = model.predict(texts)
    batch_s = time.perf_counter() - t0
    student = [json.dumps(o, ensure_ascii=False) for o in student_objs]
    teacher_answers = [teacher[str(r["id"])].get("answer") for r in heldout]
    lat = _latencies_ms(model, texts, spec.get("evaluation.latency_samples"))

    t0 = time.perf_counter()
    ids = [str(r["id"]) for r in heldout]
    scored = score_answers(schema, texts + texts, student + teacher_answers, golds + golds,
                           names=[f"student:{i}" for i in ids] + [f"teacher:{i}" for i in ids])
    deepeval_s = time.perf_counter() - t0
    s_rows, t_rows = scored[: len(heldout)], scored[len(heldout):]
    s, t = summarize(s_rows, fields), summarize(t_rows, fields)

    resamples = spec.get("evaluation.bootstrap")
    fa = bootstrap_intervals([r.field_fraction for r in s_rows], [r.field_fraction for r in t_rows], resamples)
    em = bootstrap_intervals([r.exact for r in s_rows], [r.exact for r in t_rows], resamples)
    intervals = {f"field_{k}": v for k, v in fa.items() if k.startswith("accuracy")}
    intervals.update({k: v for k, v in fa.items() if k.startswith("retention")})
    intervals.update({k.replace("accuracy", "exact_match"): v for k, v in em.items() if k.startswith("accuracy")})

    r6 = lambda v: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v  # noqa: E731
    metrics = {
        "field_accuracy": r6(s["field_accuracy"]),
        "teacher_field_accuracy": r6(t["field_accuracy"]),
        "retention": r6(s["field_accuracy"] / t["field_accuracy"]) if t["field_accuracy"] > 0 else None,
        "exact_match": r6(s["exact_match"]),
        "teacher_exact_match": r6(t["exact_match"]),
        "json_valid_rate": r6(s["json_valid_rate"]),
        "teacher_json_valid_rate": r6(t["json_valid_rate"]),
        "schema_valid_rate": r6(s["schema_valid_rate"]),
        "teacher_schema_valid_rate": r6(t["schema_valid_rate"]),
        "agreement": r6(agreement(fields, student, teacher_answers)),
        "baseline_field_accuracy": r6(constant_baseline(fields, golds)),
        "latency_p50_ms": round(percentile(lat, 0.50), 3),
        "latency_p95_ms": round(percentile(lat, 0.95), 3),
        **intervals,
        "heldout_rows": len(heldout),
        "teacher_cost_per_1k_usd": _teacher_cost_per_1k(spec, [teacher[i] for i in ids]),
        "student_cost_per_1k_usd": student_cost_per_1k(spec, lat),
        "per_field_accuracy": {k: r6(v) for k, v in s["per_field_accuracy"].items()},
        "teacher_per_field_accuracy": {k: r6(v) for k, v in t["per_field_accuracy"].items()},
        "teacher_simulated": spec.get("teacher.provider") == "simulated",
        "batch_throughput_rows_per_s": round(len(texts) / batch_s, 1) if batch_s > 0 else None,
        "evaluator": f"deepeval {deepeval_version()}",
    }
    write_json(Path(layout.METRICS), metrics)
    # One record per row; `actual` / `predicted` / `teacher` hold the first enum field (for a confusion view).
    plot_field = next((f.name for f in fields if f.kind == "enum"), fields[0].name)
    preds = []
    for r, gold, so, ta, sr in zip(heldout, golds, student_objs, teacher_answers, s_rows):
        _, t_obj = parse_answer(ta)
        teacher_value = field_value(t_obj, next(f for f in fields if f.name == plot_field))
        preds.append({
            "id": r["id"],
            "field": plot_field,
            "actual": str(gold.get(plot_field)),
            "predicted": str(so.get(plot_field)),
            "teacher": "(unparseable)" if teacher_value is _MISSING else str(teacher_value),
            "fields_correct": sum(sr.fields.values()),
            "wrong_fields": ",".join(k for k, ok in sr.fields.items() if not ok),
            "student_answer": json.dumps(so, ensure_ascii=False),
            "gold_answer": json.dumps(gold, ensure_ascii=False),
        })
    write_json(Path(layout.PREDICTIONS), preds)
    per_field = ", ".join(f"{k} {v:.3f}" for k, v in s["per_field_accuracy"].items())
    log(f"evaluate: student field accuracy {s['field_accuracy']:.3f}, teacher {t['field_accuracy']:.3f}, "
        f"retention {metrics['retention']}, exact match {s['exact_match']:.3f} (teacher {t['exact_match']:.3f}); "
        f"JSON valid {s['json_valid_rate']:.3f}, schema valid {s['schema_valid_rate']:.3f} "
        f"(teacher {t['json_valid_rate']:.3f}, {t['schema_valid_rate']:.3f}); "
        f"latency p50 {metrics['latency_p50_ms']:.1f} ms, p95 {metrics['latency_p95_ms']:.1f} ms; "
        f"DeepEval scoring {deepeval_s:.1f} s")
    log(f"evaluate: per field {per_field}; constant baseline {metrics['baseline_field_accuracy']:.3f}")
    return 0
