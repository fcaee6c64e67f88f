"""Shared fixtures. Tests never reach the network: every hub and telemetry switch is off."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

for _var, _value in {
    "DVC_NO_ANALYTICS": "1",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[_var] = _value

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["billing", "refund", "login", "bug"]


def base_spec() -> dict:
    """A small valid spec (paths relative to the spec's directory)."""
    return {
        "version": 1,
        "name": "mini",
        "task": {"type": "classification", "instruction": "Classify the ticket.", "labels": list(LABELS)},
        "data": {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"},
        "teacher": {
            "provider": "simulated",
            "model": "sim",
            "concurrency": 8,
            "price": {"input_per_mtok": 2.5, "output_per_mtok": 10},
            "simulated": {"answers": "data/key.jsonl", "accuracy": 0.9, "latency_ms": 0, "seed": 1},
        },
        "filters": {"min_confidence": 0.5, "dedup": {"exact": True}},
        "split": {"val_fraction": 0.2, "seed": 3},
        "student": {"kind": "encoder-classifier", "base_model": "sentence-transformers/all-MiniLM-L6-v2", "trainer": "local"},
        "gates": {"accuracy": {"min": 0.5}},
        "promote": {"name": "mini"},
    }


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path):
    """A git repository with small data files and a function writing distill.yaml into it."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    rows = [{"id": f"r{i}", "text": f"ticket number {i} about {LABELS[i % 4]}"} for i in range(12)]
    write_rows(tmp_path / "data/inputs.jsonl", rows)
    write_rows(tmp_path / "data/heldout.jsonl", [{"id": "h1", "text": "held out", "label": "bug"}])
    write_rows(tmp_path / "data/key.jsonl", [{"text": r["text"], "label": LABELS[i % 4]} for i, r in enumerate(rows)])

    def write(spec: dict | str | None = None, name: str = "distill.yaml") -> Path:
        path = tmp_path / name
        text = spec if isinstance(spec, str) else yaml.safe_dump(spec if spec is not None else base_spec(), sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    write.root = tmp_path  # type: ignore[attr-defined]
    return write
