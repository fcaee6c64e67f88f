"""Progressive distillation (teacher.provider: pipeline): another pipeline's built student is the
teacher. The teacher stage starts `distill serve` for it as a child process and asks it through
the OpenAI SDK; its probabilities over the labels become this pipeline's soft labels; a rerun
pays nothing; a pinned version must match what `distill promote` recorded; lineage and the model
card record the chain of teachers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, base_spec

from distillbuild.errors import SpecError, StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True, capture_output=True
    )


def _upstream(root: Path, student: Path) -> Path:
    """A built pipeline in root/upstream: its spec, its student, and the gate's record of it."""
    from distillbuild.pipeline.lineage import lineage

    up = root / "upstream"
    spec = base_spec()
    spec["name"] = "mid"
    spec["promote"] = {"name": "mid"}
    spec["data"] = {"inputs": "../data/inputs.jsonl", "heldout": "../data/heldout.jsonl"}
    spec["teacher"]["simulated"]["answers"] = "../data/key.jsonl"
    up.mkdir()
    (up / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copytree(student, up / "build/model")
    (up / "build/gate").mkdir(parents=True)
    record = lineage(load_spec(up / "distill.yaml"))
    (up / "build/gate/decision.json").write_text(json.dumps({"verdict": "pass", "lineage": record}))
    return up


def _downstream(project, version: str | None = None) -> Path:
    spec = base_spec()
    spec["name"] = "small"
    spec["teacher"] = {
        "provider": "pipeline",
        "model": "mid-student",
        "top_logprobs": 4,
        "price": {"input_per_mtok": 0, "output_per_mtok": 0},
        "pipeline": {"path": "upstream", "version": version},
    }
    return project(spec)


def test_a_pipelines_student_teaches_the_next_one_with_its_own_probabilities(project, student, monkeypatch, tmp_path):
    from distillbuild.train.encoder import EncoderClassifier

    root = project.root
    _upstream(root, student)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    spec = load_spec(_downstream(project))
    assert "upstream/build/model" in yaml.safe_load(render(spec))["stages"]["teacher"]["deps"]
    assert run_stage("teacher", spec) == 0
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").open()]
    texts = [json.loads(line)["text"] for line in (root / "data/inputs.jsonl").open()]
    probs = EncoderClassifier.load(student).predict_proba(texts)
    by_text = {a["text"]: a for a in answers}
    for text, p in zip(texts, probs):
        answer = by_text[text]
        assert answer["answer"] == LABELS[int(p.argmax())]  # the mid-size student's answer
        soft = answer["label_probs"]
        for label, expected in zip(LABELS, p):  # its probabilities, through logprobs, as soft labels
            assert soft.get(label, 0.0) == pytest.approx(float(expected), abs=1e-4)
    report = read_report(root / "build/teacher/report.json")
    assert report["calls"]["billed"] > 0 and report["calls"]["from_cache"] == 0
    assert run_stage("teacher", spec) == 0  # the same served model: answered from the cache
    assert read_report(root / "build/teacher/report.json")["calls"]["billed"] == 0

    from distillbuild.pipeline.lineage import lineage, teacher_chain

    chain = teacher_chain(lineage(spec)["teacher"])
    assert chain == ["simulated:sim", "mid (encoder-classifier sentence-transformers/all-MiniLM-L6-v2)"]


def test_a_pinned_version_must_be_the_model_that_was_promoted(project, student, monkeypatch, tmp_path):
    root = project.root
    up = _upstream(root, student)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "mid built")
    _git(root, "tag", "-a", "mid@v1.0.0", "-m", "promoted")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    with pytest.raises(StageError, match="no such promoted version"):
        run_stage("teacher", load_spec(_downstream(project, "mid@v9.0.0")))
    spec = load_spec(_downstream(project, "mid@v1.0.0"))
    assert run_stage("teacher", spec) == 0
    head = (
        up / "build/model/head.pt"
        if (up / "build/model/head.pt").exists()
        else next(p for p in sorted((up / "build/model").iterdir()) if p.is_file())
    )
    head.write_bytes(head.read_bytes() + b"\0")  # the upstream rebuilt into another model
    with pytest.raises(StageError, match="is not the one mid@v1.0.0 recorded"):
        run_stage("teacher", spec)


def test_a_pipeline_teacher_must_exist_be_another_pipeline_and_share_the_labels(project, student):
    root = project.root
    with pytest.raises(SpecError, match="teacher.pipeline.path"):
        _downstream(project) and load_spec(root / "distill.yaml")  # no upstream yet
    up = _upstream(root, student)
    other = yaml.safe_load((up / "distill.yaml").read_text())
    other["task"]["labels"] = ["spam", "legit"]
    (up / "distill.yaml").write_text(yaml.safe_dump(other, sort_keys=False))
    with pytest.raises(SpecError) as err:
        load_spec(_downstream(project))
    assert "teacher.pipeline.path" in str(err.value) and "labels" in str(err.value)
    spec = base_spec()
    spec["teacher"] = {"provider": "pipeline", "model": "me", "pipeline": {"path": "."}}
    with pytest.raises(SpecError, match="own"):
        load_spec(project(spec))
