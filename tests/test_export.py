"""The export stage: an encoder-classifier student as ONNX, answering through onnxruntime as the
PyTorch student does, timed beside it; only asked-for, only after a passing gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import LABELS, base_spec, write_rows

from distillbuild.errors import StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

TEXTS = [
    f"ticket number {i}: my {w} does not work since the update"
    for i, w in enumerate(["invoice", "password", "refund", "export button", "login page", "card"] * 4)
]


def test_the_onnx_graph_answers_as_the_pytorch_student(student, tmp_path):
    from distillbuild.export.onnx_classifier import OnnxClassifier, export_onnx
    from distillbuild.train.encoder import EncoderClassifier

    torch_student = EncoderClassifier.load(student, threads=1)
    export_onnx(torch_student, tmp_path / "fp32", opset=17, quantize="none")
    exported = OnnxClassifier.load(tmp_path / "fp32")
    assert sorted(p.name for p in (tmp_path / "fp32").iterdir()) >= ["model.onnx", "student.json", "tokenizer.json"]
    ours, theirs = torch_student.predict_proba(TEXTS), exported.predict_proba(TEXTS)
    assert np.abs(ours - theirs).max() < 1e-4  # the same function, float32 rounding aside
    assert exported.predict(TEXTS) == torch_student.predict(TEXTS)
    assert len(set(exported.predict(TEXTS))) > 1  # a test of something: the head does not answer one label

    export_onnx(torch_student, tmp_path / "int8", opset=17, quantize="int8")
    int8 = OnnxClassifier.load(tmp_path / "int8")
    assert (tmp_path / "int8/model.onnx").stat().st_size < (tmp_path / "fp32/model.onnx").stat().st_size / 3
    agreement = np.mean([a == b for a, b in zip(int8.predict(TEXTS), torch_student.predict(TEXTS))])
    assert agreement >= 0.8 and np.abs(int8.predict_proba(TEXTS) - ours).max() > 0  # near the student, not bit-exact


def test_compare_counts_agreement_accuracy_and_times_both(student):
    import time

    from distillbuild.pipeline.stages.export import compare

    class Fixed:  # answers from a table after a set delay, as a model whose labels and speed are known
        def __init__(self, answers, delay_s):
            self.answers, self.delay_s = answers, delay_s

        def predict(self, texts):
            time.sleep(self.delay_s)
            return [self.answers[t] for t in texts]

    heldout = [{"text": t, "label": LABELS[i % 4]} for i, t in enumerate(TEXTS[:8])]
    right = Fixed({r["text"]: r["label"] for r in heldout}, 0.02)
    two_wrong = Fixed(
        {
            r["text"]: (r["label"] if i >= 2 else "refund" if r["label"] != "refund" else "login")
            for i, r in enumerate(heldout)
        },
        0.005,
    )
    report = compare(right, two_wrong, heldout, samples=5)
    assert report["agreement"] == 0.75 and report["student_accuracy"] == 1.0 and report["accuracy"] == 0.75
    assert report["student_latency_p50_ms"] >= 20 and report["latency_p50_ms"] >= 5
    assert report["speedup_p50"] > 1.5  # 20 ms against 5 ms, sleep's overshoot aside


def _project_with_student(project, student: Path, verdict: str, export: dict | None) -> Path:
    import shutil

    root = project.root
    shutil.copytree(student, root / "build/model")
    write_rows(
        root / "data/heldout.jsonl", [{"id": f"h{i}", "text": t, "label": LABELS[i % 4]} for i, t in enumerate(TEXTS)]
    )
    (root / "build/gate").mkdir(parents=True)
    (root / "build/gate/decision.json").write_text(json.dumps({"verdict": verdict, "gates": []}))
    spec = base_spec()
    spec["evaluation"] = {"latency_samples": 10}
    if export is not None:
        spec["export"] = export
    return project(spec)


def test_the_stage_exports_a_passed_student_and_reports_both_models(project, student, monkeypatch):
    path = _project_with_student(project, student, "pass", {"format": "onnx"})
    monkeypatch.chdir(project.root)
    spec = load_spec(path)
    dvc = yaml.safe_load(render(spec))
    assert list(dvc["stages"])[-2:] == ["gate", "export"]
    assert "build/gate/decision.json" in dvc["stages"]["export"]["deps"]  # after the gate, on what it decided
    assert run_stage("export", spec) == 0
    report = read_report(project.root / "build/export/report.json")
    assert report["agreement"] == 1.0 and report["heldout_rows"] == len(TEXTS) and report["quantize"] == "none"
    assert report["accuracy"] == report["student_accuracy"]
    assert report["speedup_p50"] == pytest.approx(report["student_latency_p50_ms"] / report["latency_p50_ms"], rel=1e-2)
    assert (project.root / "build/export/model/model.onnx").is_file()
    from distillbuild.reports.summary import summary_text

    assert "export     onnx (none), agreement 1.0000" in summary_text(spec)


def test_no_export_section_no_stage_and_a_failed_gate_exports_nothing(project, student, monkeypatch):
    path = _project_with_student(project, student, "fail", None)
    monkeypatch.chdir(project.root)
    spec = load_spec(path)
    assert "export" not in yaml.safe_load(render(spec))["stages"]
    with pytest.raises(StageError, match="does not ask for the export stage"):
        run_stage("export", spec)
    spec_data = yaml.safe_load(path.read_text())
    spec_data["export"] = {"format": "onnx", "quantize": "int8"}
    spec = load_spec(project(spec_data))
    with pytest.raises(StageError, match="only a student that passed its gates is exported"):
        run_stage("export", spec)
    assert not (project.root / "build/export").exists()


def test_onnx_export_of_a_causal_student_is_refused_at_validation(project):
    from distillbuild.errors import SpecError

    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "meta-llama/Llama-3.1-8B-Instruct",
        "trainer": "axolotl",
        "max_length": 256,
    }
    spec["export"] = {"format": "onnx"}
    with pytest.raises(SpecError) as err:
        load_spec(project(spec))
    assert "export.format" in str(err.value) and "encoder-classifier" in str(err.value)


def _causal_spec(**export):
    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "meta-llama/Llama-3.1-8B-Instruct",
        "trainer": "axolotl",
        "max_length": 256,
        "chat_template": "chatml",
    }
    spec["export"] = {"format": "gguf", **export}
    return spec


def test_gguf_export_is_for_causal_students_with_llama_cpp_types(project):
    from distillbuild.errors import SpecError

    spec = load_spec(project(_causal_spec()))
    assert spec.export.quantize == "q8_0"  # gguf's default; onnx's stays none
    deps = yaml.safe_load(render(spec))["stages"]["export"]["deps"]
    assert "build/evaluate/predictions.json" in deps  # the student's held-out answers, not generated twice
    with pytest.raises(SpecError) as err:
        load_spec(project(_causal_spec(quantize="int8")))
    assert "export.quantize" in str(err.value) and "q4_k_m" in str(err.value)
    encoder = base_spec()
    encoder["export"] = {"format": "gguf"}
    with pytest.raises(SpecError) as err:
        load_spec(project(encoder))
    assert "export.format" in str(err.value) and "causal-lm" in str(err.value)
    encoder["export"] = {"format": "onnx", "quantize": "q8_0"}
    with pytest.raises(SpecError, match="export.quantize"):
        load_spec(project(encoder))


def test_the_modelfile_carries_the_students_template_system_prompt_and_greedy_decoding():
    from distillbuild.export.gguf_causal import modelfile

    text = modelfile("triage.q8_0.gguf", "chatml", "Classify the ticket.", 4, 2048)
    assert "FROM ./triage.q8_0.gguf\n" in text
    assert 'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and 'SYSTEM """Classify the ticket."""' in text
    assert "PARAMETER temperature 0\n" in text and "PARAMETER num_predict 4\n" in text
    other = modelfile("m.f16.gguf", None, "x", 8, 2048)
    assert "TEMPLATE" not in other.replace("# TEMPLATE", "") and "stop" not in other


def test_gguf_export_of_a_generation_student_and_human_rows_under_logit_kd_are_refused(project):
    from distillbuild.errors import SpecError

    spec = _causal_spec()
    spec["task"] = {"type": "generation", "instruction": "Answer the ticket."}
    spec["evaluation"] = {
        "judge": {
            "provider": "simulated",
            "model": "judge",
            "criteria": "helpful",
            "simulated": {"answers": "data/key.jsonl"},
        }
    }
    with pytest.raises(SpecError, match="classification only for now"):
        load_spec(project(spec))
    spec = _causal_spec()
    spec["student"]["kd"] = {"mode": "logits"}
    spec["data"]["human"] = "data/heldout.jsonl"
    with pytest.raises(SpecError, match="data.human"):
        load_spec(project(spec))
