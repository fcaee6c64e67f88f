"""The loop back from production, end to end on a reduced quickstart: the built student served
with `serve.capture` on; 500 requests from a shifted distribution (four of the twelve labels,
repeats as real traffic has them, and a few carrying an e-mail address and a card number);
`distill drift` on the capture says re-distil (exit 1); `distill import-logs` turns the capture
into inputs; `dvc repro` builds a new student; the new build runs beside the old one as
`--shadow`; `distill shadow-report` prints its agreement. No file anywhere holds the planted
e-mail or card number."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, RepoShell, build_reduced_pipeline, write_rows
from openai import OpenAI

from distillbuild.spec import load_spec
from distillbuild.spec.loader import load_yaml_file

SHIFTED_LABELS = ("security", "performance", "integration", "shipping")
EMAIL, CARD = "dana.whitfield@example.org", "4111 1111 1111 1111"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _ask(base_url: str, texts: list[str]) -> list[str]:
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    return [
        client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}])
        .choices[0]
        .message.content
        for t in texts
    ]


def test_capture_drift_import_rebuild_shadow(tmp_path_factory):
    from distillbuild.serve.app import serve
    from distillbuild.serve.bundle import bundle

    root = tmp_path_factory.mktemp("loop")
    sh = RepoShell(root, OMP_NUM_THREADS="2")
    spec = load_yaml_file(ROOT / "distill.yaml").data
    spec["student"].update(epochs=2, batch_size=16)
    spec["evaluation"] = {"latency_samples": 20, "threads": 1}
    spec["gates"] = {"accuracy": {"min": 0.2}}
    spec["filters"]["min_rows_per_label"] = 3
    spec["serve"] = {"capture": "logs/capture.jsonl"}
    inputs, heldout = _rows(ROOT / "data/tickets/inputs.jsonl"), _rows(ROOT / "data/tickets/heldout.jsonl")
    key = _rows(ROOT / "data/tickets/teacher_key.jsonl")
    build_reduced_pipeline(sh, spec, inputs[:160], heldout[:48], key)

    # Production traffic, shifted: four labels, drawn with repeats; ten requests carry personal data.
    label_of = {row["text"]: row["label"] for row in key}
    pool = [r["text"] for r in inputs[160:] if label_of[r["text"]] in SHIFTED_LABELS]
    rng = random.Random(7)
    traffic = [rng.choice(pool) for _ in range(490)]
    traffic += [f"Please reach me at {EMAIL}, the card {CARD} was charged twice. {t}" for t in pool[:10]]
    rng.shuffle(traffic)
    with serve(load_spec(root / "distill.yaml")) as running:
        answers = _ask(running.base_url, traffic)
    assert len(answers) == 500
    capture = root / "logs/capture.jsonl"
    records = _rows(capture)
    assert len(records) == 500 and sum("[EMAIL]" in r["text"] and "[CARD]" in r["text"] for r in records) == 10

    drift = sh("distill", "drift", str(capture), check=False)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "RE-DISTIL" in drift.stdout

    # The current build, kept apart as an image would hold it; then the new inputs and a rebuild.
    current = tmp_path_factory.mktemp("current")
    bundle(root / "distill.yaml", current)
    sh("distill", "import-logs", str(capture), "-o", "data/production.jsonl")
    imported = _rows(root / "data/production.jsonl")
    assert len(imported) == len(set(traffic)) and all(EMAIL not in r["text"] for r in imported)
    write_rows(root / "data/inputs.jsonl", inputs[:160] + imported)
    # The stand-in teacher answers from its key: give it the production texts (a real teacher just would).
    wanted = {r["text"] for r in inputs[:160] + heldout[:48]} | set(traffic)
    write_rows(root / "data/key.jsonl", [r for r in key if r["text"] in wanted])
    old_model = (current / "build/export/model/model.onnx").read_bytes()
    rebuilt = sh("dvc", "repro")
    for stage in ("teacher", "filter", "train", "evaluate", "gate", "export"):
        assert f"Running stage '{stage}'" in rebuilt.stdout
    assert (root / "build/export/model/model.onnx").read_bytes() != old_model

    # The new build in shadow behind the current one, on the same kind of traffic.
    shadow_log = tmp_path_factory.mktemp("shadow") / "shadow.jsonl"
    with serve(load_spec(current / "distill.yaml", ("*",)), shadow=root / "distill.yaml", shadow_log=shadow_log) as s:
        served = _ask(s.base_url, traffic[:200])
        assert {a for a in served} <= set(yaml.safe_load((ROOT / "distill.yaml").read_text())["task"]["labels"])
    logged = _rows(shadow_log)
    assert len(logged) == 200 and all(r["served_by"] == "current" and r["candidate"] for r in logged)
    report = sh("distill", "shadow-report", str(shadow_log))
    agreement = re.search(
        r"candidate agrees with the current student: ([\d.]+)% \((\d+) of 200; 95% interval", report.stdout
    )
    assert agreement, report.stdout
    print("\n" + report.stdout)
    agreeing = sum(r["current"] == r["candidate"] for r in logged)
    assert int(agreement.group(2)) == agreeing

    # Masked everywhere: the capture, the imported inputs, the shadow log, the repository, the DVC cache.
    leaked = subprocess.run(
        [
            "grep",
            "-rlF",
            "-e",
            EMAIL,
            "-e",
            CARD,
            "-e",
            CARD.replace(" ", ""),
            str(root),
            str(current),
            str(shadow_log),
        ],
        capture_output=True,
        text=True,
    )
    assert leaked.returncode == 1 and not leaked.stdout, leaked.stdout  # grep: 1 = no file matched
    assert len(_rows(current / "logs/capture.jsonl")) == 200  # the current build's server captured too


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
