"""Evaluating a causal-LM student: through an OpenAI-compatible endpoint (as vLLM would serve
the adapter) and locally, a base model with a LoRA adapter loaded by peft."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELS, base_spec, write_rows

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec


def _random_llama(tok_dir: Path, chat_template: str, *, seed: int, hidden: int, layers: int):
    """A seeded random Llama with the tokenizer in tok_dir and this chat template, saved there;
    returns the tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    tok.chat_template = chat_template
    tok.save_pretrained(str(tok_dir))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 16,
        num_key_value_heads=hidden // 32,
        max_position_embeddings=256,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(str(tok_dir))
    return tok


def _heldout(root: Path, n: int = 40) -> list[dict]:
    rows = [
        {"id": f"h{i}", "text": f"held-out ticket {i} regarding {LABELS[i % 4]}", "label": LABELS[i % 4]}
        for i in range(n)
    ]
    write_rows(root / "data/heldout.jsonl", rows)
    inputs = [json.loads(l) for l in (root / "data/inputs.jsonl").open()]
    key = [{"text": r["text"], "label": LABELS[i % 4]} for i, r in enumerate(inputs)]
    write_rows(root / "data/key.jsonl", key + [{"text": r["text"], "label": r["label"]} for r in rows])
    return rows


def test_causal_student_behind_an_endpoint_is_evaluated_like_any_student(project, monkeypatch, tmp_path):
    root = project.root
    heldout = _heldout(root)
    # The "student" is another OpenAI-compatible server: right 75% of the time on these texts.
    student = SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), LABELS, accuracy=0.75, seed=5)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STUDENT_KEY", "student-secret-value")
    monkeypatch.chdir(root)
    with SimulatedTeacherServer(student, api_key="student-secret-value") as srv:
        spec = base_spec()
        spec["teacher"]["simulated"]["accuracy"] = 1.0
        spec["student"] = {
            "kind": "causal-lm",
            "base_model": "meta-llama/Llama-3.1-8B-Instruct",
            "trainer": "axolotl",
            "max_length": 256,
            "kd": {"alpha": 0},
            "endpoint": {"base_url": srv.base_url, "model": "ticket-lora", "api_key_env": "STUDENT_KEY"},
        }
        spec["evaluation"] = {"latency_samples": 10, "bootstrap": 200}
        loaded = load_spec(project(spec))
        assert run_stage("teacher", loaded) == 0
        assert run_stage("evaluate", loaded) == 0
        served = srv.requests_served
    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    expected = [student.answer(r["text"]).label for r in heldout]
    assert [p["predicted"] for p in predictions] == expected  # the endpoint's answers, row by row
    assert metrics["accuracy"] == pytest.approx(sum(e == r["label"] for e, r in zip(expected, heldout)) / 40, abs=1e-6)
    assert metrics["teacher_accuracy"] == 1.0 and metrics["retention"] == metrics["accuracy"]
    assert 0.5 < metrics["accuracy"] < 0.95
    assert served == 40 + 10 * 3 + 5  # held-out, three latency rounds of 10 samples, warm-up
    assert b"student-secret-value" not in (root / "build/evaluate/metrics.json").read_bytes()


def test_local_lora_adapter_is_loaded_over_its_base_model(project, monkeypatch, tmp_path):
    """A two-layer Llama with a LoRA adapter whose weights are not zero: evaluate's answers are the
    adapted model's, not the base model's."""
    from peft import LoraConfig, get_peft_model
    from test_kd_rows import make_tokenizer
    from transformers import AutoModelForCausalLM

    root = project.root
    _heldout(root, n=8)
    tok_dir = make_tokenizer(root / "base")
    tok = _random_llama(
        tok_dir,
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}<|eot|>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}",
        seed=0,
        hidden=64,
        layers=2,
    )
    adapted = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tok_dir)),
        LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False),
    )
    adapted.save_pretrained(str(root / "build/model"))
    tok.save_pretrained(str(root / "build/model"))

    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "./base",
        "trainer": "axolotl",
        "max_length": 256,
        "kd": {"alpha": 0},
    }
    spec["evaluation"] = {"latency_samples": 3, "bootstrap": 0, "max_new_tokens": 4}
    loaded = load_spec(project(spec))
    assert run_stage("teacher", loaded) == 0
    assert run_stage("evaluate", loaded) == 0

    from distillbuild.evaluate.causal_student import CausalClassifier, LocalCausalStudent
    from distillbuild.protocol.normalize import normalize_label
    from distillbuild.protocol.prompts import messages_for

    heldout = [json.loads(l) for l in (root / "data/heldout.jsonl").open()]
    texts = [r["text"] for r in heldout]
    conversations = [messages_for(loaded.task, t) for t in texts]
    classifier = CausalClassifier(
        LocalCausalStudent.load(root / "build/model", str(tok_dir), max_new_tokens=4), loaded.task
    )
    labels = classifier.predict(texts)
    with_adapter = classifier.last_answers
    base_only = LocalCausalStudent.load(tok_dir, str(tok_dir), max_new_tokens=4).generate(conversations)
    assert with_adapter != base_only  # the adapter changes what the model says
    # Left-padded batches answer as one prompt at a time does.
    assert [classifier.student.generate([c])[0] for c in conversations] == with_adapter

    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    assert metrics["heldout_rows"] == 8 and metrics["latency_p95_ms"] > 0
    assert metrics["student_unparseable"] == sum(normalize_label(a, LABELS) is None for a in with_adapter)
    assert [p["student_text"] for p in predictions] == with_adapter
    assert [p["predicted"] for p in predictions] == [label or "(unparseable)" for label in labels]
    assert [p.get("student_confidence") for p in predictions] == [
        None if c is None else round(c, 6) for c in classifier.last_confidence
    ]


def test_a_causal_students_logprobs_map_to_labels_as_the_teachers_do(tmp_path):
    """The local student's answer comes with OpenAI-shaped logprobs: the generated tokens' own
    logprobs add up to the sequence's, and a label spread over two tokens gets P(t1) x P(t2 | t1)."""
    import math

    from test_kd_rows import make_tokenizer

    from distillbuild.evaluate.causal_student import LocalCausalStudent
    from distillbuild.protocol.answers import answer_label_confidence

    tok_dir = make_tokenizer(tmp_path / "base")
    _random_llama(tok_dir, "{% for m in messages %}{{ m['content'] }}{% endfor %}", seed=1, hidden=32, layers=1)
    student = LocalCausalStudent.load(tok_dir, str(tok_dir), max_new_tokens=2)
    ((text, logprobs),) = student.generate_scored([[{"role": "user", "content": "billing login"}]])
    content = logprobs["content"]
    assert 1 <= len(content) <= 2
    for position in content:  # each generated token is the top alternative under greedy decoding
        assert position["top_logprobs"][0]["token"] == position["token"]
        assert position["top_logprobs"][0]["logprob"] == pytest.approx(position["logprob"])
        assert sum(math.exp(a["logprob"]) for a in position["top_logprobs"]) <= 1 + 1e-6
    label = "".join(p["token"] for p in content).strip()  # the generated tokens, named as a label
    assert label and text == label
    expected = math.exp(sum(p["logprob"] for p in content))  # its probability is the product
    assert answer_label_confidence(text, logprobs, (label, "other")) == pytest.approx(expected, rel=1e-5)


def test_a_variant_is_compared_row_by_row_with_another_and_gates_can_promote_the_better(project, monkeypatch, tmp_path):
    """evaluation.compare_with: this student against another variant's predictions on the same
    held-out rows (two endpoint students here, right 60% and 95% of the time)."""
    import shutil

    from distillbuild.errors import SpecError, StageError

    root = project.root
    _heldout(root)
    key = load_answer_key(root / "data/key.jsonl")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STUDENT_KEY", "student-secret-value")
    monkeypatch.chdir(root)

    def evaluate(accuracy: float, compare_with: str | dict | None = None, gates: dict | None = None):
        with SimulatedTeacherServer(
            SimulatedTeacher(key, LABELS, accuracy=accuracy, seed=5), api_key="student-secret-value"
        ) as srv:
            spec = base_spec()
            spec["teacher"]["simulated"]["accuracy"] = 1.0
            spec["student"] = {
                "kind": "causal-lm",
                "base_model": "meta-llama/Llama-3.1-8B-Instruct",
                "trainer": "axolotl",
                "max_length": 256,
                "kd": {"alpha": 0},
                "endpoint": {"base_url": srv.base_url, "model": "v", "api_key_env": "STUDENT_KEY"},
            }
            spec["evaluation"] = {
                "latency_samples": 2,
                "latency_rounds": 1,
                "bootstrap": 0,
                **({"compare_with": compare_with} if compare_with else {}),
            }
            spec["gates"] = gates or {"accuracy": {"min": 0.1}}
            loaded = load_spec(project(spec))
            assert run_stage("teacher", loaded) == 0
            assert run_stage("evaluate", loaded) == 0
        return read_report(root / "build/evaluate/metrics.json")

    weak = evaluate(0.6)
    shutil.copy(root / "build/evaluate/predictions.json", root / "weak.json")
    gates = {"compared_gain": {"min": 0.0}, "compared_gain_p": {"max": 0.05}}
    strong = evaluate(0.95, "weak.json", gates)
    assert strong["compared_accuracy"] == pytest.approx(weak["accuracy"], abs=1e-6)
    assert strong["compared_gain"] == pytest.approx(strong["accuracy"] - weak["accuracy"], abs=1e-6)
    assert strong["compared_gain"] > 0.2 and strong["compared_gain_p"] < 0.05
    from distillbuild.pipeline.compile import render

    assert "weak.json" in render(load_spec(root / "distill.yaml"))  # a dependency: DVC builds it first
    assert run_stage("gate", load_spec(root / "distill.yaml")) == 0  # the better variant is promoted

    # {predictions, student: sft}: another build's SFT student before DPO (its sft_predicted column)
    rows = json.loads((root / "weak.json").read_text())
    (root / "dpo.json").write_text(
        json.dumps([{**r, "predicted": r["actual"], "sft_predicted": r["predicted"]} for r in rows])
    )
    against_sft = evaluate(0.95, {"predictions": "dpo.json", "student": "sft"}, gates)
    assert against_sft["compared_accuracy"] == pytest.approx(weak["accuracy"], abs=1e-6)
    against_final = evaluate(0.95, {"predictions": "dpo.json"}, gates)  # student: final, the default
    assert against_final["compared_accuracy"] == 1.0 and against_final["compared_gain"] < 0
    with pytest.raises(StageError, match="no `sft_predicted` column"):  # weak.json's build had no DPO step
        evaluate(0.95, {"predictions": "weak.json", "student": "sft"}, gates)
    (root / "ids.json").write_text(json.dumps([{"id": r["id"], "actual": r["actual"]} for r in rows]))
    with pytest.raises(StageError, match="no `predicted` column: it is no build/evaluate/predictions.json"):
        evaluate(0.95, "ids.json", gates)
    for bad, where, message in [
        ({"predictions": "dpo.json", "student": "base"}, "evaluation.compare_with.student", "not one of: final, sft"),
        ({"student": "sft"}, "evaluation.compare_with", "missing required key 'predictions'"),
        ({"predictions": "/tmp/x.json"}, "evaluation.compare_with.predictions", "inside the repository"),
    ]:
        spec = base_spec()
        spec["evaluation"] = {"compare_with": bad}
        with pytest.raises(SpecError) as err:
            load_spec(project(spec))
        assert any(i.path == where and message in i.message for i in err.value.issues), err.value.issues

    (root / "weak.json").write_text(json.dumps(json.loads((root / "build/evaluate/predictions.json").read_text())[:-1]))
    with pytest.raises(StageError, match="other held-out rows"):
        evaluate(0.95, "weak.json", gates)
    spec = base_spec()
    spec["gates"] = gates  # a gate on a comparison nothing computes
    with pytest.raises(SpecError) as err:
        load_spec(project(spec))
    assert {"gates.compared_gain", "gates.compared_gain_p"} <= {i.path for i in err.value.issues}
