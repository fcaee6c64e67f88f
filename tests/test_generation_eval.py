"""Generation end to end through `evaluate`: a causal student behind an OpenAI-compatible endpoint,
student and teacher answers scored by G-Eval with the (simulated) judge from evaluation.judge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import write_rows
from test_judge import CAPITALS, gen_spec, question

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.measurements import read_report
from distillbuild.metric_names import METRICS_BY_TASK
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


@pytest.fixture
def capitals(tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    key = [{"text": question(c), "label": cap, "alternatives": [alt]} for c, cap, alt in CAPITALS]
    write_rows(tmp_path / "data/key.jsonl", key)
    write_rows(
        tmp_path / "data/inputs.jsonl",
        [{"id": f"q{i}", "text": question(c)} for i, (c, _, _) in enumerate(CAPITALS[:6])],
    )
    write_rows(
        tmp_path / "data/heldout.jsonl",
        [{"id": f"h{i}", "text": question(c), "label": cap} for i, (c, cap, _) in enumerate(CAPITALS[6:])],
    )
    return tmp_path


@pytest.mark.slow  # over 4 s: left out of the unit tier
def test_generation_is_scored_by_the_judge_for_student_and_teacher(capitals, monkeypatch):
    root = capitals
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(root / ".distill/cache"))
    monkeypatch.chdir(root)
    # The student: an endpoint right half of the time (its mistakes are the key's alternatives).
    student = SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), [], accuracy=0.5, seed=4)
    with SimulatedTeacherServer(student) as srv:
        spec = gen_spec()
        spec["teacher"]["simulated"]["accuracy"] = 1.0
        spec["student"]["endpoint"] = {"base_url": srv.base_url, "model": "capitals-lora"}
        spec["evaluation"].update(latency_samples=4, bootstrap=100, min_heldout_rows=1)
        (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        loaded = load_spec(root / "distill.yaml")
        assert run_stage("teacher", loaded) == 0
        assert run_stage("evaluate", loaded) == 0
    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    heldout = CAPITALS[6:]
    right = [student.answer(question(c)).label == cap for c, cap, _ in heldout]
    assert [p["student"] for p in predictions] == [student.answer(question(c)).label for c, _, _ in heldout]
    # The simulated judge (accuracy 1.0) passes right answers and fails wrong ones.
    assert metrics["geval_pass_rate"] == pytest.approx(sum(right) / len(right))
    assert metrics["teacher_geval_pass_rate"] == 1.0
    assert 0 < metrics["geval_mean"] < metrics["teacher_geval_mean"]
    assert metrics["retention"] == pytest.approx(metrics["geval_mean"] / metrics["teacher_geval_mean"], abs=1e-4)
    assert metrics["heldout_rows"] == len(heldout) and metrics["latency_p95_ms"] > 0
    assert set(METRICS_BY_TASK["generation"]) <= set(metrics)  # every metric a gate may name is written
    # A second evaluation asks the judge nothing new: every verdict is cached.
    with SimulatedTeacherServer(student) as srv2:
        spec["student"]["endpoint"]["base_url"] = srv2.base_url
        (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        assert run_stage("evaluate", load_spec(root / "distill.yaml")) == 0
    again = read_report(root / "build/evaluate/metrics.json")
    assert again["geval_mean"] == metrics["geval_mean"]
    assert again["judge"]["calls"]["billed"] == 0
