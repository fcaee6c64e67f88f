"""Filter reasons, label normalisation, the deterministic split, and the gate failing closed."""

from __future__ import annotations

import math

import pytest

from distillbuild.curate.filters import FilterConfig, curate
from distillbuild.evaluate.classification import accuracy, macro_f1, percentile
from distillbuild.pipeline.stages.dataset import chat_row, in_validation
from distillbuild.pipeline.stages.gate import check, table
from distillbuild.protocol.normalize import normalize_label, normalize_text
from distillbuild.spec.model import Task, build

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

LABELS = ["billing", "refund", "login", "feature_request"]


@pytest.mark.parametrize(
    "answer, label",
    [
        ("billing", "billing"),
        ("  Billing.\n", "billing"),
        ('"refund"', "refund"),
        ("Category: login", "login"),
        ("**Category: Login**", "login"),
        ("The category is: refund!", "refund"),
        ("feature request", "feature_request"),
        ("Feature-Request", "feature_request"),
        ("billing and refund", None),
        ("", None),
        (None, None),
        ("shipping", None),
        ("reverted_card_payment?", "reverted_card_payment?"),
        ("Category: reverted_card_payment?", "reverted_card_payment?"),
    ],
)
def test_normalize_label(answer, label):
    assert normalize_label(answer, LABELS + ["reverted_card_payment?"]) == label


def test_normalize_text_is_nfkc_casefold_whitespace():
    assert normalize_text("Ｈello   WORLD\n") == normalize_text("hello world")
    assert normalize_text("Straße") == normalize_text("STRASSE")


def _row(i, answer="billing", conf=0.9, **kw):
    return {
        "id": f"r{i}",
        "text": f"text {i}",
        "answer": answer,
        "confidence": conf,
        "finish_reason": "stop",
        "label_probs": {answer: 1.0} if answer in LABELS else None,
        "error": None,
        **kw,
    }


def test_every_rejection_has_a_reason_and_counts_add_up():
    rows = [
        _row(1),
        _row(2, answer=None, error="server_error: 500"),
        _row(3, refusal="I can't help with that"),
        _row(4, finish_reason="length"),
        _row(5, answer="shipping"),
        _row(6, conf=0.2),
        {**_row(7), "text": "TEXT   1"},  # exact duplicate of r1 after normalisation
        _row(8, answer="Category: refund"),
    ]
    kept, rejected, report = curate(rows, FilterConfig(labels=tuple(LABELS), min_confidence=0.5))
    assert [r["id"] for r in kept] == ["r1", "r8"]
    assert kept[1]["label"] == "refund"
    assert {r["id"]: r["reason"] for r in rejected} == {
        "r2": "teacher_error",
        "r3": "refusal",
        "r4": "truncated",
        "r5": "invalid_label",
        "r6": "low_confidence",
        "r7": "duplicate",
    }
    assert all(r["detail"] for r in rejected)
    assert report["kept"] + report["rejected"] == report["rows"] == 8
    assert sum(report["by_reason"].values()) == 6


def test_gold_labels_in_the_inputs_audit_the_teacher_before_and_after_the_filter():
    """Inputs that carry a gold label measure the teacher's labels: over every answer, and over
    the rows the filter kept. The gold label rides along; the kept row's label stays the teacher's."""
    rows = [
        _row(1, gold_label="billing"),
        _row(2, answer="refund", gold_label="login", conf=0.3),
        _row(3, answer="login", gold_label="login"),
        _row(4, answer="shipping", gold_label="refund"),
        _row(5, answer="refund"),
    ]
    kept, rejected, report = curate(rows, FilterConfig(labels=tuple(LABELS), min_confidence=0.5))
    audit = report["gold_audit"]
    assert {k: v for k, v in audit.items() if k != "by_min_confidence"} == {
        "rows_with_gold": 4,
        "teacher_accuracy_all": 0.5,
        "kept_with_gold": 2,
        "teacher_accuracy_kept": 1.0,
    }
    sweep = {s["min_confidence"]: (s["kept"], s["teacher_accuracy"]) for s in audit["by_min_confidence"]}
    assert sweep[0.1] == (3, round(2 / 3, 6)) and sweep[0.5] == (2, 1.0) and sweep[0.9] == (2, 1.0)  # r4: no label
    assert [(r["label"], r.get("gold_label")) for r in kept] == [
        ("billing", "billing"),
        ("login", "login"),
        ("refund", None),
    ]
    assert {r["id"]: r["gold_label"] for r in rejected} == {"r2": "login", "r4": "refund"}
    _, _, no_gold = curate([_row(1)], FilterConfig(labels=tuple(LABELS)))
    assert "gold_audit" not in no_gold


def test_filters_can_be_turned_off():
    rows = [_row(1, conf=0.1), {**_row(2, conf=0.1), "text": "text 1"}]
    kept, _, _ = curate(rows, FilterConfig(labels=tuple(LABELS), min_confidence=0, exact_dedup=False))
    assert len(kept) == 2


def test_split_is_deterministic_and_stable_when_rows_are_added():
    ids = [f"r{i}" for i in range(2000)]
    before = {i: in_validation(i, 13, 0.1) for i in ids}
    assert 150 < sum(before.values()) < 250
    after = {i: in_validation(i, 13, 0.1) for i in ids + [f"new{i}" for i in range(500)]}
    assert all(after[i] == before[i] for i in ids)
    assert {i: in_validation(i, 14, 0.1) for i in ids} != before  # the seed salts the hash


def test_chat_rows_are_axolotl_chat_template_shaped():
    row = chat_row(
        build(Task, {"type": "classification", "instruction": "Classify.", "labels": LABELS}),
        {"id": "r1", "text": "I was charged twice", "label": "billing", "label_probs": {"billing": 0.9, "refund": 0.1}},
    )
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][1]["content"] == "I was charged twice"
    assert row["messages"][2]["content"] == "billing"
    assert "billing" in row["messages"][0]["content"]  # the label set is in the system prompt


def test_gate_fails_closed():
    metrics = {"accuracy": 0.9, "retention": float("nan"), "latency_p95_ms": 80.0, "flag": True}
    assert check("accuracy", {"min": 0.85}, metrics)["pass"]
    assert not check("accuracy", {"min": 0.95}, metrics)["pass"]
    assert not check("retention", {"min": 0.5}, metrics)["pass"]  # NaN
    assert not check("macro_f1", {"min": 0.1}, metrics)["pass"]  # missing
    assert not check("flag", {"min": 0}, metrics)["pass"]  # not a number
    assert not check("latency_p95_ms", {"max": 50}, metrics)["pass"]
    rows = [check("accuracy", {"min": 0.95}, metrics), check("latency_p95_ms", {"max": 100}, metrics)]
    text = table(rows)
    assert "FAIL (below 0.95)" in text and "pass" in text and ">= 0.95" in text


def test_metrics():
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    assert accuracy(gold, pred) == 0.75
    assert macro_f1(gold, pred, ["a", "b", "c"]) == pytest.approx((2 / 3 + 0.8) / 2)  # c absent from gold
    assert percentile([float(i) for i in range(1, 201)], 0.95) == 190.0
    assert percentile([5.0], 0.5) == 5.0
    assert math.isnan(accuracy([], []))


def test_a_constant_student_scores_the_baseline_and_is_seen_through():
    """A student that always answers the commonest label reaches baseline_accuracy, and its macro-F1
    says it tells nothing apart, however well its accuracy compares with a weak teacher's."""
    from distillbuild.evaluate.classification import evaluate_classification
    from distillbuild.evaluate.latency import Latency, Serving

    heldout = [{"id": i, "label": "ham" if i % 10 < 7 else "spam"} for i in range(100)]
    teacher = [r["label"] if i % 3 else ("spam" if r["label"] == "ham" else "ham") for i, r in enumerate(heldout)]
    result = evaluate_classification(
        heldout,
        ["spam", "ham"],
        ["ham"] * 100,
        teacher,
        Serving(Latency([[1.0]], {}), 1.0, None, 0.0),
        0,
        student_text=[None] * 100,
        teacher_simulated=False,
    )
    m = result.metrics
    assert m["baseline_accuracy"] == m["accuracy"] == 0.7 and m["retention"] > 1  # above a 66%-right teacher
    assert m["macro_f1"] < 0.42 < m["teacher_macro_f1"]


def test_bootstrap_intervals_bracket_the_estimate_and_narrow_with_more_rows():
    from distillbuild.evaluate.classification import bootstrap_intervals

    small = bootstrap_intervals([True] * 45 + [False] * 5, [True] * 48 + [False] * 2, 2000, seed=1)
    large = bootstrap_intervals([True] * 900 + [False] * 100, [True] * 960 + [False] * 40, 2000, seed=1)
    for ci, acc, ret in ((small, 0.9, 0.9 / 0.96), (large, 0.9, 0.9 / 0.96)):
        assert ci["accuracy_ci_low"] < acc < ci["accuracy_ci_high"]
        assert ci["retention_ci_low"] < ret < ci["retention_ci_high"]
        assert ci["teacher_accuracy_ci_low"] < 0.96 < ci["teacher_accuracy_ci_high"]
    assert (large["accuracy_ci_high"] - large["accuracy_ci_low"]) < (
        small["accuracy_ci_high"] - small["accuracy_ci_low"]
    ) / 2
    assert bootstrap_intervals([True], [True], 0) == {}


def test_a_gate_on_the_interval_low_end():
    metrics = {"accuracy": 0.9, "accuracy_ci_low": 0.84}
    row = check("accuracy", {"min": 0.85, "bound": "ci_low"}, metrics)
    assert not row["pass"] and row["observed"] == 0.84 and row["gate"] == "accuracy (ci low)"
    assert check("accuracy", {"min": 0.85}, metrics)["pass"]
    assert not check("retention", {"min": 0.5, "bound": "ci_low"}, metrics)["pass"]  # no interval: fails closed


def test_latency_is_the_median_of_rounds_so_a_burst_in_one_round_does_not_move_it():
    from distillbuild.evaluate.latency import Latency
    from distillbuild.stats import percentile

    calm, burst = [10.0] * 20, [10.0] * 15 + [500.0] * 5  # another process took the core for a quarter of a round
    latency = Latency([calm, burst, calm], {"cpu": "test", "logical_cpus": 2})
    assert percentile(calm + burst + calm, 0.95) == 500.0  # pooled, the burst is the p95
    assert latency.p95_ms == 10.0 and latency.p50_ms == 10.0
    record = latency.record()
    assert record["rounds_p95_ms"] == [10.0, 500.0, 10.0] and record["machine"]["cpu"] == "test"
    assert record["method"].startswith("median over 3 rounds of 20 one-text calls")
