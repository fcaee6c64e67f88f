"""A stage's contract checks itself: the spec keys a stage reads (it, or any engine it calls) are
the keys it declares, so an edit to distill.yaml reruns exactly the stages it should.

Each spec below turns optional sections on; every stage of its pipeline runs in-process, in
order, on small real data, while a recording spec (tests/spec_reads.py) logs each key read.
A read that the stage's READS/READS_WHEN do not cover fails; so does a declared key that no
configuration here reads. A key whose value is a file path the stage lists in its deps is
covered by that dep (a new path changes dvc.yaml's deps, and DVC reruns the stage).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from spec_reads import covered, recording, unused

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.errors import StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.contract import RUN_ONLY_KEYS
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec
from distillbuild.spec.loader import get_path, has_path

ROOT = Path(__file__).resolve().parents[1]
TICKETS = ROOT / "data/tickets"
EXTRACTION = ROOT / "pipelines/support-email-extraction"
# Axolotl's validator install (`make test` builds it): `train` validates the config before refusing.
VALIDATION_AXOLOTL = ROOT / ".venv-axolotl/bin/axolotl"


def _rows(path: Path, start: int, count: int) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()[start : start + count]
    return [json.loads(line) for line in lines]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def classification_project(root: Path) -> dict:
    """The quickstart's task on 80 of its tickets, with every optional section a classification
    build with an encoder student can have."""
    key = {r["text"]: r["label"] for r in _rows(TICKETS / "teacher_key.jsonl", 0, 10_000)}
    inputs = _rows(TICKETS / "inputs.jsonl", 0, 80)
    _write(root / "data/inputs.jsonl", inputs)
    _write(root / "data/heldout.jsonl", _rows(TICKETS / "heldout.jsonl", 0, 40))
    _write(root / "data/recent.jsonl", _rows(TICKETS / "heldout.jsonl", 40, 10))
    _write(root / "data/human.jsonl", [{**r, "label": key[r["text"]]} for r in _rows(TICKETS / "inputs.jsonl", 80, 16)])
    _write(root / "data/key.jsonl", _rows(TICKETS / "teacher_key.jsonl", 0, 10_000))
    spec = yaml.safe_load((ROOT / "distill.yaml").read_text(encoding="utf-8"))
    spec["data"] = {
        "inputs": "data/inputs.jsonl",
        "heldout": "data/heldout.jsonl",
        "human": "data/human.jsonl",
        "heldout_sets": {"recent": "data/recent.jsonl"},
        "train_on": "both",
        "human_share": 0.2,
    }
    spec["seed"] = {"per_label": 1, "examples": 2, "generator": {"provider": "simulated"}}
    spec["teacher"]["simulated"] = {"answers": "data/key.jsonl", "accuracy": 0.9, "latency_ms": 0, "seed": 7}
    spec["teacher"]["canary"] = {"requests": 4}
    spec["filters"] = {
        "min_confidence": 0.3,
        "confidence": "calibrated",
        "calibration": {"method": "temperature", "fit_on": "heldout"},
        "min_rows_per_label": 0,
        "dedup": {"exact": True, "near_threshold": 0.9},
        "decontaminate": True,
        "rules": {"min_chars": 1, "max_per_class": 50},
        "judge": {
            "provider": "simulated",
            "model": "judge",
            "criteria": "The label fits the ticket.",
            "min_score": 0.1,
            "simulated": {"answers": "data/key.jsonl", "accuracy": 0.9, "seed": 5, "latency_ms": 0},
        },
    }
    spec["student"].update({"epochs": 1, "max_length": 32, "batch_size": 32})
    spec["evaluation"] = {"latency_samples": 5, "latency_rounds": 1, "bootstrap": 50}
    spec["gates"] = {"accuracy": {"min": 0.0}, "latency_p95_ms": {"max": 100_000}, "heldout_rows": {"min": 10}}
    spec["route"] = {"max_teacher_share": 0.5}
    spec["export"] = {"format": "onnx", "max_disagreement": 1.0}
    return spec


def extraction_project(root: Path) -> dict:
    """The extraction pipeline's task and stand-in teacher on 60 of its e-mails."""
    spec = yaml.safe_load((EXTRACTION / "distill.yaml").read_text(encoding="utf-8"))
    for key in ("inputs", "heldout"):
        _write(root / spec["data"][key], _rows(EXTRACTION / spec["data"][key], 0, 60 if key == "inputs" else 30))
    answers = spec["teacher"]["simulated"]["answers"]
    _write(root / answers, _rows(EXTRACTION / answers, 0, 100_000))
    spec["student"].update({"epochs": 1, "max_length": 64})
    spec["evaluation"] = {**spec.get("evaluation", {}), "latency_samples": 5, "latency_rounds": 1, "bootstrap": 50}
    spec["gates"] = {"heldout_rows": {"min": 1}}
    return spec


def fitted_threshold_project(root: Path) -> dict:
    """The quickstart's task with its threshold fitted for a precision on half the held-out set."""
    spec = classification_project(root)
    for key in ("seed", "route", "export"):
        spec.pop(key)
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["filters"] = {
        "min_confidence": {"target_precision": 0.8},
        "confidence": "renormalised",
        "calibration": {"fit_on": "heldout"},
        "min_rows_per_label": 0,
    }
    return spec


def causal_project(root: Path) -> dict:
    """pipelines/ticket-triage-llama as written (a Llama QLoRA student through Axolotl), its
    OpenAI teacher pointed at the stand-in on 127.0.0.1: `train` stops here (no GPU)."""
    spec = yaml.safe_load((ROOT / "pipelines/ticket-triage-llama/distill.yaml").read_text(encoding="utf-8"))
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    _write(root / "data/inputs.jsonl", _rows(TICKETS / "inputs.jsonl", 0, 80))
    _write(root / "data/heldout.jsonl", _rows(TICKETS / "heldout.jsonl", 0, 40))
    spec["teacher"]["base_url"] = STANDIN_URL
    spec["filters"]["min_rows_per_label"] = 0  # 80 tickets over 12 labels
    return spec


PROJECTS = {
    "classification": classification_project,
    "extraction": extraction_project,
    "fitted-threshold": fitted_threshold_project,
    "causal": causal_project,
}
STANDIN_URL = "http://127.0.0.1:{port}/v1"


def leaves(raw: dict, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys the file sets at or below each of `keys`: a section declared whole is checked key by key."""

    def below(value, path):
        if isinstance(value, dict) and value:
            return [leaf for k, v in value.items() for leaf in below(v, f"{path}.{k}")]
        return [path]

    return tuple(leaf for key in keys for leaf in below(get_path(raw, key), key))


def run_recorded(root: Path) -> dict[str, dict]:
    """Every stage of the project's pipeline, in order: the keys each read and declared."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    found = {}
    for stage in stage_list.of_spec(load_spec(root / "distill.yaml")):
        spec = load_spec(root / "distill.yaml")  # as `distill stage NAME` loads it
        with recording(spec) as recorder:
            try:
                code = run_stage(stage.name, spec)
            except StageError as exc:  # a stage that stops still read its keys first
                code = f"stopped: {exc}"
        with recording(spec) as contract:  # what deciding the stage's dvc.yaml entry reads
            deps = {Path(d).as_posix() for d in stage.deps(spec)}
            for part in (stage.outs, stage.metrics, stage.plots, stage.views, stage.applies, stage.keys_read):
                part(spec)
        found[stage.name] = {
            "reads": recorder.reads,
            "contract": contract.reads,
            "declared": stage.keys_read(spec),
            "static": stage.reads,
            "params": leaves(spec.raw, stage.params(spec)),
            "deps": deps,
            "written": {k for k in recorder.reads if has_path(spec.raw, k.rstrip("?"))},
            "values": {k: spec.get(k.rstrip("?")) for k in recorder.reads},
            "code": code,
        }
        if code != 0:
            break
    return found


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, dict[str, dict]]:
    return record_projects(tmp_path_factory.mktemp, PROJECTS)


def record_projects(make_dir, projects: dict) -> dict[str, dict[str, dict]]:
    """Each project built in its own directory (`make_dir(name)`), its stages' reads recorded."""
    key = load_answer_key(TICKETS / "teacher_key.jsonl")
    spec = yaml.safe_load((ROOT / "pipelines/ticket-triage-llama/distill.yaml").read_text(encoding="utf-8"))
    teacher = SimulatedTeacher(key, spec["task"]["labels"], accuracy=0.93, seed=7)
    cwd, env = os.getcwd(), dict(os.environ)
    os.environ.update(
        {
            "OPENAI_API_KEY": "sk-test-local-only",
            "CUDA_VISIBLE_DEVICES": "",
            **({"DISTILL_AXOLOTL": str(VALIDATION_AXOLOTL)} if VALIDATION_AXOLOTL.exists() else {}),
        }
    )
    out = {}
    try:
        with SimulatedTeacherServer(teacher, model=spec["teacher"]["model"], api_key="sk-test-local-only") as server:
            for name, make in projects.items():
                root = make_dir(name)
                os.environ["DISTILL_CACHE_DIR"] = str(root / ".distill/cache")
                text = yaml.safe_dump(make(root), sort_keys=False).replace(STANDIN_URL, server.base_url)
                (root / "distill.yaml").write_text(text, encoding="utf-8")
                out[name] = run_recorded(root)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
    return out


def undeclared(stage: dict) -> list[str]:
    """Keys the stage read that DVC would not see change. Covered: a declared key (or a section
    above it); a key read in deciding the stage's dvc.yaml entry (its deps, outs or conditions:
    a change that matters changes the entry, and DVC reruns the stage); a key the file does not
    set, which the stage declares in some condition (writing it adds the param); a file path
    the stage lists in its deps."""

    def by_dep(key: str) -> bool:
        value = stage["values"].get(key)
        values = value.values() if isinstance(value, dict) else [value]
        return bool(values) and all(isinstance(v, str) and Path(v).as_posix() in stage["deps"] for v in values)

    def unwritten(key: str) -> bool:
        return key not in stage["written"] and covered(key, stage["static"])

    return sorted(
        k
        for k in stage["reads"]
        if not covered(k, stage["declared"])
        and not covered(k, RUN_ONLY_KEYS)  # where the work runs: deliberately no param
        and not covered(k, tuple(c.rstrip("?") for c in stage["contract"]))
        and not unwritten(k)
        and not by_dep(k)
    )


def test_every_stage_ran(recorded):
    ran = {project: {name: s["code"] for name, s in stages.items()} for project, stages in recorded.items()}
    stopped = ran["causal"].pop("train")
    assert stopped.startswith("stopped: train: no GPU found")  # after Axolotl's config and the device plan
    assert ran == {
        "classification": {
            name: 0
            for name in (
                "seed",
                "teacher",
                "filter",
                "dataset",
                "configure",
                "train",
                "evaluate",
                "route",
                "gate",
                "export",
            )
        },
        "extraction": {name: 0 for name in ("teacher", "filter", "dataset", "configure", "train", "evaluate", "gate")},
        "fitted-threshold": {
            name: 0 for name in ("teacher", "filter", "dataset", "configure", "train", "evaluate", "gate")
        },
        "causal": {name: 0 for name in ("teacher", "filter", "dataset", "configure")},
    }


def test_every_key_a_stage_reads_is_declared(recorded):
    missing = {
        f"{project}/{name}": undeclared(stage)
        for project, stages in recorded.items()
        for name, stage in stages.items()
        if undeclared(stage)
    }
    assert missing == {}


def test_every_declared_key_is_read(recorded):
    """A key declared and read by no configuration here reruns a stage for nothing."""
    by_stage: dict[str, tuple[set[str], set[str]]] = {}
    for stages in recorded.values():
        for name, stage in stages.items():
            declared, reads = by_stage.setdefault(name, (set(), set()))
            declared.update(stage["params"])  # what DVC tracks: the keys the file sets, each key of a section
            reads.update(stage["reads"] | stage["contract"])
    never = {name: unused(tuple(declared), reads) for name, (declared, reads) in by_stage.items()}
    assert {name: keys for name, keys in never.items() if keys} == WHOLE_SECTION_ONLY


# Keys inside a section a stage declares whole, that it does not read: declared key by key, a key
# added to distill.yaml later would go unseen by `dvc repro` until `distill compile`, so the
# section stays whole and these rerun the stage for nothing.
WHOLE_SECTION_ONLY = {"teacher": ["teacher.terms"], "filter": ["filters.min_rows_per_label"]}


def test_the_check_fails_when_a_declared_key_is_removed(recorded):
    stage = dict(recorded["classification"]["filter"])
    assert undeclared(stage) == []
    without = tuple(k for k in stage["declared"] if k != "filters") + ("filters.min_confidence",)
    stage.update(declared=without, static=without)
    assert "filters.dedup.near_threshold" in undeclared(stage)
