"""A real teacher's answers held to the labels and read as labels: the constrained request shapes
each endpoint understands, labels read from an answer's leading word or its probabilities,
confidence that means something, thresholds fitted for a target, the canary's diagnoses, and too
few rows per class refused before training. All against the project's OpenAI-compatible stand-in."""

from __future__ import annotations

import json
import math
import random

import pytest
import yaml
from conftest import LABELS, base_spec, write_rows

from distillbuild.curate.confidence import Calibrator, fit_temperature, score
from distillbuild.curate.threshold import Labelled, fit
from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.errors import StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.runner import run_stage
from distillbuild.protocol.answers import read_label
from distillbuild.protocol.choice import form_for, gbnf, labels_of
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

N_INPUTS = 120


@pytest.fixture
def labelled_project(project):
    """120 inputs that carry gold labels (they audit the teacher and fit thresholds), 40 held out."""
    root = project.root
    rng = random.Random(7)
    words = ["invoice", "charge", "password", "crash", "money back", "screen", "card", "sign in"]
    inputs = [
        {"id": f"r{i}", "text": f"ticket {i}: {rng.choice(words)} {rng.choice(words)}", "label": LABELS[i % 4]}
        for i in range(N_INPUTS)
    ]
    heldout = [
        {"id": f"h{i}", "text": f"held out ticket {i} {rng.choice(words)}", "label": LABELS[i % 4]} for i in range(40)
    ]
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(
        root / "data/key.jsonl",
        [
            {"text": r["text"], "label": r["label"], "alternatives": [LABELS[(LABELS.index(r["label"]) + 1) % 4]]}
            for r in inputs + heldout
        ],
    )
    return project


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_TEST_KEY", "k")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))


def served(root, key="data/key.jsonl", accuracy=0.85):
    return SimulatedTeacherServer(SimulatedTeacher(load_answer_key(root / key), LABELS, accuracy=accuracy, seed=3))


def endpoint_spec(base_url: str, **teacher) -> dict:
    spec = base_spec()
    spec["teacher"] = {
        "provider": "openai",
        "model": "m",
        "base_url": base_url,
        "api_key_env": "DISTILL_TEST_KEY",
        "concurrency": 4,
        "top_logprobs": 5,
        "canary": {"requests": 0},
        **teacher,
    }
    spec["filters"].update(min_rows_per_label=0)
    return spec


def rows(root, name="answers"):
    return [json.loads(line) for line in (root / f"build/teacher/{name}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("form", ["grammar", "guided_choice", "json_schema"])
def test_each_constraint_form_is_sent_and_its_answers_read_as_labels(labelled_project, env, monkeypatch, form):
    root = labelled_project.root
    monkeypatch.chdir(root)
    with served(root) as server:
        spec = load_spec(
            labelled_project(endpoint_spec(server.base_url, answer_format="choice", choice_constraint=form))
        )
        assert run_stage("teacher", spec) == 0
        assert dict(server.constraint_forms) == {form: N_INPUTS + 40}  # every request carried it, in that form
    answered = rows(root) + rows(root, "heldout_answers")
    assert {r["label_from"] for r in answered} == {"constrained"}
    assert all(r["answer"] in LABELS and r["label"] == r["answer"] for r in answered)  # json_schema: unwrapped
    assert all(0.999 <= sum(r["label_probs"].values()) <= 1.000001 for r in answered)
    assert all(r["confidence"] is not None and 0 < r["confidence"] <= 1 for r in answered)


def test_the_constraint_lists_exactly_the_labels_in_each_form():
    labels = ["spam", 'say "hi"', "legit"]
    assert gbnf(labels) == 'root ::= "spam" | "say \\"hi\\"" | "legit"'
    from distillbuild.protocol.choice import body_fields

    for form in ("grammar", "guided_choice", "json_schema"):
        assert labels_of(body_fields(form, labels)) == (form, labels)


def test_auto_holds_answers_to_the_labels_where_the_endpoint_is_known(project):
    def teacher(**given):
        spec = base_spec()
        spec["teacher"] = {"provider": "openai", "model": "m", **given}
        return load_spec(project(spec)).teacher

    assert form_for(teacher(), "classification", False) == "json_schema"  # OpenAI's own API
    assert form_for(teacher(base_url="http://127.0.0.1:1/v1"), "classification", False) is None  # unknown kind
    assert (
        form_for(teacher(base_url="http://127.0.0.1:1/v1", choice_constraint="guided_choice"), "classification", False)
        == "guided_choice"
    )
    assert form_for(teacher(answer_format="text"), "classification", False) is None
    assert form_for(teacher(), "classification", True) is None  # reasoning before the label
    assert form_for(teacher(), "extraction", False) is None
    assert form_for(load_spec(project()).teacher, "classification", False) is None  # the stand-in: as before


def test_choice_without_a_known_form_is_a_spec_error(project):
    spec = endpoint_spec("http://127.0.0.1:1/v1", answer_format="choice")
    from distillbuild.errors import SpecError

    with pytest.raises(SpecError) as err:
        load_spec(project(spec))
    assert "teacher.choice_constraint" in str(err.value) and "guided_choice" in str(err.value)


def test_a_leading_label_and_the_most_probable_label_are_read_and_marked():
    labels = ("sports", "business", "tech")
    assert read_label("sports deportiva\n subtree", None, labels) == ("sports", "prefix")
    assert read_label("Business.", None, labels) == ("business", "text")
    assert read_label("sports or business", {"business": 0.7, "sports": 0.3}, labels) == ("business", "probabilities")
    assert read_label("economy", {"business": 0.6, "tech": 0.4}, labels) == ("business", "probabilities")
    assert read_label("sportsman", None, labels) == (None, None)  # a label glued to more letters is no label
    assert read_label("sports fans", None, labels, constrained=True) == (None, None)


def test_answers_in_the_teachers_own_words_take_their_most_probable_label(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    key = [json.loads(line) for line in (root / "data/key.jsonl").read_text().splitlines()]
    for n, row in enumerate(key):
        if n % 3 == 0:
            row["says"] = {"billing": "payments", "refund": "money", "login": "access", "bug": "defect"}[row["label"]]
    write_rows(root / "data/key.jsonl", key)
    own_words = sum(1 for r in key[:N_INPUTS] if "says" in r)
    with served(root, accuracy=1.0) as server:
        spec = endpoint_spec(server.base_url)
        assert run_stage("teacher", load_spec(labelled_project(spec))) == 0
        answers = rows(root)
        assert sum(r["label_from"] == "probabilities" for r in answers) == own_words
        assert all(r["label"] == g["label"] for r, g in zip(answers, key))  # accuracy 1: the probabilities say so
        assert run_stage("filter", load_spec(labelled_project(spec))) == 0
        report = read_report(root / "build/filter/report.json")
        assert report["label_from"]["answered"]["probabilities"] == own_words
        assert report["by_reason"]["invalid_label"] == 0
        assert report["gold_audit"]["teacher_accuracy_by_label_from"]["probabilities"]["teacher_accuracy"] == 1.0
        spec["filters"]["label_from"] = ["text"]  # only answers that are labels
        assert run_stage("filter", load_spec(labelled_project(spec))) == 0
        report = read_report(root / "build/filter/report.json")
        assert report["by_reason"]["invalid_label"] == own_words


def test_renormalised_confidence_is_the_labels_share_floored_by_label_mass():
    row = {
        "label": "spam",
        "label_from": "text",
        "confidence": 0.2,
        "label_mass": 0.25,
        "label_probs": {"spam": 0.8, "legit": 0.2},
    }
    assert score(row, ("spam", "legit"), "raw", 0.1).confidence == 0.2
    assert score(row, ("spam", "legit"), "renormalised", 0.1).confidence == 0.8
    assert score(row, ("spam", "legit"), "renormalised", 0.5).confidence == pytest.approx(0.4)  # 0.8 x 0.25 / 0.5
    moved = score(
        row, ("spam", "legit"), "calibrated", 0.0, Calibrator("contextual", prior={"spam": 0.9, "legit": 0.1})
    )
    assert moved.label == "legit" and moved.label_from == "calibration"  # the prompt's bias toward spam removed
    assert moved.confidence == pytest.approx((0.2 / 0.1) / (0.2 / 0.1 + 0.8 / 0.9))


def test_temperature_scaling_recovers_the_temperature_that_made_a_teacher_overconfident():
    rng = random.Random(1)
    labels = ("a", "b", "c")
    dists, gold = [], []
    for _ in range(3000):
        logits = {l: rng.gauss(0, 1.5) for l in labels}
        truth = {l: math.exp(v) for l, v in logits.items()}
        total = sum(truth.values())
        g = rng.choices(labels, [truth[l] / total for l in labels])[0]
        sharp = {l: math.exp(v * 2.5) for l, v in logits.items()}  # the teacher reports p^2.5: overconfident
        s = sum(sharp.values())
        dists.append({l: v / s for l, v in sharp.items()})
        gold.append(g)
    assert fit_temperature(dists, gold, labels) == pytest.approx(2.5, rel=0.1)


def test_a_threshold_for_a_target_precision_is_cross_fitted_and_reported():
    rng = random.Random(5)
    rows = []
    for i in range(600):
        c = rng.random()
        rows.append(Labelled(f"r{i}", c, rng.random() < 0.4 + 0.6 * c))  # right more often when confident
    threshold, report = fit({"target_precision": 0.85}, rows, [r.confidence for r in rows])
    kept = [r for r in rows if r.confidence >= threshold]
    assert sum(r.right for r in kept) / len(kept) >= 0.85  # in-sample, by construction
    assert report["precision_ci_low"] <= report["precision"] <= report["precision_ci_high"]
    assert report["precision_ci_low"] <= 0.85 <= report["precision_ci_high"] + 0.05  # out of fold: near the target
    assert report["target_met"] and 0 < report["kept_share"] < 1
    share, report = fit({"keep_share": 0.25}, rows, [r.confidence for r in rows])
    assert report["kept_share"] == pytest.approx(0.25, abs=0.01)


def test_a_fitted_threshold_filters_and_plots(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    spec = base_spec()
    spec["teacher"]["simulated"]["accuracy"] = 0.75
    spec["filters"] = {"min_confidence": {"target_precision": 0.9}, "min_rows_per_label": 0}
    assert run_stage("teacher", load_spec(labelled_project(spec))) == 0
    assert run_stage("filter", load_spec(labelled_project(spec))) == 0
    report = read_report(root / "build/filter/report.json")
    fitted = report["confidence"]["fitted_threshold"]
    assert fitted["fit_on"] == "inputs" and fitted["labelled_rows"] == N_INPUTS
    assert report["confidence"]["min_confidence"] == pytest.approx(fitted["threshold"], abs=1e-6)
    assert report["gold_audit"]["teacher_accuracy_kept"] >= 0.9 > report["gold_audit"]["teacher_accuracy_all"]
    curve = json.loads((root / "build/filter/threshold_curve.json").read_text())
    assert curve[0]["kept_share"] == 1.0 and all(0 <= p["precision"] <= 1 for p in curve)
    assert "build/filter/threshold_curve.json" in render(load_spec(labelled_project(spec)))


def test_contextual_calibration_asks_content_free_inputs_and_fits_a_prior(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    spec = base_spec()
    spec["filters"] = {
        "min_confidence": 0.5,
        "confidence": "calibrated",
        "min_rows_per_label": 0,
        "calibration": {"method": "contextual", "content_free": ["N/A", "[MASK]"]},
    }
    loaded = load_spec(labelled_project(spec))
    assert run_stage("teacher", loaded) == 0
    free = rows(root, "content_free")
    assert [r["text"] for r in free] == ["N/A", "[MASK]"] and all(r["label_probs"] for r in free)
    assert len(rows(root)) == N_INPUTS and len(rows(root, "heldout_answers")) == 40  # kept apart
    assert run_stage("filter", loaded) == 0
    cal = read_report(root / "build/filter/report.json")["confidence"]["calibration"]
    assert cal["calibrator"]["method"] == "contextual" and cal["content_free_inputs"] == 2
    assert sum(cal["calibrator"]["prior"].values()) == pytest.approx(1.0, abs=1e-5)


def test_too_few_rows_of_a_label_stop_the_dataset_stage_with_the_reasons_and_a_fix(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    spec = base_spec()
    spec["teacher"]["simulated"]["accuracy"] = 0.8
    spec["filters"] = {"min_confidence": 0.9, "confidence": "raw", "min_rows_per_label": 25}
    loaded = load_spec(labelled_project(spec))
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    with pytest.raises(StageError) as err:
        run_stage("dataset", loaded)
    message = str(err.value)
    assert "too few rows to train on" in message and "filters.min_rows_per_label (25)" in message
    assert "low_confidence" in message and "filters.min_confidence: 0." in message
    assert "or filters.confidence: renormalised" in message  # the measure is raw here: the other scale is named
    assert not (root / "build/dataset").exists()
    kept = [json.loads(line) for line in (root / "build/filter/kept.jsonl").read_text().splitlines()]
    short = [l for l in LABELS if sum(r["label"] == l for r in kept) < 25]
    assert short and all(f"  {l}:" in message for l in short)


def test_the_canary_stops_a_teacher_that_answers_one_label_whatever_the_input(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    key = [
        {**json.loads(line), "label": "bug", "alternatives": []}
        for line in (root / "data/key.jsonl").read_text().splitlines()
    ]
    write_rows(root / "data/collapsed.jsonl", key)
    with served(root, "data/collapsed.jsonl", accuracy=1.0) as server:
        spec = endpoint_spec(server.base_url, canary={"requests": 20})
        with pytest.raises(StageError) as err:
            run_stage("teacher", load_spec(labelled_project(spec)))
        assert server.requests_served == 20
    message = str(err.value)
    assert "label collapse: 20 of the first 20 usable answers are 'bug'" in message and "about 25%" in message


def test_the_canary_names_a_missing_chat_template(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    key = [{**json.loads(line), "says": "\n<</SYS"} for line in (root / "data/key.jsonl").read_text().splitlines()]
    write_rows(root / "data/bare.jsonl", key)
    with served(root, "data/bare.jsonl") as server:
        spec = endpoint_spec(server.base_url, top_logprobs=0, canary={"requests": 10})
        spec["filters"] = {"min_rows_per_label": 0}
        with pytest.raises(StageError) as err:
            run_stage("teacher", load_spec(labelled_project(spec)))
    message = str(err.value)
    assert "no chat template" in message and "teacher.llamacpp.chat_format" in message
    assert "max_tokens" not in message  # no advice that would not help


def test_a_base_model_is_asked_through_completions(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    with served(root, accuracy=1.0) as server:
        spec = endpoint_spec(server.base_url, api="completions", choice_constraint="grammar", answer_format="choice")
        spec["task"]["examples"] = [{"input": "my card was charged twice", "answer": "billing"}]
        assert run_stage("teacher", load_spec(labelled_project(spec))) == 0
        assert server.constraint_forms["grammar"] == N_INPUTS + 40
    answers = rows(root)
    truth = {
        json.loads(line)["id"]: json.loads(line)["label"]
        for line in (root / "data/inputs.jsonl").read_text().splitlines()
    }
    assert all(r["label"] == truth[r["id"]] and r["label_from"] == "constrained" for r in answers)
    assert all(r["label_probs"] and sum(r["label_probs"].values()) <= 1.000001 for r in answers)
    from distillbuild.llm.completions import prompt_from_messages

    prompt = prompt_from_messages(
        [
            {"role": "system", "content": "Classify."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "billing"},
            {"role": "user", "content": "b"},
        ]
    )
    assert prompt == "Classify.\n\nInput: a\nAnswer: billing\n\nInput: b\nAnswer:"


def test_estimate_canary_prints_the_confidence_and_what_a_threshold_keeps(labelled_project, env, monkeypatch):
    from click.testing import CliRunner

    from distillbuild.cli import main

    spec = base_spec()
    spec["teacher"]["canary"] = {"requests": 12}
    path = labelled_project(spec)
    out = CliRunner().invoke(main, ["estimate", "--canary", "--threshold", "0.65", str(path)])
    assert out.exit_code == 0, out.output
    assert "canary confidence (renormalised, 12 answers): min" in out.output
    assert "0.65 keeps" in out.output and "(filters.min_confidence is 0.5)" in out.output
    as_json = CliRunner().invoke(main, ["estimate", "--canary", "--json", str(path)])
    figures = json.loads(as_json.stdout)["canary_confidence"]
    assert figures["answers"] == 12 and 0 <= figures["median"] <= 1 and set(figures["kept_share"]) >= {"0.5", "0.9"}


def test_a_fit_on_the_heldout_calibration_half_leaves_the_other_half_to_score_the_student(
    labelled_project, env, monkeypatch
):
    from distillbuild.curate.fitting import calibration_half
    from distillbuild.pipeline.stages.evaluate import read_heldout

    root = labelled_project.root
    monkeypatch.chdir(root)
    spec = base_spec()
    spec["filters"] = {
        "confidence": "calibrated",
        "min_confidence": {"target_precision": 0.9},
        "min_rows_per_label": 0,
        "calibration": {"method": "temperature", "fit_on": "heldout"},
    }
    loaded = load_spec(labelled_project(spec))
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    report = read_report(root / "build/filter/report.json")["confidence"]
    half = [f"h{i}" for i in range(40) if calibration_half(f"h{i}")]
    assert 5 < len(half) < 35
    assert report["calibration"]["fit_on"] == "heldout" and report["calibration"]["labelled_rows"] == len(half)
    assert report["fitted_threshold"]["labelled_rows"] == len(half)
    scored = [r["id"] for r in read_heldout(loaded)]
    assert len(scored) == 40 - len(half) and not set(scored) & set(half)  # never the rows that chose the data
    stages = yaml.safe_load(render(loaded))["stages"]
    assert "filters.calibration.fit_on" in stages["evaluate"]["params"][0]["distill.yaml"]  # rescored when it moves
    assert "build/teacher/heldout_answers.jsonl" in stages["filter"]["deps"]


def test_people_s_labels_calibrate_the_teacher_where_it_answered_the_same_inputs(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    inputs = [json.loads(line) for line in (root / "data/inputs.jsonl").read_text().splitlines()]
    write_rows(root / "data/inputs.jsonl", [{"id": r["id"], "text": r["text"]} for r in inputs])  # no gold on inputs
    write_rows(
        root / "data/human.jsonl",
        [{"id": f"p{i}", "text": r["text"], "label": r["label"]} for i, r in enumerate(inputs[:60])],
    )
    spec = base_spec()
    spec["data"]["human"] = "data/human.jsonl"
    spec["filters"] = {"confidence": "calibrated", "min_confidence": 0.5, "min_rows_per_label": 0}
    loaded = load_spec(labelled_project(spec))
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    cal = read_report(root / "build/filter/report.json")["confidence"]["calibration"]
    assert cal["fit_on"] == "human" and cal["labelled_rows"] == 60 and cal["calibrator"]["temperature"] > 0
    spec["data"].pop("human")
    with pytest.raises(StageError, match="labelled rows"):  # nothing to fit on: said, with what would do
        run_stage("filter", load_spec(labelled_project(spec)))


def test_inputs_sorted_by_label_are_no_collapse_when_their_gold_labels_say_so(labelled_project, env, monkeypatch):
    root = labelled_project.root
    monkeypatch.chdir(root)
    inputs = [json.loads(line) for line in (root / "data/inputs.jsonl").read_text().splitlines()]
    write_rows(root / "data/inputs.jsonl", sorted(inputs, key=lambda r: r["label"]))  # 30 `billing` first
    with served(root, accuracy=1.0) as server:
        spec = endpoint_spec(server.base_url, canary={"requests": 20})
        assert run_stage("teacher", load_spec(labelled_project(spec))) == 0  # 20 of 20 `billing`, as labelled
