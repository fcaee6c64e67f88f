"""The comparison `distill reproduce` makes: hashes and metrics, timing reported apart."""

import pytest

from distillbuild.review.reproduce import compare, render

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def _lineage(model="m1"):
    return {
        "spec_sha256": "s",
        "data_sha256": {"inputs": "i", "heldout": "h"},
        "dataset_sha256": "d",
        "model_sha256": model,
        "teacher": {"answers_sha256": "a", "heldout_answers_sha256": "ha"},
    }


def test_identical_builds_compare_equal_whatever_the_timing():
    rows = compare(
        _lineage(), _lineage(), {"accuracy": 0.9, "latency_p95_ms": 10.0}, {"accuracy": 0.9, "latency_p95_ms": 55.0}
    )
    assert all(r["same"] for r in rows)
    assert not any("latency" in r["what"] for r in rows)


def test_a_different_model_and_metric_are_named():
    rows = compare(_lineage(), _lineage("m2"), {"accuracy": 0.9}, {"accuracy": 0.88})
    assert {r["what"] for r in rows if not r["same"]} == {"model_sha256", "metrics.accuracy"}
    report = {
        "rev": "x@v1.0.0",
        "commit": "abcdef1234567",
        "identical": False,
        "rows": rows,
        "teacher_calls_billed": 0,
        "teacher_calls_from_cache": 10,
        "timing": {},
    }
    text = render(report)
    assert "DIFFERS" in text and "model_sha256" in text and "metrics.accuracy" in text
