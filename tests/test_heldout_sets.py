"""More held-out sets (data.heldout_sets): the student answers each one, its figures are written as
METRIC@SET and gated apart, training rows that copy any of them are decontaminated away, and a gate
on a set the spec does not name is refused."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import LABELS, base_spec, write_rows

from distillbuild.errors import SpecError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def _spec(project, gates: dict):
    root = project.root
    inputs = [json.loads(line) for line in (root / "data/inputs.jsonl").open()]
    # "recent": two of the inputs' texts (the filter must drop them from training) and new ones.
    recent = [{"id": f"r{i}", "text": r["text"], "label": LABELS[i % 4]} for i, r in enumerate(inputs[:2])]
    recent += [
        {"id": f"r{i}", "text": f"a recent ticket {i} about {LABELS[i % 4]}", "label": LABELS[i % 4]}
        for i in range(2, 12)
    ]
    write_rows(root / "data/recent.jsonl", recent)
    spec = base_spec()
    spec["data"]["heldout_sets"] = {"recent": "data/recent.jsonl"}
    spec["filters"] = {"min_confidence": 0.0, "dedup": {"exact": True}, "decontaminate": True}
    spec["evaluation"] = {"latency_samples": 5, "bootstrap": 200, "min_heldout_rows": 1}
    spec["gates"] = gates
    return project(spec)


@pytest.mark.build  # trains or loads a model
def test_each_heldout_set_is_evaluated_and_gated_apart(project, student, monkeypatch, tmp_path):
    root = project.root
    path = _spec(project, {"accuracy@recent": {"min": 0.0, "bound": "ci_low"}, "heldout_rows@recent": {"min": 12}})
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    loaded = load_spec(path)
    for stage in ("teacher", "filter"):
        assert run_stage(stage, loaded) == 0
    rejected = [json.loads(line) for line in (root / "build/filter/rejected.jsonl").open()]
    copied = [json.loads(line)["id"] for line in (root / "data/inputs.jsonl").open()][:2]
    assert sorted(r["id"] for r in rejected if r["reason"] == "contaminated") == sorted(copied)  # what "recent" copies
    shutil.copytree(student, root / "build/model")
    assert run_stage("evaluate", loaded) == 0
    metrics = read_report(root / "build/evaluate/metrics.json")
    assert metrics["heldout_rows@recent"] == 12 and 0 <= metrics["accuracy@recent"] <= 1
    assert metrics["accuracy@recent_ci_low"] <= metrics["accuracy@recent"] <= metrics["accuracy@recent_ci_high"]
    assert "macro_f1@recent" in metrics and metrics["heldout_rows"] == 1  # the main set stands as it was
    assert run_stage("gate", loaded) == 0
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert [g["gate"] for g in decision["gates"]][:2] == ["accuracy@recent (ci low)", "heldout_rows@recent"]


def test_a_gate_on_a_set_the_spec_does_not_name_is_refused(project):
    with pytest.raises(SpecError, match="accuracy@older"):
        load_spec(_spec(project, {"accuracy@older": {"min": 0.5}}))
    with pytest.raises(SpecError, match="accuracy@recent.min"):
        load_spec(_spec(project, {"accuracy@recent": {"min": 1.2}}))
