"""The comparison `distill reproduce` makes: hashes and metrics, timing reported apart."""

import pytest

from distillbuild.review.equivalence import (
    DIFFERENT,
    EQUIVALENT,
    EXIT_CODES,
    IDENTICAL,
    first_divergence,
    gated_metrics,
    prediction_agreement,
    verdict,
)
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
    assert "DIFFERENT from the record" in text and "model_sha256" in text and "metrics.accuracy" in text


# The verdict (review/equivalence.py): IDENTICAL, EQUIVALENT or DIFFERENT, and the first difference.


def _lock(model="m1", data="d1", kept="k1", decision="x1"):
    return {
        "stages": {
            "teacher": {
                "deps": [{"path": "data/inputs.jsonl", "md5": data}],
                "outs": [{"path": "answers", "md5": "a"}],
            },
            "filter": {"deps": [{"path": "answers", "md5": "a"}], "outs": [{"path": "kept", "md5": kept}]},
            "train": {"deps": [{"path": "kept", "md5": kept}], "outs": [{"path": "build/model", "md5": model}]},
            "gate": {"deps": [{"path": "build/model", "md5": model}], "outs": [{"path": "decision", "md5": decision}]},
        }
    }


def test_the_first_stage_with_other_outputs_is_named_with_its_cause():
    assert first_divergence(_lock(), _lock()) is None
    assert first_divergence(_lock(), _lock(decision="x2"), record_files=("decision",)) is None  # the commit only
    same_inputs = first_divergence(_lock(), _lock(model="m2"))
    assert same_inputs["stage"] == "train" and same_inputs["inputs"] == [] and same_inputs["outputs"] == ["build/model"]
    assert "the same inputs gave other outputs" in same_inputs["cause"]
    changed = first_divergence(_lock(), _lock(data="d2", kept="k2", model="m2"))
    assert changed["stage"] == "filter"  # the teacher's answers came out the same: the filter is the first
    changed = first_divergence(
        _lock(),
        {
            "stages": {
                **_lock()["stages"],
                "teacher": {
                    "deps": [{"path": "data/inputs.jsonl", "md5": "d2"}],
                    "outs": [{"path": "answers", "md5": "a2"}],
                },
            }
        },
    )
    assert changed["stage"] == "teacher" and changed["inputs"] == ["data/inputs.jsonl"]
    assert changed["cause"].startswith("its inputs changed (data/inputs.jsonl)")


def test_predictions_agree_row_by_row():
    then = [{"id": f"h{i}", "predicted": "a"} for i in range(200)]
    now = [{**r, "predicted": "b"} if r["id"] == "h7" else r for r in then]
    assert prediction_agreement(then, now) == {"rows": 200, "same": 199, "share": 0.995}
    assert prediction_agreement(then, now[:100])["same"] == 99  # a missing row disagrees
    extraction = [{"id": "h1", "field": "intent", "student_answer": '{"a": 1}', "predicted": "x"}]
    assert prediction_agreement(extraction, [{**extraction[0], "student_answer": '{"a": 2}'}])["same"] == 0


def test_gated_metrics_hold_inside_the_recorded_interval_and_latency_is_left_out():
    gates = [
        {"gate": "accuracy", "pass": True},
        {"gate": "retention (ci low)", "pass": True},
        {"gate": "latency_p95_ms", "pass": True, "measured": True, "observed": None},
        {"gate": "macro_f1", "pass": True},
    ]
    then = {"accuracy": 0.9, "accuracy_ci_low": 0.86, "accuracy_ci_high": 0.94, "retention": 1.0}
    then |= {"retention_ci_low": 0.95, "retention_ci_high": 1.05}
    inside = gated_metrics(gates, gates, then, {**then, "accuracy": 0.93, "retention": 0.99})
    assert [g["metric"] for g in inside] == ["accuracy", "retention", "macro_f1"]
    assert all(g["holds"] for g in inside)
    outside = gated_metrics(gates, gates, then, {**then, "accuracy": 0.85})
    assert [g["holds"] for g in outside] == [False, True, True]
    flipped = gated_metrics(gates, [{**g, "pass": g["gate"] != "macro_f1"} for g in gates], then, then)
    assert [g["holds"] for g in flipped] == [True, True, False]


def test_the_verdict_and_its_exit_code():
    same_inputs = {"stage": "train", "inputs": [], "outputs": ["build/model"], "cause": ""}
    other_inputs = {**same_inputs, "inputs": ["data/inputs.jsonl"]}
    agrees, disagrees = {"share": 0.996}, {"share": 0.99}
    held, broken = [{"holds": True}], [{"holds": False}]
    assert verdict(True, None, agrees, held, 0.995) == IDENTICAL
    assert verdict(False, same_inputs, agrees, held, 0.995) == EQUIVALENT
    assert verdict(False, same_inputs, disagrees, held, 0.995) == DIFFERENT
    assert verdict(False, same_inputs, disagrees, held, 0.98) == EQUIVALENT  # the tolerance is settable
    assert verdict(False, same_inputs, agrees, broken, 0.995) == DIFFERENT
    assert verdict(False, other_inputs, agrees, held, 0.995) == DIFFERENT  # a changed input is never equivalent
    assert len({EXIT_CODES[v] for v in (IDENTICAL, EQUIVALENT, DIFFERENT)}) == 3 and EXIT_CODES[IDENTICAL] == 0
