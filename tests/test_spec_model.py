"""The typed spec (distillbuild/spec/model.py): the example specs load into it with the values
their YAML gives and the schema's defaults, it is read-only, and every key of the schema has a
field (a key added to the schema without one fails here)."""

from __future__ import annotations

import dataclasses
import json
import typing
from types import NoneType, UnionType

import pytest
from conftest import ROOT, base_spec

from distillbuild.spec import Spec, load_spec
from distillbuild.spec.model import (
    Endpoint,
    Judge,
    RateLimit,
    SimulatedTeacher,
    SpecModel,
    Teacher,
    spec_key,
    thaw,
)

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


@pytest.fixture(scope="module")
def quickstart() -> Spec:
    return load_spec(ROOT / "distill.yaml")


@pytest.fixture(scope="module")
def extraction() -> Spec:
    return load_spec(ROOT / "pipelines/support-email-extraction/distill.yaml")


def test_quickstart_loads_with_its_values_and_the_schema_defaults(quickstart):
    spec = quickstart
    assert (spec.version, spec.name, spec.registry_name) == (1, "ticket-triage", "ticket-triage")
    assert spec.task.type == "classification" and spec.task.output_schema is None
    assert spec.task.labels[:3] == ("billing", "refund", "login") and len(spec.task.labels) == 12
    assert spec.data_files.inputs == "data/tickets/inputs.jsonl"
    assert spec.data_files.heldout == "data/tickets/heldout.jsonl"
    teacher = spec.teacher
    assert isinstance(teacher, Teacher) and isinstance(teacher.simulated, SimulatedTeacher)
    assert (teacher.model, teacher.max_tokens, teacher.budget_usd) == ("gpt-4o-sim", 8, 2)
    assert (teacher.price.input_per_mtok, teacher.price.output_per_mtok) == (2.5, 10)
    assert (teacher.simulated.answers, teacher.simulated.accuracy, teacher.simulated.latency_ms) == (
        "data/tickets/teacher_key.jsonl",
        0.93,
        40,
    )
    # Defaults from the schema, where the YAML says nothing.
    assert (teacher.timeout_s, teacher.max_retries, teacher.samples, teacher.batch) == (60, 5, 1, False)
    assert teacher.base_url is None and teacher.seed is None and teacher.tokenizer is None
    assert teacher.rate_limit == RateLimit(rpm=None, tpm=None)
    assert teacher.simulated.latency_sigma == 0.25 and teacher.simulated.faults.malformed == 0
    assert teacher.simulated.limits == RateLimit(rpm=None, tpm=None)
    assert spec.filters.min_confidence == 0.6 and spec.filters.dedup.near_threshold == 0.9
    assert spec.filters.min_agreement == 0 and spec.filters.decontaminate_threshold == 0.8
    assert spec.filters.rules.max_per_class is None
    assert (spec.split.val_fraction, spec.split.seed) == (0.1, 13)
    student = spec.student
    assert (student.kind, student.trainer, student.epochs, student.learning_rate) == (
        "encoder-classifier",
        "local",
        6,
        8.0e-5,
    )
    assert (student.kd.mode, student.kd.alpha, student.kd.temperature) == ("labels", 0.5, 2.0)
    assert (student.lora.r, student.adapter, student.device, student.gpu.attention) == (
        16,
        "qlora",
        "auto",
        "flash_attention_2",
    )
    assert (student.distributed.strategy, student.distributed.zero_stage) == ("none", 2)
    assert student.class_weights == "none" and student.finetune == "full" and student.threads is None
    assert (spec.evaluation.latency_samples, spec.evaluation.min_heldout_rows, spec.evaluation.bootstrap) == (
        200,
        30,
        1000,
    )
    assert dict(spec.gates["retention"]) == {"min": 0.9, "bound": "ci_low"}
    assert list(spec.gates) == ["accuracy", "retention", "latency_p95_ms"]
    # Optional sections the spec leaves out.
    assert student.endpoint is None and student.axolotl is None
    assert spec.filters.judge is None and spec.evaluation.judge is None


def test_extraction_pipeline_loads_with_its_values(extraction):
    spec = extraction
    assert spec.name == "support-email-extraction" and spec.promote.name == "support-email-extraction"
    assert spec.task.type == "extraction" and spec.task.labels is None
    schema = spec.task.output_schema
    assert schema["required"] == ("intent", "order_id", "product", "urgency", "customer_name", "amount")
    assert schema["properties"]["intent"]["enum"][0] == "refund_request"
    assert thaw(schema) == spec.data["task"]["output_schema"]  # thawed: the mapping as loaded
    assert (spec.teacher.max_tokens, spec.teacher.top_logprobs, spec.teacher.simulated.seed) == (120, 1, 11)
    assert (spec.student.kind, spec.student.max_length, spec.student.threads) == ("encoder-extractor", 128, 1)
    assert dict(spec.gates["field_accuracy"]) == {"min": 0.8, "bound": "ci_low"}


def test_the_untyped_fallback_agrees_with_the_typed_sections(quickstart):
    assert quickstart["teacher"]["concurrency"] == quickstart.teacher.concurrency == 16
    assert quickstart.get("student.kd.alpha") == quickstart.student.kd.alpha
    assert quickstart.get("filters.judge") is None and quickstart.filters.judge is None


def test_the_typed_spec_is_read_only(quickstart):
    with pytest.raises(dataclasses.FrozenInstanceError):
        quickstart.teacher.model = "gpt-4o"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        quickstart.student.kd.alpha = 0.9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        quickstart.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        quickstart.gates["accuracy"]["min"] = 0.1  # type: ignore[index]
    with pytest.raises(TypeError):
        quickstart.gates["new"] = {"min": 0.1}  # type: ignore[index]
    assert isinstance(quickstart.task.labels, tuple)


def _endpoint_identity(endpoint: Endpoint) -> tuple:
    """What a settings constructor reads: any endpoint section will do."""
    return (
        endpoint.provider,
        endpoint.model,
        endpoint.max_tokens,
        endpoint.concurrency,
        endpoint.simulated.answers if endpoint.simulated else None,
    )


def test_judges_and_the_teacher_share_the_endpoint_shape(project):
    spec = base_spec()
    judge = {
        "provider": "simulated",
        "model": "judge-sim",
        "criteria": "Is the label right?",
        "simulated": {"answers": "data/key.jsonl"},
    }
    spec["filters"]["judge"] = {**judge, "min_score": 0.7}
    spec["evaluation"] = {"judge": {**judge, "evaluation_steps": ["Compare the answer with the input."]}}
    loaded = load_spec(project(spec))
    filters_judge, eval_judge = loaded.filters.judge, loaded.evaluation.judge
    assert isinstance(filters_judge, Judge) and isinstance(eval_judge, Judge)
    assert _endpoint_identity(filters_judge) == ("simulated", "judge-sim", 512, 16, "data/key.jsonl")
    assert _endpoint_identity(loaded.teacher) == ("simulated", "sim", 16, 8, "data/key.jsonl")
    assert (filters_judge.min_score, eval_judge.min_score, eval_judge.logprobs) == (0.7, 0.5, True)
    assert eval_judge.evaluation_steps == ("Compare the answer with the input.",)
    assert filters_judge.evaluation_steps is None and filters_judge.price is None
    assert (eval_judge.simulated.accuracy, eval_judge.simulated.seed) == (0.95, 11)


def test_the_axolotl_escape_hatch_is_a_read_only_mapping(project):
    spec = base_spec()
    overrides = {"lr_scheduler": "linear", "fsdp_config": {"offload_params": True}, "eval_strategy": None}
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "HuggingFaceTB/SmolLM2-135M",
        "trainer": "axolotl",
        "axolotl": overrides,
    }
    student = load_spec(project(spec)).student
    assert thaw(student.axolotl) == overrides and student.axolotl["fsdp_config"]["offload_params"] is True
    with pytest.raises(TypeError):
        student.axolotl["fsdp_config"]["offload_params"] = False  # type: ignore[index]


def _section_class(hint: typing.Any) -> type | None:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, UnionType) else (hint,)
    classes = [t for t in options if t is not NoneType and dataclasses.is_dataclass(t)]
    return classes[0] if classes else None


def _missing_fields(cls: type, node: dict, where: str) -> list[str]:
    """Schema keys under `node` with no field in `cls` (or a field with no key), recursively;
    an object with its own properties must be a section class, not a free mapping."""
    hints = typing.get_type_hints(cls)
    fields = {spec_key(f): f for f in dataclasses.fields(cls)}
    properties = node.get("properties", {})
    problems = [f"{where}{key}: no field in {cls.__name__}" for key in properties if key not in fields]
    problems += [
        f"{where}{key}: field of {cls.__name__} with no key in the schema" for key in fields if key not in properties
    ]
    for key, sub in properties.items():
        if key not in fields:
            continue
        section = _section_class(hints[fields[key].name])
        if section is not None:
            problems += _missing_fields(section, sub, f"{where}{key}.")
        elif "properties" in sub:
            problems.append(f"{where}{key}: an object with keys of its own, but no section class")
    return problems


def test_every_schema_key_has_a_field():
    schema = json.loads((ROOT / "schemas/distill.schema.json").read_text(encoding="utf-8"))
    assert _missing_fields(SpecModel, schema, "") == []
    # The walk reaches the nested sections (a broken walk would pass vacuously): a key added
    # deep down is found.
    hints = typing.get_type_hints(Teacher)
    assert _section_class(hints["simulated"]) is SimulatedTeacher
    assert _missing_fields(SpecModel, _with_key(schema, ["teacher", "simulated", "faults"], "jitter"), "") == [
        "teacher.simulated.faults.jitter: no field in Faults"
    ]
    assert _missing_fields(SpecModel, _with_key(schema, ["student", "kd"], "beta"), "") == [
        "student.kd.beta: no field in Kd"
    ]


def _with_key(schema: dict, path: list[str], key: str) -> dict:
    """A copy of the schema with one more property under `path`."""
    out = json.loads(json.dumps(schema))
    node = out
    for part in path:
        node = node["properties"][part]
    node["properties"][key] = {"type": "number"}
    return out


def test_the_committed_schema_is_what_the_model_writes():
    """schemas/distill.schema.json is generated from spec/model.py (`make schema`); editing the
    file by hand, or a field without regenerating it, fails here."""
    from distillbuild.spec.json_schema import SCHEMA_FILE, render

    assert SCHEMA_FILE.read_text(encoding="utf-8") == render()
