"""pipelines/ticket-triage-llama: the GPU pipeline's stages up to `configure` run here.

The committed spec is used as written, except that its teacher (the OpenAI API, which cannot be
reached here) is pointed at the project's OpenAI-compatible simulated server on 127.0.0.1; the
endpoint differs, so nothing cached here could ever be served as GPT-4o's answers. `dvc repro`
runs for real in a temporary git repository; `train` then stops with a clear message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, RepoShell

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.measurements import read_report
from distillbuild.spec.loader import load_yaml_file

PIPELINE = ROOT / "pipelines/ticket-triage-llama"
LABELS_KEY = "data/tickets/teacher_key.jsonl"
# Axolotl's validator install (`make test` builds it): `train` validates the config before refusing.
VALIDATION_AXOLOTL = ROOT / ".venv-axolotl/bin/axolotl"


def test_the_committed_dvc_yaml_is_current():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "distill"), "compile", "--check", str(PIPELINE / "distill.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama-repo")
    shutil.copytree(ROOT / "data/tickets", root / "data/tickets")
    (root / "pipelines/ticket-triage-llama").mkdir(parents=True)
    spec = load_yaml_file(PIPELINE / "distill.yaml").data
    labels = spec["task"]["labels"]
    teacher = SimulatedTeacher(load_answer_key(root / LABELS_KEY), labels, accuracy=0.93, seed=7)
    axolotl = {"DISTILL_AXOLOTL": str(VALIDATION_AXOLOTL)} if VALIDATION_AXOLOTL.exists() else {}
    sh = RepoShell(
        root,
        OPENAI_API_KEY="sk-test-local-only",
        DISTILL_CACHE_DIR=str(root / ".distill/cache"),
        CUDA_VISIBLE_DEVICES="",
        **axolotl,
    )
    with SimulatedTeacherServer(teacher, model=spec["teacher"]["model"], api_key="sk-test-local-only") as server:
        spec["teacher"]["base_url"] = server.base_url  # the one change: GPT-4o cannot be reached from here
        spec_dir = root / "pipelines/ticket-triage-llama"
        (spec_dir / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        sh.init_repo()
        sh("distill", "compile", cwd=spec_dir)
        repro = sh("dvc", "repro", "configure", cwd=spec_dir, check=False)
        train = sh("dvc", "repro", "train", cwd=spec_dir, check=False)
        served = server.requests_served
    return spec_dir, repro, train, served


def test_stages_up_to_configure_run_here(built):
    spec_dir, repro, _train, served = built
    assert repro.returncode == 0, repro.stdout + repro.stderr
    teacher = read_report(spec_dir / "build/teacher/report.json")
    calls, checked = teacher["calls"], teacher["input_checks"]
    assert checked["inputs"] == 900 and checked["not_asked"] > 0  # copies and near-copies never asked
    assert calls["requested"] == checked["asked"] + 240  # every other input and held-out ticket
    assert served == calls["billed"] == calls["requested"] - calls["deduplicated"]  # identical prompts asked once
    report = read_report(spec_dir / "build/filter/report.json")
    assert 700 < report["kept"] < 900
    rows = [json.loads(l) for l in (spec_dir / "build/dataset/train.jsonl").open()]
    assert rows and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    cfg = yaml.safe_load((spec_dir / "build/configure/axolotl.yaml").read_text())
    assert cfg["base_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert cfg["adapter"] == "qlora" and cfg["load_in_4bit"] is True and cfg["chat_template"] == "llama3"
    assert cfg["datasets"][0]["type"] == "chat_template"


@pytest.mark.skipif(
    not VALIDATION_AXOLOTL.exists(), reason="needs .venv-axolotl: run `make axolotl-venv` (`make test` makes it)"
)
def test_train_without_a_gpu_says_so(built):
    _spec_dir, _repro, train, _served = built
    out = train.stdout + train.stderr
    assert train.returncode != 0 and "exited with 3" in out
    assert "no GPU found" in out and "size is unknown" in out and "Traceback" not in out
