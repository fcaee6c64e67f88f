"""The extraction answers scored through DeepEval: one test case per answer, nine-odd metrics each.

- JSON validity: it parses as JSON (custom metric ``JSON Validity``);
- schema validity: DeepEval's ``JsonCorrectnessMetric`` (``eval_mode="system_one"``: decided in
  code, no judge) against a pydantic model built from ``task.output_schema``;
- field match, per field of the schema (custom ``Field Match [NAME]``: :mod:`.field_match`);
- whole-object exact match: every field matches (custom ``Object Exact Match``).

Everything runs through ``deepeval.evaluate`` (about 2 s for 400 answers x 9 metrics on 2 cores),
with telemetry, .env reading, caches and result files off. Importing deepeval costs 1-2 s, so it
is imported on first use.
"""

from __future__ import annotations

import contextlib
import io
import json
from functools import lru_cache
from importlib.metadata import version
from typing import Any, Sequence

from distillbuild.deepeval_env import quiet_deepeval
from distillbuild.protocol.field_match import MISSING, RowScore, field_matches, field_value, parse_answer, values_match
from distillbuild.spec.output_schema import FieldSpec, pydantic_model, schema_fields


def quiet_deepeval_env() -> None:
    """DeepEval kept offline and out of the working directory (distillbuild.deepeval_env), then
    imported with its import-time banner ("configured for read only environment") swallowed."""
    quiet_deepeval()
    with contextlib.redirect_stdout(io.StringIO()):
        import deepeval.test_run  # noqa: F401 - lazy: importing deepeval costs 1-2 s


@lru_cache(maxsize=1)
def _code_metric():
    """The base of the custom metrics: decided in code, score 1 or 0, success when the score
    reaches the threshold (defined on first use: it subclasses deepeval's BaseMetric)."""
    quiet_deepeval_env()
    from deepeval.metrics import BaseMetric  # lazy: importing deepeval costs 1-2 s
    from deepeval.test_case import SingleTurnParams

    class CodeMetric(BaseMetric):
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

    return CodeMetric


@lru_cache(maxsize=1)
def _metric_classes():
    """The custom DeepEval metrics: JSON validity, field match, whole-object exact match."""
    code_metric = _code_metric()  # quiets DeepEval before it is imported
    from deepeval.test_case import SingleTurnParams  # lazy: importing deepeval costs 1-2 s

    class JsonValidityMetric(code_metric):
        title = "JSON Validity"

        def decide(self, test_case) -> tuple[bool, str]:
            valid, _ = parse_answer(test_case.actual_output)
            return valid, "parses as JSON" if valid else "not JSON"

    class FieldMatchMetric(code_metric):
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
            shown = "missing" if got is MISSING else json.dumps(got, ensure_ascii=False)
            return ok, f"{f.name}: {shown} vs gold {json.dumps(gold.get(f.name), ensure_ascii=False)}"

    class ObjectMatchMetric(code_metric):
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
    from deepeval.metrics import JsonCorrectnessMetric  # lazy: importing deepeval costs 1-2 s

    fields = schema_fields(schema)
    json_validity, field_match, object_match = _metric_classes()
    return [
        json_validity(),
        JsonCorrectnessMetric(expected_schema=pydantic_model(schema), eval_mode="system_one", async_mode=False),
        *[field_match(f) for f in fields],
        object_match(fields),
    ]


def score_answers(
    schema: dict[str, Any],
    texts: Sequence[str],
    answers: Sequence[Any],
    golds: Sequence[dict[str, Any]],
    names: Sequence[str] | None = None,
) -> list[RowScore]:
    """Run every answer through deepeval.evaluate with :func:`deepeval_metrics`; one RowScore per
    answer, in order. A metric that errors counts as a failure (fail closed)."""
    quiet_deepeval_env()
    from deepeval.test_case import LLMTestCase  # lazy: importing deepeval costs 1-2 s

    fields = schema_fields(schema)
    names = list(names) if names is not None else [f"row-{i}" for i in range(len(texts))]
    if len(set(names)) != len(names):
        raise ValueError("answer names must be unique")
    if not texts:
        return []
    cases = [
        LLMTestCase(
            input=text,
            actual_output=answer if isinstance(answer, str) else "",
            expected_output=json.dumps(gold, ensure_ascii=False),
            name=name,
        )
        for text, answer, gold, name in zip(texts, answers, golds, names)
    ]
    by_name = _run_deepeval(cases, deepeval_metrics(schema))
    rows = []
    for name in names:
        scores = by_name.get(name, {})
        rows.append(
            RowScore(
                json_valid=scores.get("JSON Validity", 0.0) >= 1.0,
                schema_valid=scores.get("Json Correctness", 0.0) >= 1.0,
                fields={f.name: scores.get(f"Field Match [{f.name}]", 0.0) >= 1.0 for f in fields},
            )
        )
    return rows


def _run_deepeval(cases: list[Any], metrics: list[Any]) -> dict[str, dict[str, float]]:
    """deepeval.evaluate, quiet and cache-free: {test case name: {metric name: score}}, an errored
    metric scoring 0."""
    from deepeval import evaluate  # lazy: importing deepeval costs 1-2 s
    from deepeval.evaluate import AsyncConfig, CacheConfig, DisplayConfig, ErrorConfig

    sink = io.StringIO()  # evaluate() prints a banner even with print_results=False
    with contextlib.redirect_stdout(sink):
        result = evaluate(
            cases,
            metrics,
            async_config=AsyncConfig(run_async=True, max_concurrent=20),
            display_config=DisplayConfig(print_results=False, show_indicator=False, inspect_after_run=False),
            cache_config=CacheConfig(write_cache=False, use_cache=False),
            error_config=ErrorConfig(ignore_errors=True),
        )
    by_name: dict[str, dict[str, float]] = {}
    for tr in result.test_results:
        by_name[tr.name] = {
            m.name: (m.score if m.error is None and m.score is not None else 0.0) for m in (tr.metrics_data or [])
        }
    return by_name


def deepeval_version() -> str | None:
    try:
        return version("deepeval")
    except Exception:  # noqa: BLE001 - informational only
        return None
