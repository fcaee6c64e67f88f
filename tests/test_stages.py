"""Stages run directly (no DVC): the openai provider against an OpenAI-compatible server,
secrets kept out of every file, and the Axolotl config for causal-LM students."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import LABELS, base_spec

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.errors import SpecError, StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.pipeline.stages.teacher import response_format
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

SECRET = "sk-live-" + "Q7w" * 12


@pytest.fixture
def server(project):
    root = project.root
    teacher = SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), LABELS, accuracy=1.0, seed=1)
    with SimulatedTeacherServer(teacher, api_key=SECRET) as srv:
        yield srv


def openai_spec(base_url: str) -> dict:
    spec = base_spec()
    spec["teacher"] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": base_url,
        "api_key_env": "DISTILL_TEST_KEY",
        "concurrency": 4,
    }
    return spec


def test_openai_provider_uses_the_env_key_and_writes_it_nowhere(project, server, monkeypatch):
    monkeypatch.setenv("DISTILL_TEST_KEY", SECRET)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(project.root / ".distill/cache"))
    monkeypatch.chdir(project.root)
    spec = load_spec(project(openai_spec(server.base_url)))
    assert run_stage("teacher", spec) == 0
    rows = [json.loads(l) for l in (project.root / "build/teacher/answers.jsonl").open()]
    assert len(rows) == 12 and all(r["answer"] in LABELS and r["error"] is None for r in rows)
    assert server.requests_served == 13  # 12 inputs + 1 held-out
    for path in project.root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert SECRET.encode() not in path.read_bytes(), path


def test_openai_provider_without_its_key_fails_clearly(project, server, monkeypatch):
    monkeypatch.delenv("DISTILL_TEST_KEY", raising=False)
    monkeypatch.chdir(project.root)
    spec = load_spec(project(openai_spec(server.base_url)))
    with pytest.raises(StageError, match="DISTILL_TEST_KEY"):
        run_stage("teacher", spec)
    assert server.requests_served == 0


def test_configure_emits_an_axolotl_qlora_config_for_causal_lm(project, monkeypatch):
    monkeypatch.chdir(project.root)
    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "meta-llama/Llama-3.1-8B-Instruct",
        "trainer": "axolotl",
        "max_length": 256,
        "lora": {"r": 8},
        "chat_template": "llama3",
    }
    assert run_stage("configure", load_spec(project(spec))) == 0
    cfg = yaml.safe_load((project.root / "build/configure/axolotl.yaml").read_text())
    assert cfg["adapter"] == "qlora" and cfg["load_in_4bit"] is True
    assert cfg["lora_r"] == 8 and cfg["chat_template"] == "llama3"
    dataset = cfg["datasets"][0]
    assert dataset["type"] == "chat_template" and dataset["field_messages"] == "messages"
    assert dataset["roles_to_train"] == ["assistant"]
    assert not (project.root / "build/configure/trainer.json").exists()


def test_self_consistency_majority_and_agreement(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    spec = base_spec()
    spec["teacher"].update(samples=5, temperature=1.0)
    spec["teacher"]["simulated"]["accuracy"] = 0.6
    spec["filters"] = {"min_confidence": 0, "min_agreement": 0.8}
    loaded = load_spec(project(spec))
    assert run_stage("teacher", loaded) == 0
    rows = [json.loads(l) for l in (project.root / "build/teacher/answers.jsonl").open()]
    for row in rows:
        assert len(row["samples"]) == 5
        votes = [s for s in row["samples"] if s == row["answer"]]
        assert row["agreement"] == len(votes) / 5
        assert all(row["samples"].count(s) <= len(votes) for s in row["samples"])  # the majority was kept
        assert abs(sum(row["label_probs"].values()) - 1) < 1e-9
    assert len({r["agreement"] for r in rows}) > 1  # a 60%-accurate teacher does not always agree with itself
    assert run_stage("filter", loaded) == 0
    report = read_report(project.root / "build/filter/report.json")
    assert report["by_reason"]["low_agreement"] == sum(r["agreement"] < 0.8 for r in rows)


def test_samples_without_temperature_is_refused(project):
    spec = base_spec()
    spec["teacher"]["samples"] = 3
    with pytest.raises(SpecError) as info:
        load_spec(project(spec))
    assert any(i.path == "teacher.samples" for i in info.value.issues)


def test_extraction_requests_structured_output_and_records_parse_failures(project, monkeypatch, tmp_path):
    root = project.root
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["order", "amount"],
        "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
    }
    rows = [{"id": f"e{i}", "text": f"Order A-{i} was charged {i}.50 twice"} for i in range(40)]
    key = [{"text": r["text"], "label": {"order": f"A-{i}", "amount": i + 0.5}} for i, r in enumerate(rows)]
    (root / "data/inputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "data/heldout.jsonl").write_text(
        json.dumps({"id": "h", "text": rows[0]["text"], "label": key[0]["label"]}) + "\n"
    )
    (root / "data/key.jsonl").write_text("".join(json.dumps(k) + "\n" for k in key))
    teacher = SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), [], accuracy=0.8, seed=2)
    with SimulatedTeacherServer(teacher, faults={"truncated": 0.25}, seed=9) as srv:
        spec = base_spec()
        spec["task"] = {"type": "extraction", "instruction": "Extract the order and amount.", "output_schema": schema}
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o",
            "base_url": srv.base_url,
            "api_key_env": "DISTILL_TEST_KEY",
            "top_logprobs": 0,
        }
        spec["filters"] = {}
        spec["student"] = {
            "kind": "encoder-extractor",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "trainer": "local",
            "kd": {"alpha": 0},
        }
        spec["gates"] = {"heldout_rows": {"min": 1}}
        monkeypatch.setenv("DISTILL_TEST_KEY", "k")
        monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.chdir(root)
        loaded = load_spec(project(spec))
        assert response_format(loaded.task)["json_schema"] == {"name": "answer", "strict": True, "schema": schema}
        assert run_stage("teacher", loaded) == 0
        truncated = srv.stats["truncated"]
    every = [json.loads(l) for l in (root / "build/teacher/answers.jsonl").open()]
    # e0 copies the held-out row: the input checks drop it before the teacher is asked.
    assert [(a["id"], a.get("skipped")) for a in every if a.get("skipped")] == [("e0", "contaminated")]
    answers = [a for a in every if not a.get("skipped")]
    failed = [a for a in answers if a["parse_error"]]
    assert len(failed) == sum(a["finish_reason"] == "length" for a in answers) > 0
    assert truncated >= len(failed)
    parsed = [a["parsed"] for a in answers if a["parsed"] is not None]
    assert len(parsed) + len(failed) == 39
    exact = sum(p == k["label"] for p, k in zip([a["parsed"] for a in answers], key[1:]) if p is not None)
    assert 0.6 < exact / len(parsed) < 1  # right about 80% of the time, wrong by a dropped field otherwise


def test_gold_labels_in_the_inputs_reach_the_filters_audit_and_nothing_else(project, server, monkeypatch, tmp_path):
    """Inputs carrying gold labels: the teacher is asked the same texts, the answers carry the gold
    label, the filter report audits the teacher with it, and the training rows never see it."""
    root = project.root
    rows = [json.loads(l) for l in (root / "data/inputs.jsonl").open()]
    gold = {r["id"]: LABELS[i % 4] if i % 3 else "refund" for i, r in enumerate(rows)}  # every third one wrong-ish
    (root / "data/inputs.jsonl").write_text("".join(json.dumps({**r, "label": gold[r["id"]]}) + "\n" for r in rows))
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DISTILL_TEST_KEY", SECRET)
    monkeypatch.chdir(root)
    spec = openai_spec(server.base_url)
    spec["filters"] = {"min_confidence": 0, "min_rows_per_label": 0}
    loaded = load_spec(project(spec))
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0 and run_stage("dataset", loaded) == 0
    answers = [json.loads(l) for l in (root / "build/teacher/answers.jsonl").open()]
    assert {a["id"]: a["gold_label"] for a in answers} == gold
    right = sum(a["answer"] == gold[a["id"]] for a in answers)
    audit = read_report(root / "build/filter/report.json")["gold_audit"]
    assert audit["rows_with_gold"] == 12 and audit["teacher_accuracy_all"] == round(right / 12, 6) < 1
    assert "gold_label" not in (root / "build/dataset/train.jsonl").read_text()
