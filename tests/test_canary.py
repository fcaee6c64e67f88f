"""The canary: a teacher whose first answers are no use stops the stage (exit 3) before the rest
is paid for, says why, and keeps what it paid for in the cache."""

from __future__ import annotations

import json

import pytest
from conftest import LABELS, base_spec, write_rows

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.errors import StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


@pytest.fixture
def chatty_teacher(project):
    """An endpoint that answers most inputs with a sentence, not a label (as SmolLM2 does zero-shot)."""
    root = project.root
    texts = [json.loads(line)["text"] for line in (root / "data/inputs.jsonl").read_text().splitlines()]
    answers = {t: (LABELS[i % 4] if i % 6 == 5 else "This is a ticket about something") for i, t in enumerate(texts)}
    answers["held out"] = "bug"
    write_rows(root / "data/chatty.jsonl", [{"text": t, "label": a} for t, a in answers.items()])
    teacher = SimulatedTeacher(
        load_answer_key(root / "data/chatty.jsonl"), [], accuracy=1.0, seed=1
    )  # answers verbatim
    with SimulatedTeacherServer(teacher) as server:
        yield server


def spec_for(base_url: str, **canary) -> dict:
    spec = base_spec()
    spec["teacher"] = {
        "provider": "openai",
        "model": "chatty",
        "base_url": base_url,
        "api_key_env": "DISTILL_TEST_KEY",
        "concurrency": 2,
        "canary": canary,
    }
    return spec


def test_a_teacher_that_ignores_the_task_stops_after_the_canary(project, chatty_teacher, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_TEST_KEY", "k")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    spec = load_spec(project(spec_for(chatty_teacher.base_url, requests=5, min_usable=0.5)))
    with pytest.raises(StageError) as err:
        run_stage("teacher", spec)
    message = str(err.value)
    assert "only 0 of the first 5 answers are usable" in message and "no label 5" in message
    assert "'This is a ticket about something'" in message and "task.examples" in message
    assert chatty_teacher.requests_served == 5  # the other 8 were never asked
    assert not (project.root / "build/teacher/answers.jsonl").exists()
    # The canary's answers are kept: with the canary off, the rerun asks only the 8 others.
    spec = load_spec(project(spec_for(chatty_teacher.base_url, requests=0)))
    assert run_stage("teacher", spec) == 0
    assert chatty_teacher.requests_served == 13
    report = read_report(project.root / "build/teacher/report.json")
    assert report["calls"]["billed"] == 8 and report["calls"]["from_cache"] == 5


def test_a_teacher_that_does_the_task_passes_the_canary_and_pays_once(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    spec = base_spec()
    spec["teacher"]["canary"] = {"requests": 5, "min_usable": 0.8}
    assert run_stage("teacher", load_spec(project(spec))) == 0
    report = read_report(project.root / "build/teacher/report.json")
    assert report["calls"]["billed"] == 13 and report["calls"]["from_cache"] == 0  # the canary's calls count once


def test_distill_estimate_can_run_the_canary_alone(project, chatty_teacher, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from distillbuild.cli import main

    monkeypatch.setenv("DISTILL_TEST_KEY", "k")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    path = project(spec_for(chatty_teacher.base_url, requests=4, min_usable=0.5))
    plain = CliRunner().invoke(main, ["estimate", str(path)])
    assert plain.exit_code == 0 and chatty_teacher.requests_served == 0  # an estimate asks nothing
    checked = CliRunner().invoke(main, ["estimate", "--canary", str(path)])
    assert checked.exit_code == 3 and "only 0 of the first 4 answers are usable" in checked.output
    assert chatty_teacher.requests_served == 4
