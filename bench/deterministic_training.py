"""What IDENTICAL across machines costs in training speed.

Trains the quickstart's student (its trainer config, the first ROWS rows of its built dataset,
EPOCHS epochs) in a fresh process per setting, side by side in one run, and prints each
setting's seconds, its ratio to the default, and a hash of the model's weights (equal hashes:
the same bytes):

- default: PyTorch's threads (every core, or OMP_NUM_THREADS) and kernels for this CPU;
- student.threads 1: one thread, so the order of each sum is fixed whatever the core count;
- student.threads 1 + ATEN_CPU_CAPABILITY=default + MKL_CBWR=COMPATIBLE: also the same kernel
  family on every CPU (no AVX2/AVX-512 paths), so a machine with other vector units sums the same.

Run it from the repository root after `make repro` (it reads build/configure and build/dataset):

    .venv/bin/python bench/deterministic_training.py            # 400 rows, 2 epochs: about 3 minutes here
    .venv/bin/python bench/deterministic_training.py --rows 100 --epochs 1   # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = [
    ("default", None, {}),
    ("student.threads 1", 1, {}),
    ("threads 1, one kernel family", 1, {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}),
]

CHILD = """
import json, sys, time
from pathlib import Path
from distillbuild.train.encoder import EncoderTrainConfig, train_encoder_classifier
raw, rows, epochs, threads, out = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cfg = {k: v for k, v in raw.items() if k not in ("trainer", "kind", "name")}
cfg.update(epochs=epochs, threads=None if threads == "None" else int(threads))
from distillbuild.pipeline.stages.train import _trainer_rows
train = _trainer_rows(Path("build/dataset/train.jsonl"))[:rows]
t0 = time.perf_counter()
train_encoder_classifier(EncoderTrainConfig.from_dict(cfg), train, [], Path(out), log=lambda m: None)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def weights_hash(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.rglob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    config = (ROOT / "build/configure/trainer.json").read_text()
    results = []
    for name, threads, env_extra in SETTINGS:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT)}
            argv = [sys.executable, "-c", CHILD, config, str(args.rows), str(args.epochs), str(threads), tmp]
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
            seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
            results.append((name, seconds, weights_hash(Path(tmp))))
    base = results[0][1]
    print(f"encoder student, {args.rows} rows x {args.epochs} epochs, {os.cpu_count()} logical CPUs, {time.ctime()}")
    print(f"{'setting':<32} {'seconds':>8} {'vs default':>10}  weights")
    for name, seconds, digest in results:
        print(f"{name:<32} {seconds:8.1f} {seconds / base:9.2f}x  {digest}")


if __name__ == "__main__":
    main()
