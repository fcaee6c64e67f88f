"""Few-shot teacher prompts (task.examples) and input templates (task.input_template).

Examples are chat turns before each input for the teacher only: they change its cache key and
its estimate, inputs equal to an example are left out, the student's rows never carry them,
and an example that is a held-out input is refused when the spec is loaded.
"""

from __future__ import annotations

import json

import pytest
from conftest import base_spec, write_rows

from distillbuild.errors import SpecError, StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.pipeline.stages.teacher import estimate_for, load_requests
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

EXAMPLES = [
    {"input": "ticket number 0 about billing", "answer": "billing"},  # also input r0
    {"input": "my password stopped working", "answer": "login"},
]


def spec_with(**task) -> dict:
    spec = base_spec()
    spec["task"].update(task)
    return spec


def teacher_billed(root) -> int:
    return read_report(root / "build/teacher/report.json")["calls"]["billed"]


def test_examples_are_turns_before_every_input_and_their_inputs_are_left_out(project, monkeypatch):
    monkeypatch.chdir(project.root)
    spec = load_spec(project(spec_with(examples=EXAMPLES)))
    inputs, heldout, requests = load_requests(spec)
    assert [r["id"] for r in inputs] == [f"r{i}" for i in range(1, 12)]  # r0 is an example: not asked, not trained on
    assert len(requests) == 12 and [r["id"] for r in heldout] == ["h1"]
    for messages, row in zip(requests, inputs + heldout):
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert messages[1:5] == [
            {"role": "user", "content": "ticket number 0 about billing"},
            {"role": "assistant", "content": "billing"},
            {"role": "user", "content": "my password stopped working"},
            {"role": "assistant", "content": "login"},
        ]
        assert messages[-1] == {"role": "user", "content": row["text"]}


def test_examples_change_the_cache_key_and_the_estimate_and_stay_out_of_student_rows(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    bare = load_spec(project(base_spec()))
    assert run_stage("teacher", bare) == 0
    assert teacher_billed(project.root) == 13
    shot = load_spec(project(spec_with(examples=EXAMPLES)))
    bare_tokens, shot_tokens = estimate_for(bare).prompt_tokens, estimate_for(shot).prompt_tokens
    assert shot_tokens > bare_tokens * 12 / 13  # fewer requests, each longer by the examples' turns
    assert estimate_for(shot).to_call == 12  # none of the bare prompts' answers serves the few-shot ones
    assert run_stage("teacher", shot) == 0
    assert teacher_billed(project.root) == 12
    assert run_stage("teacher", shot) == 0
    assert teacher_billed(project.root) == 0  # a rerun pays nothing
    assert run_stage("filter", shot) == 0 and run_stage("dataset", shot) == 0
    rows = [
        json.loads(line)
        for part in ("train", "val")
        for line in (project.root / f"build/dataset/{part}.jsonl").read_text().splitlines()
    ]
    assert rows and all([m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in rows)
    assert "r0" not in {r["id"] for r in rows}


def test_an_example_that_is_a_held_out_input_is_refused(project):
    spec = spec_with(examples=[EXAMPLES[0], {"input": "  Held   OUT ", "answer": "bug"}])
    with pytest.raises(SpecError) as err:
        load_spec(project(spec))
    issue = next(i for i in err.value.issues if i.path == "task.examples[1]")
    assert "held-out input 'h1'" in issue.message and issue.line > 1


def test_example_answers_and_templates_are_checked(project):
    spec = spec_with(examples=[{"input": "a new ticket", "answer": "refunds please"}], input_template="{} and {body}")
    with pytest.raises(SpecError) as err:
        load_spec(project(spec))
    assert [i.path for i in err.value.issues] == ["task.input_template"]
    assert "fields must be named" in err.value.issues[0].message
    with pytest.raises(SpecError) as err:
        load_spec(project(spec_with(examples=[{"input": "a new ticket", "answer": "refunds please"}])))
    assert [(i.path, i.message) for i in err.value.issues] == [
        ("task.examples[0].answer", '"refunds please" is not one of task.labels')
    ]


def test_rows_with_fields_render_through_the_template_everywhere(project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    root = project.root
    write_rows(
        root / "data/mail.jsonl",
        [{"id": f"m{i}", "subject": f"Order {i}", "body": f"about billing {i}"} for i in range(6)],
    )
    write_rows(
        root / "data/mail_heldout.jsonl", [{"id": "mh", "subject": "Login", "body": "cannot sign in", "label": "login"}]
    )
    write_rows(
        root / "data/mail_examples.jsonl", [{"subject": "Order 0", "body": "about billing 0", "label": "billing"}]
    )
    spec = spec_with(input_template="Subject: {subject}\n\n{body}", examples="data/mail_examples.jsonl")
    spec["data"] = {"inputs": "data/mail.jsonl", "heldout": "data/mail_heldout.jsonl"}
    loaded = load_spec(project(spec))
    inputs, heldout, requests = load_requests(loaded)
    assert [r["text"] for r in heldout] == ["Subject: Login\n\ncannot sign in"]
    assert [r["id"] for r in inputs] == ["m1", "m2", "m3", "m4", "m5"]  # m0 renders to the example
    assert requests[0][1] == {"role": "user", "content": "Subject: Order 0\n\nabout billing 0"}
    assert run_stage("teacher", loaded) == 0
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").read_text().splitlines()]
    assert answers[0]["text"] == "Subject: Order 1\n\nabout billing 1"
    write_rows(root / "data/mail.jsonl", [{"id": "x", "subject": "no body"}])
    with pytest.raises(StageError, match="lacks 'body', which task.input_template uses"):
        load_requests(loaded)
