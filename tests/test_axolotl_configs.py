"""Axolotl configs for causal-LM students: golden files, determinism, refusals, and Axolotl's
own validator (which drops unknown keys silently, so every emitted key is checked).

Each variant is a `student` section run through the real `configure` stage; its outputs are
compared byte for byte with tests/golden/axolotl/VARIANT/. After an intended change, regenerate:

    DISTILL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_axolotl_configs.py

The validator tests run Axolotl 0.19 in its own venv (.venv-axolotl, made by `make axolotl-venv`,
which `make test` runs); without it they are skipped. DISTILL_AXOLOTL_VENV points elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, ROOT, base_spec, write_rows
from tiny_llama import build_tiny_llama, model_config, parameter_count

from distillbuild.errors import SpecError
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec
from distillbuild.train.axolotl_config import CPU_MAX_PARAMETERS, estimate_parameters, plan_device

GOLDEN = ROOT / "tests/golden/axolotl"
UPDATE = os.environ.get("DISTILL_UPDATE_GOLDEN") == "1"
AXOLOTL_VENV = Path(os.environ.get("DISTILL_AXOLOTL_VENV", ROOT / ".venv-axolotl"))
AXOLOTL_PYTHON = AXOLOTL_VENV / "bin/python"
MODEL = "./models/tiny-llama"

# name -> (student keys over the causal-lm defaults, teacher keys over base_spec's)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "qlora": ({"device": "gpu"}, {}),
    "lora": (
        {
            "device": "gpu",
            "adapter": "lora",
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "gpu": {"precision": "bf16", "attention": "sdpa"},
        },
        {},
    ),
    "full": (
        {
            "device": "gpu",
            "adapter": "full",
            "learning_rate": 1e-5,
            "gpu": {"sample_packing": False, "optimizer": "adamw_torch_fused"},
        },
        {},
    ),
    "kd_logits": (
        {"device": "gpu", "kd": {"mode": "logits", "alpha": 0.8, "temperature": 1.5}},
        {"top_logprobs": 5, "token_ids": True, "tokenizer": MODEL, "temperature": 0.7},
    ),
    "deepspeed_zero2": ({"device": "gpu", "distributed": {"strategy": "deepspeed", "zero_stage": 2}}, {}),
    "deepspeed_zero3_offload": (
        {
            "device": "gpu",
            "adapter": "lora",
            "distributed": {"strategy": "deepspeed", "zero_stage": 3, "offload": True},
        },
        {},
    ),
    "fsdp2": ({"device": "gpu", "adapter": "lora", "distributed": {"strategy": "fsdp"}}, {}),
    "fsdp2_qlora_offload": (
        {
            "device": "gpu",
            "distributed": {"strategy": "fsdp", "offload": True},
            "gpu": {"gradient_checkpointing": False},
        },
        {},
    ),
    "ray_zero1": (
        {"device": "gpu", "distributed": {"strategy": "deepspeed", "zero_stage": 1, "launcher": "ray", "workers": 4}},
        {},
    ),
    "cpu_tiny": ({}, {}),  # device auto: the tiny model is CPU-sized
    "overrides": (
        {
            "device": "gpu",
            "adapter": "lora",
            "distributed": {"strategy": "fsdp"},
            "axolotl": {
                "lr_scheduler": "linear",
                "eval_strategy": None,
                "save_strategy": "epoch",
                "save_total_limit": 1,
                "fsdp_config": {"transformer_layer_cls_to_wrap": "LlamaDecoderLayer"},
            },
        },
        {},
    ),
}


def causal_spec(student: dict, teacher: dict | None = None) -> dict:
    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": MODEL,
        "trainer": "axolotl",
        "max_length": 128,
        "batch_size": 4,
        **student,
    }
    spec["teacher"].update(teacher or {})
    return spec


def make_project(root: Path, weights: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    rows = [{"id": f"r{i}", "text": f"ticket number {i} about {LABELS[i % 4]}"} for i in range(12)]
    write_rows(root / "data/inputs.jsonl", rows)
    write_rows(root / "data/heldout.jsonl", [{"id": "h1", "text": "held out", "label": "bug"}])
    write_rows(root / "data/key.jsonl", [{"text": r["text"], "label": LABELS[i % 4]} for i, r in enumerate(rows)])
    build_tiny_llama(root / MODEL, weights=weights)
    return root


def configure(root: Path, spec: dict) -> dict[str, str]:
    """Run the real configure stage; return build/configure's files by name."""
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    cwd = os.getcwd()
    try:
        assert run_stage("configure", load_spec(root / "distill.yaml")) == 0
    finally:
        os.chdir(cwd)
    out = root / "build/configure"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> dict[str, tuple[Path, dict[str, str]]]:
    """Every variant configured in its own copy of one project: name -> (project, files)."""
    base = make_project(tmp_path_factory.mktemp("axolotl") / "base")
    out = {}
    for name, (student, teacher) in VARIANTS.items():
        root = base.parent / name
        shutil.copytree(base, root, symlinks=True)
        out[name] = (root, configure(root, causal_spec(student, teacher)))
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_emitted_files_match_the_golden_files(emitted, name):
    _, files = emitted[name]
    golden = GOLDEN / name
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        golden.mkdir(parents=True)
        for fname, text in files.items():
            (golden / fname).write_text(text, encoding="utf-8")
    assert golden.is_dir(), f"no golden files for {name}: run with DISTILL_UPDATE_GOLDEN=1"
    assert sorted(p.name for p in golden.iterdir()) == sorted(files)
    for fname, text in files.items():
        assert text == (golden / fname).read_text(encoding="utf-8"), (
            f"{name}/{fname} differs from its golden file; if intended: DISTILL_UPDATE_GOLDEN=1 pytest {__file__}"
        )


def test_same_spec_same_bytes_wherever_it_runs(tmp_path):
    student, teacher = VARIANTS["deepspeed_zero3_offload"]
    first = configure(make_project(tmp_path / "a"), causal_spec(student, teacher))
    again = configure(tmp_path / "a", causal_spec(student, teacher))
    elsewhere = configure(make_project(tmp_path / "deeper/b"), causal_spec(student, teacher))
    assert first == again == elsewhere
    assert str(tmp_path) not in "".join(first.values())  # no absolute path leaks into the config


def _cfg(emitted, name) -> dict:
    return yaml.safe_load(emitted[name][1]["axolotl.yaml"])


def test_variants_say_what_they_promise(emitted):
    qlora = _cfg(emitted, "qlora")
    assert qlora["adapter"] == "qlora" and qlora["load_in_4bit"] is True
    assert qlora["bf16"] == "auto" and qlora["attn_implementation"] == "flash_attention_2"
    assert qlora["sample_packing"] is True and qlora["optimizer"] == "adamw_bnb_8bit"
    assert "flash_attention" not in qlora  # Axolotl refuses it next to attn_implementation
    ds = qlora["datasets"][0]
    assert (ds["type"], ds["field_messages"], ds["roles_to_train"], ds["train_on_eos"]) == (
        "chat_template",
        "messages",
        ["assistant"],
        "turn",
    )
    assert qlora["chat_template"] == "tokenizer_default"
    assert qlora["output_dir"] == "build/model" and qlora["base_model"] == MODEL
    header = emitted["qlora"][1]["axolotl.yaml"].splitlines()[0]
    assert header.startswith("# Axolotl 0.19.0 config")

    lora = _cfg(emitted, "lora")
    assert lora["adapter"] == "lora" and "load_in_4bit" not in lora and lora["lora_r"] == 8
    assert lora["bf16"] is True and lora["attn_implementation"] == "sdpa"

    full = _cfg(emitted, "full")
    assert "adapter" not in full and not any(k.startswith("lora_") for k in full)
    assert full["learning_rate"] == 1e-5 and full["sample_packing"] is False

    kd = _cfg(emitted, "kd_logits")
    assert kd["plugins"] == ["axolotl.integrations.kd.KDPlugin"] and kd["kd_trainer"] is True
    assert (kd["kd_alpha"], kd["kd_ce_alpha"], kd["kd_temperature"]) == (0.8, pytest.approx(0.2), 1.5)
    for ds in kd["datasets"] + kd["test_datasets"]:
        assert ds["type"] == "axolotl.integrations.kd.chat_template"
        assert ds["logprobs_field"] == "logprobs" and ds["temperature"] == 0.7

    root, files = emitted["deepspeed_zero2"]
    z2 = yaml.safe_load(files["axolotl.yaml"])
    assert z2["deepspeed"] == "build/configure/deepspeed_zero2.json" and (root / z2["deepspeed"]).is_file()
    assert json.loads(files["deepspeed_zero2.json"])["zero_optimization"]["stage"] == 2
    assert z2["optimizer"] == "adamw_bnb_8bit"

    root, files = emitted["deepspeed_zero3_offload"]
    z3 = json.loads(files["deepspeed_zero3.json"])
    assert z3["zero_optimization"]["stage"] == 3 and z3["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert yaml.safe_load(files["axolotl.yaml"])["optimizer"] == "adamw_torch_fused"  # no 8-bit state offloaded

    fsdp = _cfg(emitted, "fsdp2")
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_config"]["activation_checkpointing"] is True
    assert fsdp["optimizer"] == "adamw_torch_fused"  # FSDP2 rejects adamw_bnb_8bit
    assert "gradient_checkpointing" not in fsdp and "deepspeed" not in fsdp
    assert _cfg(emitted, "fsdp2_qlora_offload")["fsdp_config"]["offload_params"] is True

    ray = _cfg(emitted, "ray_zero1")
    assert ray["use_ray"] is True and ray["ray_num_workers"] == 4
    assert ray["deepspeed"] == "build/configure/deepspeed_zero1.json"

    cpu = _cfg(emitted, "cpu_tiny")
    assert (cpu["bf16"], cpu["fp16"], cpu["attn_implementation"], cpu["sample_packing"]) == (
        False,
        False,
        "sdpa",
        False,
    )
    assert cpu["lora_mlp_kernel"] is cpu["lora_qkv_kernel"] is cpu["lora_o_kernel"] is False
    assert cpu["optimizer"] == "adamw_torch"
    plan = json.loads(emitted["cpu_tiny"][1]["axolotl_plan.json"])
    assert plan["device"] == "cpu" and plan["parameters"] == parameter_count(400)

    over = _cfg(emitted, "overrides")
    assert over["lr_scheduler"] == "linear" and over["save_strategy"] == "epoch" and over["save_total_limit"] == 1
    assert "eval_strategy" not in over  # null removes a key
    assert over["fsdp_config"]["transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"  # mappings merge
    assert over["fsdp_config"]["reshard_after_forward"] is True
    assert "student.axolotl" in emitted["overrides"][1]["axolotl.yaml"]  # the header names the overrides


def test_parameter_estimates():
    assert estimate_parameters(model_config(400)) == parameter_count(400)
    llama_8b = {
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    }
    assert estimate_parameters(llama_8b) == 8_030_261_248  # Llama 3.1 8B, exactly
    assert estimate_parameters({"model_type": "llama"}) is None
    assert plan_device("auto", 8_030_261_248)["device"] == "gpu"
    assert plan_device("auto", CPU_MAX_PARAMETERS)["device"] == "cpu"
    assert plan_device("auto", None)["device"] == "gpu"
    assert plan_device("cpu", 8_030_261_248)["device"] == "cpu"


@pytest.mark.parametrize(
    "student, path, words",
    [
        ({"distributed": {"zero_stage": 3}}, "student.distributed.zero_stage", "strategy: deepspeed"),
        (
            {"distributed": {"strategy": "deepspeed", "zero_stage": 1, "offload": True}},
            "student.distributed.offload",
            "ZeRO-2",
        ),
        ({"distributed": {"offload": True}}, "student.distributed.offload", "strategy: deepspeed"),
        ({"distributed": {"workers": 4}}, "student.distributed.workers", "launcher: ray"),
        ({"device": "cpu", "distributed": {"strategy": "fsdp"}}, "student.device", "needs GPUs"),
        (
            {"distributed": {"strategy": "fsdp"}, "gpu": {"optimizer": "adamw_bnb_8bit"}},
            "student.gpu.optimizer",
            "FSDP2",
        ),
        ({"adapter": "full", "lora": {"r": 8}}, "student.lora", "adapter is full"),
        ({"distributed": {"strategy": "deepspeed", "zero_stage": 4}}, "student.distributed.zero_stage", "not one of"),
        ({"gpu": {"attention": "flash_attention"}}, "student.gpu.attention", "did you mean 'flash_attention_2'"),
        ({"adapter": "qlora4"}, "student.adapter", "not one of"),
    ],
)
def test_impossible_combinations_are_refused(project, student, path, words):
    with pytest.raises(SpecError) as info:
        load_spec(project(causal_spec(student)))
    assert any(i.path == path and words in i.message for i in info.value.issues), info.value


def test_axolotl_keys_are_refused_for_the_local_trainer(project):
    spec = base_spec()
    spec["student"]["adapter"] = "lora"
    with pytest.raises(SpecError, match="student.adapter: applies to trainer: axolotl"):
        load_spec(project(spec))


# --- Axolotl's own validator, in its own venv ----------------------------------------------------

needs_axolotl_venv = pytest.mark.skipif(
    not AXOLOTL_PYTHON.exists(),
    reason=f"Axolotl's validator lives in its own venv ({AXOLOTL_VENV} is absent): run `make axolotl-venv` "
    "(`make test` makes it)",
)


def run_validator(*args: str, cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [str(AXOLOTL_PYTHON), "-m", "distillbuild.train.axolotl_validate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert done.returncode == (0 if all(c["ok"] for c in report["configs"]) else 1)
    return report


@needs_axolotl_venv
def test_axolotl_validator_accepts_every_variant_and_drops_nothing(emitted, tmp_path):
    args = []
    for name in VARIANTS:
        root, _ = emitted[name]
        args += ["--cwd", str(root), str(root / "build/configure/axolotl.yaml")]
    report = run_validator(*args, cwd=tmp_path)
    assert report["axolotl"] == "0.19.0"
    results = dict(zip(VARIANTS, report["configs"]))
    problems = {name: r["errors"] + [f"dropped {k}" for k in r["dropped"]] for name, r in results.items()}
    assert not any(problems.values()), {n: p for n, p in problems.items() if p}
    assert all(r["ok"] for r in results.values())


@needs_axolotl_venv
def test_axolotl_validator_reports_dropped_keys_and_refusals(emitted, tmp_path):
    root, files = emitted["fsdp2"]
    cfg = yaml.safe_load(files["axolotl.yaml"])
    cfg["lora_rr"] = 8  # a typo Axolotl ignores
    cfg["datasets"][0]["feild_messages"] = "messages"
    cfg["fsdp_config"]["ofload_params"] = True
    (root / "typos.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    qlora = yaml.safe_load(emitted["qlora"][1]["axolotl.yaml"])
    (root / "8bit.yaml").write_text(yaml.safe_dump(dict(qlora, load_in_8bit=True)), encoding="utf-8")
    (root / "flash.yaml").write_text(yaml.safe_dump(dict(qlora, flash_attention=True)), encoding="utf-8")
    report = run_validator("typos.yaml", "8bit.yaml", "flash.yaml", cwd=root)
    typos, eight, flash = report["configs"]
    assert sorted(typos["dropped"]) == ["datasets[0].feild_messages", "fsdp_config.ofload_params", "lora_rr"]
    assert not typos["errors"] and not typos["ok"]
    assert eight["errors"] and not eight["ok"], eight  # QLoRA is 4-bit
    assert flash["errors"] and not flash["ok"], flash  # flash_attention beside attn_implementation


def test_dropped_keys_walks_mappings_and_lists():
    from distillbuild.train.axolotl_validate import dropped_keys

    emitted = {
        "a": 1,
        "typo": 2,
        "datasets": [{"path": "x", "feild": 1}],
        "fsdp_config": {"ok": 1, "bad": 2},
        "plugins": ["p"],
    }
    validated = {
        "a": "1",
        "datasets": [{"path": "x", "extra_default": 0}],
        "fsdp_config": {"ok": True},
        "plugins": ["p"],
        "added": 3,
    }
    assert dropped_keys(emitted, validated) == ["typo", "datasets[0].feild", "fsdp_config.bad"]


def test_trainer_log_lines_become_metrics():
    from distillbuild.train.axolotl_run import _parse_log_dict

    line = "{'loss': '5.958', 'grad_norm': '0.9035', 'memory/max_active (GiB)': '0', 'epoch': '0.1111'}"
    assert _parse_log_dict(line) == {
        "loss": 5.958,
        "grad_norm": 0.9035,
        "memory/max_active (GiB)": 0.0,
        "epoch": 0.1111,
    }
    assert _parse_log_dict("{'train_runtime': '1.1', 'train_loss': '5.5'}")["train_loss"] == 5.5
    assert _parse_log_dict("[INFO] loading {'path': 'x'}") is None  # no loss: not a metric line


@needs_axolotl_venv
def test_the_ray_launch_config_from_execution_passes_axolotls_validator(emitted, tmp_path):
    """execution.engine: ray adds Axolotl's Ray Train settings at launch, not to the configure
    stage's file (no cache key changes); Axolotl's own validator accepts what is launched. No
    GPU here: the run itself is not started."""
    from distillbuild.spec.model import StageResources
    from distillbuild.train.axolotl_ray import ray_launch_config
    from distillbuild.train.axolotl_run import _train_command

    root, files = emitted["qlora"]
    launch = ray_launch_config(root / "build/configure/axolotl.yaml", StageResources(workers=4, num_cpus=8))
    try:
        config = yaml.safe_load(launch.read_text())
        assert config["use_ray"] is True and config["ray_num_workers"] == 4
        assert config["resources_per_worker"] == {"GPU": 1, "CPU": 8}
        assert {k: v for k, v in config.items() if k not in ("use_ray", "ray_num_workers", "resources_per_worker")} == (
            yaml.safe_load(files["axolotl.yaml"])
        )
        report = run_validator("--cwd", str(root), str(launch), cwd=tmp_path)
        assert report["configs"][0]["ok"] and not report["configs"][0]["dropped"], report["configs"][0]
        assert "--use-ray" in _train_command("axolotl", launch, tmp_path / "out")
    finally:
        launch.unlink()
    assert "use_ray" not in files["axolotl.yaml"]  # the configure stage's output is the local one
