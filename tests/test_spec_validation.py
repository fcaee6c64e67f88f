"""The spec loader and validator: every broken spec is refused with FILE:LINE: key: message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, base_spec
from jsonschema import Draft202012Validator

from distillbuild.errors import SpecError
from distillbuild.spec import load_spec
from distillbuild.spec.loader import MAX_SPEC_BYTES
from distillbuild.spec.schema import SCHEMA_PATH

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def issues_of(path: Path) -> list:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.issues


def one_issue(path: Path):
    issues = issues_of(path)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_quickstart_spec_is_valid():
    spec = load_spec(ROOT / "distill.yaml")
    assert spec["name"] == "ticket-triage"
    assert len(spec["task"]["labels"]) == 12
    assert spec.get("teacher.timeout_s") == 60  # a default from the schema


def test_base_spec_is_valid_and_gets_defaults(project):
    spec = load_spec(project())
    assert spec.get("teacher.top_logprobs") == 5
    assert spec.get("student.kd.alpha") == 0.5
    assert spec.get("evaluation.latency_samples") == 200
    assert "evaluation" not in spec.raw  # what was written stays apart from defaults


def test_schema_is_valid_2020_12_with_descriptions_and_closed_objects():
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    assert (ROOT / "schemas/distill.schema.json").read_bytes() == SCHEMA_PATH.read_bytes()

    def walk(node, path):
        if not isinstance(node, dict):
            return
        if path:
            assert node.get("description"), f"{path} has no description"
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "")


BROKEN = [
    # (change to the spec text, expected line, expected key path, expected words)
    ("version: 1\nversion: 1\n", 2, "version", "duplicate key 'version'"),
    ("version: 1\nname: [oops\n", 3, "", "invalid YAML"),
    ("", 1, "", "empty"),
    ("# only a comment\n", 1, "", "empty"),
    ("- version\n- name\n", 1, "", "top level must be a mapping"),
    ("just a string\n", 1, "", "top level must be a mapping"),
    ("~\n", 1, "", "top level must be a mapping"),
    ("version: 1\n---\nname: x\n", 2, "", "single document"),
    ("version:\t1\n", 1, "", "invalid YAML"),
    ("version: 1\nname: !!python/object:os.system {}\n", 2, "name", "unsupported YAML tag"),
    ("version: 1\nname: !!python/name:os.system ''\n", 2, "", "invalid YAML"),
    ("? [a, b]\n: c\n", 1, "", "plain scalars"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", 1, "", "nests too deeply"),
]


@pytest.mark.parametrize("text, line, path, words", BROKEN)
def test_unparseable_specs(project, text, line, path, words):
    issue = one_issue(project(text))
    assert (issue.line, issue.path) == (line, path)
    assert words in issue.message
    assert issue.file.endswith("distill.yaml")


def _spec_text_with(mutate) -> str:
    spec = base_spec()
    mutate(spec)
    return yaml.safe_dump(spec, sort_keys=False)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


MUTATIONS = [
    ("unknown top-level key", lambda s: s.update(fliters={}), "fliters:", "fliters", "did you mean 'filters'"),
    (
        "unknown nested key",
        lambda s: s["teacher"].update(temprature=0),
        "temprature:",
        "teacher.temprature",
        "did you mean 'temperature'",
    ),
    (
        "wrong type",
        lambda s: s["teacher"].update(concurrency="many"),
        "concurrency:",
        "teacher.concurrency",
        "expected an integer",
    ),
    (
        "negative concurrency",
        lambda s: s["teacher"].update(concurrency=-1),
        "concurrency:",
        "teacher.concurrency",
        ">= 1",
    ),
    (
        "probability above 1",
        lambda s: s["filters"].update(min_confidence=1.2),
        "min_confidence:",
        "filters.min_confidence",
        "<= 1",
    ),
    (
        "enum",
        lambda s: s["student"].update(trainer="axolotol"),
        "trainer:",
        "student.trainer",
        "did you mean 'axolotl'",
    ),
    ("missing required", lambda s: s["teacher"].pop("model"), "teacher:", "teacher", "missing required key 'model'"),
    (
        "missing input file",
        lambda s: s["data"].update(inputs="data/nope.jsonl"),
        "inputs:",
        "data.inputs",
        "does not exist",
    ),
    (
        "path leaving the repo",
        lambda s: s["data"].update(heldout="../../outside.jsonl"),
        "heldout:",
        "data.heldout",
        "leaves the repository",
    ),
    ("absolute path", lambda s: s["data"].update(heldout="/etc/hosts"), "heldout:", "data.heldout", "absolute"),
    (
        "gate on an uncomputed metric",
        lambda s: s["gates"].update(f1_score={"min": 0.5}),
        "f1_score:",
        "gates.f1_score",
        "never computed",
    ),
    (
        "gate typo",
        lambda s: s["gates"].update(acuracy={"min": 0.5}),
        "acuracy:",
        "gates.acuracy",
        "did you mean 'accuracy'",
    ),
    (
        "gate that cannot hold",
        lambda s: s["gates"].update(retention={"min": 0.9, "max": 0.8}),
        "retention:",
        "gates.retention",
        "can never hold",
    ),
    ("bad version", lambda s: s.update(version=2), "version:", "version", "must be 1"),
    (
        "encoder on extraction",
        lambda s: (
            s["task"].update(type="extraction", output_schema={"type": "object"}),
            s["task"].pop("labels"),
            s.update(gates={"heldout_rows": {"min": 1}}),
        ),
        "kind:",
        "student.kind",
        "needs task.type classification",
    ),
    (
        "confidence without logprobs",
        lambda s: (s["teacher"].update(top_logprobs=0), s["student"].update(kd={"alpha": 0})),
        "min_confidence:",
        "filters.min_confidence",
        "top_logprobs",
    ),
    (
        "NaN threshold",
        lambda s: s["filters"].update(min_confidence=float("nan")),
        "min_confidence:",
        "filters.min_confidence",
        "finite",
    ),
    ("duplicate labels", lambda s: s["task"].update(labels=["a", "b", "a"]), "labels:", "task.labels", "unique"),
    # a key that takes a string or a mapping: the type expected, or what is wrong inside the mapping
    (
        "neither a path nor examples",
        lambda s: s["task"].update(examples=3),
        "examples:",
        "task.examples",
        "expected a list or a string, got 3",
    ),
    (
        "inside one of two forms",
        lambda s: s["task"].update(examples=[{"input": "x"}]),
        "- input:",
        "task.examples[0]",
        "missing required key 'answer'",
    ),
    (
        "causal student with an encoder's length",
        lambda s: s["student"].update(kind="causal-lm", trainer="axolotl", max_length=64),
        "max_length:",
        "student.max_length",
        "whole conversation",
    ),
]


@pytest.mark.parametrize("what, mutate, needle, path, words", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_invalid_specs(project, what, mutate, needle, path, words):
    text = _spec_text_with(mutate)
    issue = one_issue(project(text))
    assert issue.path == path
    assert words in issue.message, issue.message
    assert issue.line == _line_of(text, needle), str(issue)


def test_inline_api_key_is_refused_and_never_echoed(project):
    secret = "sk-proj-" + "A1b2C3d4" * 4
    text = _spec_text_with(lambda s: s["teacher"].update(api_key=secret))
    issues = issues_of(project(text))
    assert any(i.path == "teacher.api_key" and "api_key_env" in i.message for i in issues)
    assert all(secret not in str(i) and secret[:12] not in str(i) for i in issues)


def test_secret_in_api_key_env_is_not_echoed(project):
    secret = "sk-" + "x" * 40
    text = _spec_text_with(lambda s: s["teacher"].update(api_key_env=secret))
    issues = issues_of(project(text))
    assert issues and all(secret not in str(i) for i in issues)
    assert any(i.path == "teacher.api_key_env" for i in issues)


def test_every_error_is_reported_at_once(project):
    def mutate(s):
        s["teacher"]["concurrency"] = 0
        s["filters"]["min_confidence"] = 2
        s["gates"]["nonsense"] = {"min": 1}

    issues = issues_of(project(_spec_text_with(mutate)))
    assert {i.path for i in issues} == {"teacher.concurrency", "filters.min_confidence", "gates.nonsense"}


def test_alias_bomb_fails_fast(project):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = project("\n".join(lines) + "\n")
    t0 = time.process_time()
    issue = one_issue(path)
    assert "alias bomb" in issue.message
    # 9^9 nodes if expanded; refusing must not walk them (a loose bound: CPU time, not wall time).
    assert time.process_time() - t0 < 5


def test_oversize_spec_is_refused_before_parsing(project):
    path = project("a: 1\n" + "#" * (MAX_SPEC_BYTES + 10) + "\n")
    issue = one_issue(path)
    assert "refused" in issue.message and issue.line == 1


def test_non_utf8_spec(project):
    path = project()
    path.write_bytes(b"version: 1\nname: \xff\xfe\n")
    issue = one_issue(path)
    assert "UTF-8" in issue.message and issue.line == 2


def test_merge_keys_and_anchors_are_accepted(project):
    spec = base_spec()
    text = yaml.safe_dump(spec, sort_keys=False).replace(
        "gates:\n  accuracy:\n    min: 0.5\n", "gates:\n  accuracy: &g\n    min: 0.5\n  macro_f1: *g\n"
    )
    loaded = load_spec(project(text))
    assert loaded["gates"]["macro_f1"] == {"min": 0.5}


def test_gate_on_an_interval_the_metric_does_not_have(project):
    spec = base_spec()
    spec["gates"] = {"accuracy": {"min": 0.8, "bound": "ci_low"}, "macro_f1": {"min": 0.5, "bound": "ci_low"}}
    issues = issues_of(project(spec))
    assert [(i.path, "no bootstrap interval" in i.message) for i in issues] == [("gates.macro_f1.bound", True)]


def test_the_old_gate_key_on_is_read_with_a_deprecation_message(project, capsys):
    text = yaml.safe_dump(base_spec(), sort_keys=False).replace(
        "gates:\n  accuracy:\n    min: 0.5\n", "gates:\n  accuracy: {min: 0.5, on: ci_low}\n"
    )
    path = project(text)
    assert load_spec(path)["gates"]["accuracy"] == {"min": 0.5, "on": "ci_low"}  # still a string key, still read
    line = text.splitlines().index("  accuracy: {min: 0.5, on: ci_low}") + 1
    err = capsys.readouterr().err
    assert f"distill.yaml:{line}: gates.accuracy.on is deprecated" in err and "bound: ci_low" in err
    from distillbuild.pipeline.stages.gate import check

    assert check("accuracy", {"min": 0.5, "on": "ci_low"}, {"accuracy": 0.9, "accuracy_ci_low": 0.4})["pass"] is False
    both = text.replace("{min: 0.5, on: ci_low}", "{min: 0.5, on: ci_low, bound: ci_low}")
    assert [i.path for i in issues_of(project(both))] == ["gates.accuracy.on"]


def test_a_key_a_yaml_1_1_tool_turned_into_true_is_explained(project):
    """PyYAML loads `on:` as True and saves it back as `true:`: the loader says what happened."""
    text = yaml.safe_dump(base_spec(), sort_keys=False).replace(
        "gates:\n  accuracy:\n    min: 0.5\n", "gates:\n  accuracy: {min: 0.5, on: ci_low}\n"
    )
    round_tripped = yaml.safe_dump(yaml.safe_load(text), sort_keys=False)
    assert "true: ci_low" in round_tripped  # the trap, as PyYAML sets it
    issues = issues_of(project(round_tripped))
    assert [i.path for i in issues] == ["gates.accuracy.true"]
    assert "YAML boolean" in issues[0].message and "bound: ci_low" in issues[0].message
    assert issues[0].line == round_tripped.splitlines().index("    true: ci_low") + 1


@pytest.mark.parametrize(
    "gate,bound,says",
    [
        ("accuracy", {"min": 1.5}, "gates.accuracy.min: accuracy is [0, 1]: a min of 1.5 can never hold"),
        ("macro_f1", {"max": -0.1}, "gates.macro_f1.max: macro_f1 is [0, 1]: a max of -0.1 can never hold"),
        ("accuracy", {"min": -1}, "gates.accuracy.min: accuracy is [0, 1]: a min of -1 always holds"),
        (
            "latency_p95_ms",
            {"max": -5},
            "gates.latency_p95_ms.max: latency_p95_ms is at least 0: a max of -5 can never hold",
        ),
        ("teacher_cost_per_1k_usd", {"min": -1}, "teacher_cost_per_1k_usd is at least 0: a min of -1 always holds"),
    ],
)
def test_a_gate_bound_outside_what_its_metric_can_take_is_refused_with_exit_2(project, gate, bound, says):
    from click.testing import CliRunner

    from distillbuild.cli import main

    spec = base_spec()
    spec["gates"] = {gate: bound}
    path = project(spec)
    result = CliRunner().invoke(main, ["validate", str(path)])
    line = path.read_text().splitlines().index(f"    {next(iter(bound))}: {next(iter(bound.values()))}") + 1
    assert result.exit_code == 2 and f"distill.yaml:{line}: " in result.output and says in result.output


def test_gate_bounds_inside_the_range_pass(project):
    spec = base_spec()
    spec["gates"] = {"accuracy": {"min": 0, "max": 1}, "retention": {"min": 1.2}, "latency_p95_ms": {"max": 0}}
    assert load_spec(project(spec)).gates["retention"] == {"min": 1.2}  # a student may beat its teacher


# The semantic checks read the typed spec as written (spec/written.py), not string key paths.
CHECK_MODULES = ("semantic", "teacher_checks", "student_checks", "answer_checks", "few_shot", "vocabulary")


def test_semantic_checks_read_typed_fields_not_key_paths():
    for name in CHECK_MODULES:
        source = (ROOT / f"distillbuild/spec/{name}.py").read_text(encoding="utf-8")
        assert "get_path" not in source, f"spec/{name}.py reads the spec by string path"


def test_sections_of_the_wrong_shape_are_reported_beside_the_checks_that_still_run(project):
    """Sections given as scalars or lists: the schema names each, the semantic checks read them
    as absent and still report what they can (the gate on a metric the task never computes)."""

    def mutate(s):
        s["teacher"] = 5
        s["student"] = ["encoder-classifier"]
        s["filters"]["rules"] = "strict"
        s["gates"]["nonsense"] = {"min": 1}

    issues = issues_of(project(_spec_text_with(mutate)))
    assert {i.path for i in issues} == {"teacher", "student", "filters.rules", "gates.nonsense"}, [
        str(i) for i in issues
    ]


def test_a_section_written_empty_is_told_from_one_left_out(project):
    """`student.gpu: {}` is written (an Axolotl setting under the local trainer); left out, it is not."""
    issues = issues_of(project(_spec_text_with(lambda s: s["student"].update(gpu={}))))
    assert [(i.path, "applies to trainer: axolotl" in i.message) for i in issues] == [("student.gpu", True)]
    load_spec(project())  # the base spec leaves it out, and is valid


def test_the_seed_quota_check_takes_the_schema_defaults(project):
    """seed.min_chars above the schema's default max_chars (4000), with max_chars left out."""
    spec = base_spec()
    spec["seed"] = {"per_label": 2, "min_chars": 5000}
    issue = one_issue(project(spec))
    assert (issue.path, issue.message) == ("seed.min_chars", "5000 is more than seed.max_chars (4000)")
