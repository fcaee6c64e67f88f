"""Head-only fine-tuning with the embedding cache: the first run encodes, a retrain reuses.

Trains the quickstart's student with `finetune: head` twice, side by side in one run, on the
dataset the quickstart built (run `make repro` first), and prints time and held-out accuracy.

    .venv/bin/python bench/head_only_retrain.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbuild.pipeline.stages.train import _trainer_rows  # noqa: E402
from distillbuild.train.encoder import EncoderTrainConfig, fit_encoder_classifier  # noqa: E402


def main() -> None:
    train = _trainer_rows(ROOT / "build/dataset/train.jsonl")
    val = _trainer_rows(ROOT / "build/dataset/val.jsonl")
    heldout = [json.loads(line) for line in (ROOT / "data/tickets/heldout.jsonl").open()]
    labels = json.loads((ROOT / "build/configure/trainer.json").read_text())["labels"]
    cfg = EncoderTrainConfig(
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        labels=tuple(labels),
        finetune="head",
        epochs=30,
        batch_size=32,
        head_learning_rate=0.01,
        threads=2,
    )
    cache = Path(tempfile.mkdtemp()) / "embeddings.sqlite"
    times = []
    for run in ("first run (encodes)", "retrain (cached)"):
        t0 = time.perf_counter()
        clf, _ = fit_encoder_classifier(cfg, train, val, log=lambda m: None, embedding_cache=cache)
        times.append(time.perf_counter() - t0)
        acc = sum(p == r["label"] for p, r in zip(clf.predict([r["text"] for r in heldout]), heldout)) / len(heldout)
        print(f"head-only, {run}: {times[-1]:.1f} s, held-out accuracy {acc:.3f}")
    print(f"retrain / first run: {times[1] / times[0]:.2f}")


if __name__ == "__main__":
    main()
