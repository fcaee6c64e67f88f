"""Shared fixtures. Tests never reach the network: every hub and telemetry switch is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    "RAY_USAGE_STATS_ENABLED": "0",
}.items():
    os.environ[_var] = _value

ROOT = Path(__file__).resolve().parents[1]

# The unit tier (`make test-unit`, tests marked `unit`): no torch and no `dvc repro`, for the inner
# loop. It runs with torch (and what loads it) unimportable, so a unit test that reaches for it fails.
UNIT_TIER = os.environ.get("DISTILL_UNIT_TIER") == "1"
HEAVY = ("torch", "transformers", "onnxruntime", "peft")


class _NoHeavyImports:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(
                f"{name}: the unit tier imports no torch stack (DISTILL_UNIT_TIER=1); mark the test otherwise"
            )
        return None


if UNIT_TIER:
    sys.meta_path.insert(0, _NoHeavyImports())
    # Modules outside the tier may import torch when collected: not collected at all.
    collect_ignore = [
        p.name for p in Path(__file__).parent.glob("test_*.py") if "pytestmark = pytest.mark.unit" not in p.read_text()
    ]
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
        # A dozen rows over four labels: below the default floor of rows per label, on purpose.
        "filters": {"min_confidence": 0.5, "dedup": {"exact": True}, "min_rows_per_label": 0},
        "split": {"val_fraction": 0.2, "seed": 3},
        "student": {
            "kind": "encoder-classifier",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "trainer": "local",
        },
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
        text = (
            spec
            if isinstance(spec, str)
            else yaml.safe_dump(spec if spec is not None else base_spec(), sort_keys=False)
        )
        path.write_text(text, encoding="utf-8")
        return path

    write.root = tmp_path  # type: ignore[attr-defined]
    return write


class RepoShell:
    """Runs commands in a temporary repository at ``root`` the way a user's shell would: the
    venv's bin first on PATH (``dvc``, ``distill``), DVC's site cache beside ``root`` (never the
    user's) and DVC analytics off. ``env`` sets more variables; a None value removes one.

    ``sh(*cmd)`` runs in ``root`` (or ``cwd=``) and returns the CompletedProcess; with ``check``
    (the default) a failing command raises AssertionError with its output."""

    def __init__(self, root: Path, timeout: int = 900, **env: str | None):
        self.root = Path(root)
        self.timeout = timeout
        self.env = dict(os.environ)
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"
        self.env["DVC_SITE_CACHE_DIR"] = str(self.root.parent / "dvc-site-cache")
        self.env["DVC_NO_ANALYTICS"] = "1"
        for name, value in env.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value

    def __call__(self, *cmd: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(
            cmd, cwd=cwd or self.root, env=self.env, capture_output=True, text=True, timeout=self.timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def init_repo(self) -> None:
        """git init (with a committer) and dvc init, analytics off, in ``root``."""
        self("git", "init", "-q")
        self("git", "config", "user.email", "test@example.com")
        self("git", "config", "user.name", "test")
        self("dvc", "init", "-q")
        self("dvc", "config", "core.analytics", "false")


def build_reduced_pipeline(
    sh: RepoShell, spec: dict, inputs: list[dict], heldout: list[dict], key_rows
) -> subprocess.CompletedProcess:
    """A reduced copy of a pipeline in ``sh.root``, built: the rows under data/ (the simulated
    teacher's answer key cut to their texts), ``spec`` pointed at them with no teacher latency
    (``spec`` is changed in place) as distill.yaml, the repository initialised, dvc.yaml compiled
    and committed, then ``dvc repro``; returns that run."""
    root = sh.root
    wanted = {r["text"] for r in inputs + heldout}
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(root / "data/key.jsonl", [r for r in key_rows if r["text"] in wanted])
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["teacher"]["simulated"].update(answers="data/key.jsonl", latency_ms=0)
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / ".gitignore").write_text(".distill/\n")
    sh.init_repo()
    sh("distill", "compile")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "v1")
    return sh("dvc", "repro")


@pytest.fixture(scope="session")
def student(tmp_path_factory) -> Path:
    """The packaged MiniLM with a seeded random head over LABELS, saved as the trainer saves one."""
    import torch

    from distillbuild.train.common import load_encoder, resolve_base_model
    from distillbuild.train.encoder import EncoderClassifier, _EncoderHeadModel, save_encoder_classifier

    torch.manual_seed(0)
    encoder, tokenizer = load_encoder(resolve_base_model("sentence-transformers/all-MiniLM-L6-v2"))
    model = _EncoderHeadModel(encoder, len(LABELS)).eval()
    with torch.no_grad():
        model.head.weight.mul_(20)  # decisive logits: the labels differ from row to row
    out = tmp_path_factory.mktemp("student") / "model"
    save_encoder_classifier(EncoderClassifier(model, tokenizer, LABELS, 64), out)
    return out
