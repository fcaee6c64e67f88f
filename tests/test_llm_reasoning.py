"""Reasoning and preference distillation on the real SmolLM2-135M-Instruct student, trained by the
real `axolotl train` on CPU from the emitted configs: on the teacher's rationale and answer (a
trace student), and by DPO after SFT (pairs from the SFT student's own answers). Each trains a
few steps; the losses are finite, the adapters load and answer in `evaluate`, and each student is
exported as GGUF and served by llama.cpp, read the way it was evaluated.

The teacher is the stand-in, reasoning in prompt mode over real SpamAssassin e-mails: these tests
are about the student. `make test-llm` installs what they need.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import base_spec, write_rows
from tiny_llama import axolotl_executable, run_stages, smollm2_student_marks

from distillbuild.measurements import read_report

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines/spam-filter"
AXOLOTL = axolotl_executable()

pytestmark = smollm2_student_marks()


def _spam_project(root: Path, student: dict, train: int = 12, heldout: int = 3) -> Path:
    """A project over real e-mails: `train` of each label to learn from, `heldout` of each to score."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    reasoning = yaml.safe_load((PIPELINE / "reasoning/distill.yaml").read_text())
    template = reasoning["task"]["input_template"]
    rows = [json.loads(line) for line in (PIPELINE / "data/inputs.jsonl").read_text().splitlines()]
    by_label = {label: [r for r in rows if r["label"] == label] for label in ("spam", "legit")}
    write_rows(root / "data/inputs.jsonl", [r for label in by_label for r in by_label[label][:train]])
    write_rows(root / "data/heldout.jsonl", [r for label in by_label for r in by_label[label][train : train + heldout]])
    write_rows(
        root / "data/key.jsonl",
        [
            {"text": template.format(**r), "label": r["label"]}
            for label in by_label
            for r in by_label[label][: train + heldout]
        ],
    )
    spec = base_spec()
    spec["task"] = {k: v for k, v in reasoning["task"].items() if k != "examples"}
    spec["teacher"].update(max_tokens=64, top_logprobs=2, reasoning={"mode": "prompt"})
    spec["teacher"]["simulated"]["accuracy"] = 1.0  # the gold labels: these tests are about the student
    spec["filters"] = {"min_confidence": 0, "decontaminate": False}
    spec["student"] = {
        **{k: v for k, v in reasoning["student"].items() if k != "preference"},
        "max_length": 256,
        "batch_size": 4,
        **student,
    }
    spec["evaluation"] = {
        "latency_samples": 2,
        "bootstrap": 0,
        "max_new_tokens": 4,
        "threads": 2,
        "min_heldout_rows": 1,
    }
    spec["gates"] = {"heldout_rows": {"min": 1}}
    spec["export"] = {"format": "gguf", "quantize": "q8_0", "max_disagreement": 0.5}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def _finite_losses(report: dict) -> list[float]:
    losses = [s["loss"] for s in report.get("steps", []) if s.get("loss") is not None] or [report.get("train_loss")]
    assert losses and all(x is not None and math.isfinite(x) for x in losses), report
    return losses


@pytest.mark.timeout(2700)
def test_smollm2_trains_on_rationale_and_answer_and_reasons_before_its_answer_line(tmp_path):
    root = _spam_project(tmp_path / "proj", {"reasoning": "trace", "epochs": 2})
    run_stages(root, ["teacher", "filter", "dataset", "configure", "train", "evaluate", "gate", "export"], AXOLOTL)

    first = json.loads((root / "build/dataset/train.jsonl").read_text().splitlines()[0])
    target = first["messages"][-1]["content"]
    assert "The message reads" in target and target.splitlines()[-1].startswith("Answer: ")  # rationale, then answer
    config = yaml.safe_load((root / "build/configure/axolotl.yaml").read_text())
    assert config["base_model"] and "rl" not in config
    report = read_report(root / "build/train/report.json")
    assert report["trainer"] == "axolotl" and report["device"] == "cpu"
    losses = _finite_losses(report)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(root / config["base_model"])  # relative to the project
    adapter = PeftModel.from_pretrained(base, str(root / "build/model"))
    assert any(p.abs().sum() > 0 for n, p in adapter.named_parameters() if "lora_B" in n)
    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    print(
        f"\nSmolLM2 trace student: losses {losses[0]:.3f} -> {losses[-1]:.3f}; accuracy {metrics['accuracy']} on "
        f"{metrics['heldout_rows']}, unparseable {metrics['student_unparseable']}, p50 {metrics['latency_p50_ms']} ms; "
        f"first answer {predictions[0]['student_text']!r}"
    )
    assert metrics["heldout_rows"] == 6 and math.isfinite(metrics["latency_p50_ms"])
    # It writes past a bare label: the rationale it was trained on comes before any answer line.
    assert max(len(p["student_text"] or "") for p in predictions) > len("legit") + 2
    _check_export(root)


def _check_export(root: Path) -> None:
    """Both GGUF files answer the held-out rows through llama.cpp as the student did, mostly."""
    exported = read_report(root / "build/export/report.json")
    print(
        "GGUF exports: "
        + "; ".join(
            f"{kind} agreement {f['agreement']} unparseable {f['unparseable']}" for kind, f in exported["files"].items()
        )
    )
    assert set(exported["files"]) == {"f16", "q8_0"}
    assert exported["files"]["f16"]["agreement"] >= 0.5
    assert "num_predict" in (root / "build/export/model/Modelfile").read_text()


@pytest.mark.timeout(2700)
def test_smollm2_sft_then_dpo_on_its_own_disagreements_trains_and_loads(tmp_path):
    # SFT barely moves (a tiny learning rate, one epoch): the student still answers like the base
    # model, so it disagrees with the teacher and there are pairs to learn from.
    root = _spam_project(
        tmp_path / "proj",
        {
            "reasoning": "answer",
            "epochs": 1,
            "learning_rate": 1.0e-6,
            "preference": {"beta": 0.1, "learning_rate": 5.0e-5, "max_pairs": 8},
        },
    )
    run_stages(
        root,
        ["teacher", "filter", "dataset", "configure", "train", "pairs", "preference", "evaluate", "gate", "export"],
        AXOLOTL,
    )

    pairs = read_report(root / "build/preference/pairs_report.json")
    assert 0 < pairs["pairs"] <= 8
    pair = json.loads((root / "build/preference/pairs.jsonl").read_text().splitlines()[0])
    assert pair["chosen"] in ("spam", "legit") and pair["rejected"] != pair["chosen"]
    config = yaml.safe_load((root / "build/preference/config/axolotl.yaml").read_text())
    assert config["rl"] == "dpo" and config["rl_beta"] == 0.1
    losses = _finite_losses(read_report(root / "build/preference/train_report.json"))
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(
        root / "build/preference/sft"
    )  # SFT merged: DPO's start and reference
    dpo = PeftModel.from_pretrained(merged, str(root / "build/preference/model"))
    assert any(p.abs().sum() > 0 for n, p in dpo.named_parameters() if "lora_B" in n)
    metrics = read_report(root / "build/evaluate/metrics.json")
    print(
        f"\nSmolLM2 SFT -> DPO on {pairs['pairs']} pairs: DPO losses {losses[0]:.4f} -> {losses[-1]:.4f}; "
        f"accuracy {metrics['sft_accuracy']} -> {metrics['accuracy']} (McNemar p {metrics['preference_gain_p']})"
    )
    assert abs(metrics["accuracy"] - metrics["sft_accuracy"] - metrics["preference_gain"]) < 1e-6
    _check_export(root)  # the DPO student: its adapter merged into the merged SFT model
