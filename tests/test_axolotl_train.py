"""The emitted Axolotl configs really train: a tiny Llama (tests/tiny_llama.py) goes through the
real stages with the real Axolotl 0.19 on CPU, and the train stage refuses clearly what a
machine cannot do.

    make test-axolotl      # the full Axolotl venv, then `pytest -m axolotl`

Tests marked `axolotl` need a full Axolotl install and are skipped without one; the refusal
tests need only the validation venv that `make test` builds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from tiny_llama import (
    NO_AXOLOTL_REASON,
    axolotl_executable,
    causal_student,
    make_causal_project,
    run_stages,
    train_tiny_student,
)

from distillbuild.errors import EXIT_RUNTIME, StageError
from distillbuild.measurements import read_report

AXOLOTL = axolotl_executable()
needs_training_axolotl = pytest.mark.skipif(AXOLOTL is None, reason=NO_AXOLOTL_REASON)
VALIDATION_AXOLOTL = Path(os.environ.get("DISTILL_AXOLOTL_VENV", ROOT / ".venv-axolotl")) / "bin/axolotl"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    if AXOLOTL is None:
        pytest.skip(NO_AXOLOTL_REASON)
    return train_tiny_student(tmp_path_factory.mktemp("tiny") / "proj", AXOLOTL)


@pytest.mark.axolotl
@needs_training_axolotl
def test_the_tiny_llama_trains_on_cpu_through_the_real_stages(trained):
    model = trained / "build/model"
    assert (model / "adapter_model.safetensors").is_file()
    adapter = json.loads((model / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["base_model_name_or_path"] == "./models/tiny-llama"
    assert not list(trained.glob("build/.model.tmp-*"))  # moved into place, nothing half-written left

    plan = json.loads((trained / "build/configure/axolotl_plan.json").read_text())
    assert plan["device"] == "cpu"  # the tiny model got CPU settings on its own
    report = read_report(trained / "build/train/report.json")
    assert report["trainer"] == "axolotl" and report["device"] == "cpu" and report["output"] == "adapter"
    assert report["cpu_threads"] == int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())  # not accelerate's 1
    history = json.loads((trained / "build/train/history.json").read_text())
    losses = [h["loss"] for h in history]
    assert len(losses) >= 10 and all(math.isfinite(x) for x in losses)
    val = [e["val_loss"] for e in report["epochs"]]
    assert val[-1] < val[0]  # it learned something: validation loss fell from before training


@pytest.mark.axolotl
@needs_training_axolotl
def test_the_trained_adapter_loads_over_its_base_with_peft(trained):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(trained / "models/tiny-llama")
    model = PeftModel.from_pretrained(base, str(trained / "build/model"))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: non-zero means it trained
    tok = AutoTokenizer.from_pretrained(trained / "build/model")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "ticket number 3 about bug"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


@pytest.mark.axolotl
@needs_training_axolotl
def test_logit_distillation_trains_with_the_kd_plugin_on_the_teachers_token_ids(trained, tmp_path, capfd):
    """kd.mode logits, end to end: the simulated teacher answers with token ids of the student's
    tokenizer (as vLLM does with return_tokens_as_token_ids), the dataset stage writes Axolotl's
    KD rows, and the KD plugin trains on them."""
    root = tmp_path / "kd"
    shutil.copytree(trained, root, symlinks=True, ignore=shutil.ignore_patterns("build", ".distill"))
    spec = yaml.safe_load((root / "distill.yaml").read_text())
    spec["student"]["kd"] = {"mode": "logits", "alpha": 0.5, "temperature": 1.0}
    spec["teacher"].update(top_logprobs=4, token_ids=True, tokenizer="./models/tiny-llama")
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_stages(root, ["teacher", "filter", "dataset", "configure", "train"], AXOLOTL)
    report = read_report(root / "build/dataset/report.json")
    assert report["format"].startswith("axolotl KD") and report["kd_misaligned"] == 0 and report["train"] > 0
    row = json.loads((root / "build/dataset/train.jsonl").open().readline())
    assert len(row["logprobs"]) == len(row["target_token_ids"]) and len(row["logprobs"][0]) == 4
    cfg = yaml.safe_load((root / "build/configure/axolotl.yaml").read_text())
    assert cfg["kd_trainer"] is True and cfg["datasets"][0]["type"] == "axolotl.integrations.kd.chat_template"
    assert "Plugin loaded successfully: axolotl.integrations.kd.KDPlugin" in capfd.readouterr().err
    assert (root / "build/model/adapter_model.safetensors").is_file()
    train = read_report(root / "build/train/report.json")
    assert train["epochs"][-1]["val_loss"] < train["epochs"][0]["val_loss"]


# --- Refusals (no training) -------------------------------------------------------------------------


def _big_model_project(root: Path) -> Path:
    """A project whose base model is Llama-3.1-8B-sized (config.json only, no weights)."""
    make_causal_project(root, rows=8, weights=False)
    config = json.loads((root / "models/tiny-llama/config.json").read_text())
    config.update(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    )
    (root / "models/tiny-llama/config.json").write_text(json.dumps(config))
    return root


@pytest.mark.axolotl
@needs_training_axolotl
def test_a_trace_student_trains_on_the_teachers_reasoning_and_is_read_at_its_answer_line(tmp_path):
    """teacher.reasoning (prompt mode) -> rows whose assistant turn is rationale + answer line ->
    the emitted config, unchanged in shape, trains the tiny Llama on CPU; the adapter loads;
    evaluation generates past the label and reads the answer line (or counts it unparseable)."""
    import torch
    from conftest import LABELS
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from distillbuild.endpoints.standin.teacher import rationale

    words = [
        rationale(f"ticket number {i} about {l}", l, LABELS[(i + 1) % 4], __import__("random").Random(i))
        for i, l in enumerate(LABELS * 3)
    ] + ["Answer:"]
    root = make_causal_project(
        tmp_path / "proj",
        rows=32,
        texts=words,
        student=causal_student(reasoning="trace", max_length=192),
        teacher={"reasoning": {"mode": "prompt"}, "max_tokens": 256, "top_logprobs": 4},
    )
    spec = yaml.safe_load((root / "distill.yaml").read_text())
    spec["evaluation"] = {"max_new_tokens": 48, "latency_samples": 2, "threads": 1}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_stages(root, ["teacher", "filter", "dataset", "configure", "train", "evaluate"], AXOLOTL)
    train = [json.loads(line) for line in (root / "build/dataset/train.jsonl").open()]
    assert train and all(r["messages"][-1]["content"].endswith(f"Answer: {r['label']}") for r in train)
    assert all(len(r["messages"][-1]["content"]) > 40 for r in train)  # a rationale before the answer line
    losses = [h["loss"] for h in json.loads((root / "build/train/history.json").read_text())]
    assert losses and all(math.isfinite(x) for x in losses)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(root / "models/tiny-llama"), str(root / "build/model")
    )
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    said = [p.get("student_text") or "" for p in predictions]
    assert metrics["student_unparseable"] == sum(p["predicted"] == "(unparseable)" for p in predictions)
    assert max(len(t) for t in said) > max(len(l) for l in LABELS) + 2  # it wrote past a bare label
    assert torch.isfinite(torch.tensor(metrics["latency_p50_ms"]))


@pytest.mark.axolotl
@needs_training_axolotl
def test_dpo_after_sft_trains_on_cpu_and_a_beta_change_reruns_only_the_preference_step(tmp_path):
    """SFT, then the SFT student's disagreements as DPO pairs, then `rl: dpo` over the merged SFT
    model, all by `dvc repro` with the real Axolotl on CPU; the DPO adapter loads over the merged
    model and is what evaluate answers with; changing only beta leaves every earlier stage alone."""
    from conftest import RepoShell
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    sh = RepoShell(tmp_path / "proj", DISTILL_AXOLOTL=AXOLOTL, DISTILL_CACHE_DIR=str(tmp_path / "cache"))
    root = make_causal_project(sh.root, rows=32, student=causal_student(epochs=1, preference={"beta": 0.1}))
    spec = yaml.safe_load((root / "distill.yaml").read_text())
    spec["evaluation"] = {"max_new_tokens": 8, "latency_samples": 2, "threads": 1}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / ".gitignore").write_text(".distill/\n")
    sh("git", "config", "user.email", "test@example.com")
    sh("git", "config", "user.name", "test")
    sh("dvc", "init", "-q")
    sh("distill", "compile")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "v1")
    done = sh("dvc", "repro", check=False)  # the tiny model fails its gate: every stage before it must have run
    assert done.returncode == 0 or "failed to reproduce 'gate'" in done.stdout + done.stderr, done.stderr[-3000:]
    pairs = read_report(root / "build/preference/pairs_report.json")
    assert pairs["pairs"] > 0 and pairs["asked"] >= pairs["pairs"]
    report = read_report(root / "build/preference/train_report.json")
    losses = [s["loss"] for s in report.get("steps", [])] or [report.get("train_loss")]
    assert losses and all(x is not None and math.isfinite(x) for x in losses), report
    cfg = yaml.safe_load((root / "build/preference/config/axolotl.yaml").read_text())
    assert cfg["rl"] == "dpo" and cfg["rl_beta"] == 0.1
    merged = AutoModelForCausalLM.from_pretrained(root / "build/preference/sft")
    dpo = PeftModel.from_pretrained(merged, str(root / "build/preference/model"))
    assert any(p.abs().sum() > 0 for n, p in dpo.named_parameters() if "lora_B" in n)
    metrics = read_report(root / "build/evaluate/metrics.json")
    assert metrics["heldout_rows"] == 8
    assert abs(metrics["accuracy"] - metrics["sft_accuracy"] - metrics["preference_gain"]) < 1e-6
    assert 0 <= metrics["preference_gain_p"] <= 1
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    gold = {r["id"]: r["label"] for r in map(json.loads, (root / "data/heldout.jsonl").read_text().splitlines())}
    assert sum(p["sft_predicted"] == gold[p["id"]] for p in predictions) / 8 == pytest.approx(metrics["sft_accuracy"])
    assert metrics["sft_latency_p50_ms"] > 0
    assert set(json.loads(sh("dvc", "status", "--json").stdout)) <= {"gate"}  # built, but for the failed gate
    spec["student"]["preference"]["beta"] = 0.3
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    stale = set(json.loads(sh("dvc", "status", "--json").stdout))
    assert "preference" in stale and not stale & {"teacher", "filter", "dataset", "configure", "train", "pairs"}, stale


@pytest.mark.skipif(
    not VALIDATION_AXOLOTL.exists(), reason="needs .venv-axolotl: run `make axolotl-venv` (`make test` makes it)"
)
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU: nothing to refuse")
def test_a_gpu_sized_model_without_a_gpu_exits_3_with_a_clear_message(tmp_path):
    root = _big_model_project(tmp_path / "big")
    run_stages(root, ["teacher", "filter", "dataset", "configure"])
    plan = json.loads((root / "build/configure/axolotl_plan.json").read_text())
    assert plan["device"] == "gpu" and plan["parameters"] == 8_030_261_248
    env = {**os.environ, "DISTILL_AXOLOTL": str(VALIDATION_AXOLOTL), "DISTILL_CACHE_DIR": str(root / ".distill/cache")}
    distill = Path(sys.executable).parent / "distill"
    done = subprocess.run(
        [str(distill), "stage", "train"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == EXIT_RUNTIME, done.stderr[-2000:]
    assert "no GPU found" in done.stderr and "8 B parameters" in done.stderr and "limit is 200 M" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "build/model").exists()


def test_without_axolotl_the_train_stage_says_how_to_get_it(tmp_path, monkeypatch):
    root = make_causal_project(tmp_path / "p", rows=8, weights=False)
    run_stages(root, ["teacher", "filter", "dataset", "configure"])
    monkeypatch.setenv("DISTILL_AXOLOTL", str(tmp_path / "no-such-axolotl"))
    with pytest.raises(StageError, match="DISTILL_AXOLOTL=.*is not an executable") as info:
        run_stages(root, ["train"])
    assert info.value.exit_code == EXIT_RUNTIME
    monkeypatch.delenv("DISTILL_AXOLOTL")
    monkeypatch.setenv("PATH", str(tmp_path))  # no axolotl on PATH either
    with pytest.raises(StageError, match="make axolotl-venv-full"):
        run_stages(root, ["train"])


@pytest.mark.skipif(
    not VALIDATION_AXOLOTL.exists(), reason="needs .venv-axolotl: run `make axolotl-venv` (`make test` makes it)"
)
def test_the_train_stage_refuses_keys_axolotl_would_drop(tmp_path):
    root = make_causal_project(tmp_path / "p", rows=8, weights=False, student=causal_student(axolotl={"lora_rr": 8}))
    run_stages(root, ["teacher", "filter", "dataset", "configure"])
    with pytest.raises(StageError, match="key lora_rr is not one Axolotl reads"):
        run_stages(root, ["train"], str(VALIDATION_AXOLOTL))
    assert not (root / "build/model").exists()
