"""The `seed` stage: a generator writes new inputs per label (and attribute) quota; duplicates of
the existing inputs and of each other, copies of the examples shown and of held-out inputs are
dropped with a reason; the teacher answers the rest beside data.inputs, and the filter drops
those it files under another label. Through the stand-in generator, over real HTTP."""

from __future__ import annotations

import json
import random

import pytest
from conftest import LABELS, RepoShell, base_spec, write_rows

from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.seed.replies import read_reply
from distillbuild.seed.requests import Cell, messages_for, plan, quotas, read_request
from distillbuild.seed.selection import Candidate, Selection
from distillbuild.spec import load_spec
from distillbuild.spec.model import Seed, Task

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

VOCAB = {
    label: [
        f"{label}{w}"
        for w in "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
        "november oscar papa quebec romeo sierra tango".split()
    ]
    for label in LABELS
}


def _text(label: str, rng: random.Random) -> str:
    return " ".join(rng.sample(VOCAB[label], 7))


def _seed(**values) -> Seed:
    defaults = dict(
        per_label=None,
        count=None,
        attributes=None,
        topics=None,
        instruction=None,
        per_request=5,
        examples=3,
        temperature=1.0,
        max_tokens=1024,
        max_rounds=3,
        min_chars=8,
        max_chars=4000,
        near_threshold=0.8,
        seed=13,
        generator=None,
    )
    return Seed(**{**defaults, **values})


TASK = Task(type="classification", instruction="Classify the ticket.", labels=tuple(LABELS), output_schema=None)


def test_quotas_deal_each_label_over_the_attribute_values_evenly():
    q = quotas(TASK, _seed(per_label=5, attributes={"tone": ("angry", "calm")}))
    assert sum(q.values()) == 20
    assert q[Cell("bug", (("tone", "angry"),))] == 3 and q[Cell("bug", (("tone", "calm"),))] == 2
    total = quotas(TASK, _seed(count=10))
    assert sorted(total.values()) == [2, 2, 3, 3]  # 10 over 4 labels
    extraction = Task(type="extraction", instruction="Pull the fields.", labels=None, output_schema={})
    assert quotas(extraction, _seed(count=7)) == {Cell(None): 7}


def test_a_request_reads_back_as_what_it_asked_for_and_rounds_send_new_requests():
    seed = _seed(per_label=7, per_request=3, topics=("refunds", "outages"))
    pool = [(f"example {i} about billing", "billing" if i < 2 else None) for i in range(6)]
    first = plan(TASK, seed, {Cell("billing"): 7}, 1, pool)
    assert [r.asked for r in first] == [3, 3, 1]
    assert [r.topic for r in first] == ["refunds", "outages", "refunds"]
    asked = read_request(first[0].messages)
    assert asked.label == "billing" and asked.count == 3 and set(asked.examples) == set(first[0].examples)
    assert {"example 0 about billing", "example 1 about billing"} <= set(first[0].examples)  # its label first
    again = plan(TASK, seed, {Cell("billing"): 7}, 2, pool)
    assert [r.messages for r in again] != [r.messages for r in first]
    # Few examples to draw from: prompts may repeat, but each request is sampled with its own seed.
    scarce = plan(TASK, _seed(per_label=12, per_request=1, examples=2), {Cell("billing"): 12}, 1, pool[:2])
    assert len({json.dumps(r.messages) for r in scarce}) < 12 == len({r.sampling_seed for r in scarce})
    assert (
        read_request([{"role": "system", "content": "You triage tickets."}, {"role": "user", "content": "x"}]) is None
    )
    one = messages_for(TASK, seed, Cell("bug"), 1, None, ())
    assert read_request(one).count == 1 and "Reply with the new input only" in one[-1]["content"]


def test_no_examples_and_scarce_pools_still_plan():
    assert all(
        r.examples == ()
        for r in plan(
            TASK, _seed(per_label=4, examples=0), {Cell("bug"): 4}, 1, [("a bug report", "bug"), ("other", None)]
        )
    )


def test_a_reply_cut_off_keeps_its_complete_inputs():
    assert read_reply('["one here", "two here", "thr', 3, cut_off=True) == ["one here", "two here"]
    assert read_reply('["a", 5, null]', 3) == ["a", "", ""]  # no text: kept empty, for the selection to count


@pytest.mark.parametrize(
    "reply,asked,expected",
    [
        ('["first one here", "second one here"]', 2, ["first one here", "second one here"]),
        ('Sure! Here they are:\n```json\n["a ticket", {"text": "b ticket"}]\n```', 2, ["a ticket", "b ticket"]),
        (
            "1. my card is blocked\n2) refund please\n   it has been a week\n- where is my parcel",
            3,
            ["my card is blocked", "refund please\nit has been a week", "where is my parcel"],
        ),
        ('"Input: my card was charged twice"', 1, ["my card was charged twice"]),
        ("I cannot help with that request.", 3, None),
        ("", 1, None),
    ],
)
def test_replies_are_read_as_json_arrays_lists_or_the_input_itself(reply, asked, expected):
    assert read_reply(reply, asked) == expected


def test_the_selection_gives_every_dropped_candidate_its_reason():
    existing = ["billing alpha bravo charlie delta echo", "refund kilo lima mike november oscar"]
    heldout = ["login papa quebec romeo sierra tango golf"]
    sel = Selection(existing, heldout, min_chars=5, max_chars=80, near_threshold=0.8, decontaminate_threshold=0.8)
    cell = Cell("billing")

    def c(text, examples=()):
        return Candidate(text, cell, tuple(examples), {}, ("Write 1 new input that belongs in the category billing.",))

    kept = sel.add(
        [
            c("fresh words about a brand new billing problem"),
            c(""),
            c("tiny"),
            c("x" * 81),
            c('Sure. write 1 new input that belongs in the cat: "Hi"'),
            c("shown example text", ["Shown  example TEXT"]),
            c("Billing alpha bravo charlie delta echo"),
            c("fresh words about a brand new billing problem"),
            c("login papa quebec romeo sierra tango golf!"),
            c("Login papa quebec romeo sierra tango golf!"),
            c("refund kilo lima mike november oscar papa"),
        ]
    )
    assert [k.text for k in kept] == ["fresh words about a brand new billing problem"]
    # Row checks, then held-out copies (a leak's twin too), then repeats within the round, then near-duplicates.
    assert [reason for _, reason, _ in sel.dropped] == [
        "empty",
        "too_short",
        "too_long",
        "echoes_prompt",
        "copies_example",
        "duplicate_of_input",
        "contaminated",
        "contaminated",
        "duplicate",
        "near_duplicate_of_input",
    ]
    sel.add([c("fresh words about a brand new billing problem today")])  # a later round, against the kept
    assert sel.dropped[-1][1] == "near_duplicate"


def _seed_project(project, **seed_section):
    """Inputs and held-out rows of four labels; the stand-in's key (its pool) holds them and 30
    more texts of each label, so the generator draws new inputs, copies and leaks alike."""
    rng = random.Random(5)
    root = project.root
    inputs = [{"id": f"i{n}", "text": _text(LABELS[n % 4], rng)} for n in range(16)]
    heldout = [{"id": f"h{n}", "text": _text(LABELS[n % 4], rng), "label": LABELS[n % 4]} for n in range(8)]
    fresh = [{"text": _text(label, rng), "label": label} for label in LABELS for _ in range(30)]
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(
        root / "data/key.jsonl",
        [{"text": r["text"], "label": LABELS[n % 4]} for n, r in enumerate(inputs)]
        + [{"text": r["text"], "label": r["label"]} for r in heldout]
        + fresh,
    )
    spec = base_spec()
    spec["filters"] = {"min_confidence": 0.0, "dedup": {"exact": True, "near_threshold": 0.9}, "decontaminate": True}
    spec["seed"] = {"per_label": 6, "per_request": 4, "examples": 2, "max_rounds": 6, **seed_section}
    return project(spec), inputs, heldout


@pytest.mark.build  # trains or loads a model
def test_the_seed_stage_fills_its_quotas_with_new_inputs_the_teacher_then_answers(project, monkeypatch, tmp_path):
    path, inputs, heldout = _seed_project(project)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    loaded = load_spec(path)
    before = _estimate(path)["seed"]
    assert (before["requests"], before["cached"], before["to_call"]) == (8, 0, 8)  # 6 a label, 4 a request
    assert before["completion_tokens_max"] == 8 * 1024 and before["cost_usd_max"] > 0
    assert run_stage("seed", loaded) == 0
    assert _estimate(path)["seed"]["to_call"] == 0  # the first round is cached now
    root = project.root
    report = read_report(root / "build/seed/report.json")
    rows = [json.loads(line) for line in (root / "build/seed/inputs.jsonl").open()]
    dropped = [json.loads(line) for line in (root / "build/seed/dropped.jsonl").open()]
    assert report["generator"] == {"provider": "simulated", "model": "sim", "stand_in": True}
    assert report["kept"] == len(rows) == 24 and report["label_balance"] == {label: 6 for label in LABELS}
    old = {r["text"] for r in inputs + heldout}
    assert not {r["text"] for r in rows} & old and len({r["text"] for r in rows}) == len(rows)
    reasons = {d["reason"] for d in dropped}
    assert {"contaminated", "duplicate"} <= reasons and reasons & {"copies_example", "duplicate_of_input"}
    assert report["by_reason"]["contaminated"] == sum(d["reason"] == "contaminated" for d in dropped)
    assert all(d["text"] in old for d in dropped if d["reason"] in ("contaminated", "duplicate_of_input"))
    assert report["written"] == report["kept"] + sum(
        v for k, v in report["by_reason"].items() if k not in ("generator_error", "unparsable_reply")
    )
    assert (
        report["diversity"]["distinct_1"]["generated"] > 0 and report["diversity"]["embedding_spread"]["generated"] > 0
    )
    assert report["calls"]["billed"] > 0

    assert run_stage("seed", loaded) == 0  # a rerun pays for nothing and writes the same inputs
    assert read_report(root / "build/seed/report.json")["calls"]["billed"] == 0
    assert [json.loads(line) for line in (root / "build/seed/inputs.jsonl").open()] == rows

    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    teacher = read_report(root / "build/teacher/report.json")
    assert teacher["input_checks"]["inputs"] == len(inputs) + 24
    assert teacher["calls"]["requested"] == teacher["input_checks"]["asked"] + len(heldout)
    filtered = read_report(root / "build/filter/report.json")
    seed_part = filtered["seed"]
    assert seed_part["rows"] == 24 and seed_part["answered"] == 24
    mismatched = filtered["by_reason"]["seed_label_mismatch"]
    assert seed_part["teacher_agrees_with_asked"] == 24 - mismatched
    assert 0 < mismatched < 24  # the stand-in teacher is right 90% of the time
    assert seed_part["kept"] == 24 - mismatched


def _estimate(path) -> dict:
    from click.testing import CliRunner

    from distillbuild.cli import main

    result = CliRunner().invoke(main, ["estimate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.build  # trains or loads a model
def test_one_budget_for_every_round_and_inputs_with_a_seed_field_are_not_generated(project, monkeypatch, tmp_path):
    import re

    from distillbuild.errors import StageError

    path, _, _ = _seed_project(project, max_tokens=16)  # a small per-call estimate: the first round runs
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    assert run_stage("seed", load_spec(path)) == 0
    report = read_report(project.root / "build/seed/report.json")
    assert report["rounds"] > 1
    spec = __import__("yaml").safe_load(path.read_text())
    budget = report["calls"]["cost_usd"] * 0.8  # less than all the rounds cost
    spec["teacher"]["budget_usd"] = budget
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache2"))
    with pytest.raises(StageError, match="budget") as stopped:
        run_stage("seed", load_spec(project(spec)))
    spent = float(re.search(r"\$([0-9.]+) spent", str(stopped.value)).group(1))
    # The first round ran, and the later ones stopped: each round alone fits the budget, so a budget
    # per round would have let every round run. (Calls in flight may pass it by one call's cost.)
    assert 0 < spent < report["calls"]["cost_usd"]
    # An input row that happens to carry a `seed` field is an input, not a generated one.
    rows = [json.loads(line) for line in (project.root / "data/inputs.jsonl").open()]
    write_rows(project.root / "data/inputs.jsonl", [{**r, "seed": 42} for r in rows])
    plain = base_spec()
    assert run_stage("teacher", load_spec(project(plain))) == 0
    answers = [json.loads(line) for line in (project.root / "build/teacher/answers.jsonl").open()]
    assert answers and not any(a.get("source") == "seed" for a in answers)


@pytest.mark.build  # trains or loads a model
def test_a_generator_endpoint_of_its_own_and_a_failing_one(project, monkeypatch, tmp_path):
    path, _, _ = _seed_project(
        project, generator={"model": "writer", "simulated": {"answers": "data/key.jsonl", "seed": 9}}
    )
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    loaded = load_spec(path)
    section = loaded.seed.endpoint(loaded.teacher)
    assert (section.model, section.simulated.seed, section.temperature, section.top_logprobs) == ("writer", 9, 1.0, 0)
    assert run_stage("seed", loaded) == 0
    assert read_report(project.root / "build/seed/report.json")["generator"]["model"] == "writer"


def test_seed_specs_are_checked(project):
    from distillbuild.errors import SpecError

    spec = base_spec()
    load_spec(project({**spec, "seed": {"per_label": 2, "generator": {"provider": "simulated"}}}))  # inherits the key
    for section, key in (
        ({"per_request": 2}, "seed"),
        ({"per_label": 2, "count": 3}, "seed.count"),
        ({"per_label": 2, "min_chars": 50, "max_chars": 10}, "seed.min_chars"),
        ({"per_label": 2, "min_chars": 5000}, "seed.min_chars"),  # above the default max_chars
        (
            {"per_label": 2, "generator": {"provider": "openai", "base_url": "https://other.example/v1", "model": "m"}},
            "seed.generator",
        ),
        ({"per_label": 2, "generator": {"provider": "llamacpp"}}, "seed.generator"),
        (
            {"per_label": 2, "generator": {"provider": "openai", "simulated": {"answers": "data/key.jsonl"}}},
            "seed.generator.simulated",
        ),
    ):
        spec["seed"] = section
        with pytest.raises(SpecError) as err:
            load_spec(project(spec))
        assert key in [issue.path for issue in err.value.issues], (section, err.value.issues)


@pytest.mark.slow  # over 4 s: left out of the unit tier
def test_the_seed_stage_is_compiled_before_the_teacher_and_a_human_share_change_leaves_both_alone(tmp_path):
    """dvc.yaml: seed first, its inputs a dependency of the teacher. After `dvc repro filter`,
    changing data.human_share makes `dvc status` name dataset and later, never seed or teacher."""
    import yaml

    sh = RepoShell(tmp_path / "repo", DISTILL_CACHE_DIR=str(tmp_path / "cache"))
    sh.root.mkdir()

    def write(project_spec):
        (sh.root / "distill.yaml").write_text(yaml.safe_dump(project_spec, sort_keys=False))

    class _Project:  # the project fixture's shape over this repository
        root = sh.root

        def __call__(self, project_spec):
            write(project_spec)
            return sh.root / "distill.yaml"

    _, _, _ = _seed_project(_Project())
    write_rows(
        sh.root / "data/human.jsonl",
        [
            {"id": f"p{n}", "text": f"a person writes ticket {n} about {LABELS[n % 4]}", "label": LABELS[n % 4]}
            for n in range(8)
        ],
    )
    spec = yaml.safe_load((sh.root / "distill.yaml").read_text())
    spec["data"].update(human="data/human.jsonl", human_share=0.3)
    write(spec)
    (sh.root / ".gitignore").write_text(".distill/\n")
    sh.init_repo()
    sh("distill", "compile")
    stages = yaml.safe_load((sh.root / "dvc.yaml").read_text())["stages"]
    assert list(stages)[:2] == ["seed", "teacher"] and "build/seed/inputs.jsonl" in stages["teacher"]["deps"]
    assert "build/seed/inputs.jsonl" in stages["seed"]["outs"]
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "v1")
    sh("dvc", "repro", "filter")
    spec["data"]["human_share"] = 0.5
    write(spec)
    status = sh("dvc", "status", "--json").stdout
    stale = set(json.loads(status))
    assert "dataset" in stale and not stale & {"seed", "teacher", "filter"}, status
