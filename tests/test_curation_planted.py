"""Planted faults: every kind of bad teacher row, each counted under exactly its reason.

tests/data/planted_*.jsonl are teacher answers in the `teacher` stage's format; each row's
`planted` field names the reason it was planted for ("kept" for the good ones). The held-out
leaks are training inputs that copy a row of planted_heldout.jsonl with a greeting added.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from distillbuild.curate.filters import REASONS, FilterConfig, curate

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

DATA = Path(__file__).parent / "data"
LABELS = ("billing", "refund", "login", "bug")


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).open()]


def _check(rows, kept, rejected, report, expected):
    assert {r["id"]: r["reason"] for r in rejected} == {r["id"]: r["planted"] for r in rows if r["planted"] != "kept"}
    assert sorted(r["id"] for r in kept) == sorted(r["id"] for r in rows if r["planted"] == "kept")
    assert {k: v for k, v in report["by_reason"].items() if v} == expected
    assert set(report["by_reason"]) == set(REASONS)
    assert all(r["detail"] for r in rejected)


def test_planted_classification_faults_give_exact_counts():
    rows = _rows("planted_classification.jsonl")
    heldout = [r["text"] for r in _rows("planted_heldout.jsonl")]
    cfg = FilterConfig(labels=LABELS, min_confidence=0.6, near_threshold=0.8, decontaminate=True)
    kept, rejected, report = curate(rows, cfg, heldout)
    _check(
        rows,
        kept,
        rejected,
        report,
        {
            "teacher_error": 2,
            "refusal": 2,
            "empty": 1,
            "truncated": 2,
            "invalid_label": 2,
            "low_confidence": 4,
            "duplicate": 3,
            "near_duplicate": 3,
            "contaminated": 2,
        },
    )
    assert report["kept"] == 20 and report["rows"] == 41
    assert sum(report["class_balance"].values()) == 20


def test_planted_extraction_faults_give_exact_counts():
    rows = _rows("planted_extraction.jsonl")
    schema = {
        "type": "object",
        "required": ["invoice", "total", "currency"],
        "properties": {"invoice": {"type": "string"}, "total": {"type": "number"}, "currency": {"type": "string"}},
    }
    cfg = FilterConfig(task_type="extraction", output_schema=schema, decontaminate=False)
    kept, rejected, report = curate(rows, cfg)
    _check(rows, kept, rejected, report, {"invalid_json": 2, "schema_mismatch": 1, "truncated": 1})


def test_filters_off_keep_what_they_would_have_dropped():
    rows = _rows("planted_classification.jsonl")
    cfg = FilterConfig(labels=LABELS, min_confidence=0, exact_dedup=False, near_threshold=None, decontaminate=False)
    _, rejected, report = curate(rows, cfg, [r["text"] for r in _rows("planted_heldout.jsonl")])
    reasons = Counter(r["reason"] for r in rejected)
    assert not {"low_confidence", "duplicate", "near_duplicate", "contaminated"} & set(reasons)
    assert report["kept"] == 20 + 4 + 3 + 3 + 2


def test_rules_and_class_cap():
    rows = [
        {"id": i, "text": f"text number {i}", "answer": a, "confidence": 0.9, "finish_reason": "stop"}
        for i, a in enumerate(["billing", "billing", "billing", "refund", "login", "bug"])
    ]
    kept, rejected, report = curate(
        rows, FilterConfig(labels=LABELS, max_per_class=2, must_not_match="^bug$", decontaminate=False)
    )
    assert [r["label"] for r in kept] == ["billing", "billing", "refund", "login"]
    assert {r["id"]: r["reason"] for r in rejected} == {2: "class_cap", 5: "pattern"}
    assert report["class_balance_before_cap"]["billing"] == 3 and report["class_balance"]["billing"] == 2
    _, rejected, _ = curate(rows, FilterConfig(labels=LABELS, min_chars=6, decontaminate=False))
    assert {r["id"] for r in rejected} == {4, 5}  # "login" and "bug" are shorter than 6 characters
