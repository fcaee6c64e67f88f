"""Extraction end to end: the metrics (DeepEval JsonCorrectnessMetric + field-match metrics) on
hand-made answers, the encoder-extractor student learning on a small set, the pipeline's spec,
and a real `dvc repro` of a reduced pipelines/support-email-extraction in a temporary git repo."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, RepoShell, build_reduced_pipeline
from jsonschema import Draft202012Validator

from distillbuild.errors import SpecError
from distillbuild.evaluate.extraction import agreement, constant_baseline, summarize
from distillbuild.evaluate.extraction_metrics import score_answers
from distillbuild.measurements import read_report
from distillbuild.protocol.field_match import RowScore, values_match
from distillbuild.spec import load_spec
from distillbuild.spec.loader import load_yaml_file
from distillbuild.spec.output_schema import UnsupportedSchema, pydantic_model, schema_fields

PIPELINE = ROOT / "pipelines/support-email-extraction"
SCHEMA = load_yaml_file(PIPELINE / "distill.yaml").data["task"]["output_schema"]
GOLD = {
    "intent": "refund_request",
    "order_id": "BN-123456",
    "product": "aria_earbuds",
    "urgency": "high",
    "customer_name": "Maria Lopez",
    "amount": 49.99,
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- metrics


def test_schema_fields_reads_the_pipeline_schema():
    fields = {f.name: f for f in schema_fields(SCHEMA)}
    assert [f for f in fields] == ["intent", "order_id", "product", "urgency", "customer_name", "amount"]
    assert fields["intent"].kind == "enum" and not fields["intent"].nullable and len(fields["intent"].values) == 8
    assert fields["product"].kind == "enum" and fields["product"].nullable and fields["product"].values[-1] is None
    assert (fields["order_id"].kind, fields["order_id"].nullable) == ("string", True)
    assert (fields["amount"].kind, fields["amount"].nullable) == ("number", True)
    flag = schema_fields({"type": "object", "properties": {"vip": {"type": "boolean"}}})[0]
    assert (flag.kind, flag.values) == ("enum", (True, False))


@pytest.mark.parametrize(
    "schema, needle",
    [
        ({"type": "array"}, "type: object"),
        ({"type": "object", "properties": {}}, "at least one property"),
        (
            {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
            "property 'tags' is array",
        ),
        ({"type": "object", "properties": {"who": {"type": "object"}}}, "property 'who' is object"),
        ({"type": "object", "properties": {"x": {"type": ["string", "number"]}}}, "property 'x' is string/number"),
        ({"type": "object", "properties": {"x": {"enum": []}}}, "empty enum"),
        ({"type": "object", "required": ["y"], "properties": {"x": {"type": "string"}}}, "required must list"),
    ],
)
def test_unsupported_schemas_are_refused_with_the_reason(schema, needle):
    with pytest.raises(UnsupportedSchema, match=needle):
        schema_fields(schema)


def test_values_match_rules():
    assert values_match("  maria   LOPEZ", "Maria Lopez")  # NFKC, case folding, whitespace
    assert values_match("ＢＮ-1", "bn-1")  # full-width letters fold under NFKC
    assert values_match(49.99, 49.99) and values_match(1188, 1188.0)
    assert not values_match("49.99", 49.99)  # a string is not a number
    assert not values_match(True, 1) and not values_match(1, True) and values_match(False, False)
    assert values_match(None, None) and not values_match(None, "x") and not values_match("", None)
    assert not values_match(49.98, 49.99)


def test_summarize_agreement_and_baseline_give_exact_values():
    rows = [
        RowScore(True, True, {"a": True, "b": True}),
        RowScore(True, False, {"a": True, "b": False}),
        RowScore(False, False, {"a": False, "b": False}),
        RowScore(True, True, {"a": False, "b": True}),
    ]
    fields = schema_fields(
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": ["number", "null"]}},
        }
    )
    s = summarize(rows, fields)
    assert s["json_valid_rate"] == 0.75 and s["schema_valid_rate"] == 0.5
    assert s["per_field_accuracy"] == {"a": 0.5, "b": 0.5} and s["field_accuracy"] == 0.5
    assert s["exact_match"] == 0.25
    assert s["field_accuracy"] == sum(r.field_fraction for r in rows) / len(rows)  # what the bootstrap resamples
    student = ['{"a": "x", "b": 1}', '{"a": "Y", "b": null}', "not json"]
    teacher = ['{"a": "x", "b": 2}', '{"a": "y", "b": null}', '{"a": "z"}']
    assert agreement(fields, student, teacher) == pytest.approx(3 / 6)  # x, y, null agree; a missing b never does
    golds = [{"a": "x", "b": None}, {"a": "X", "b": None}, {"a": "y", "b": 3}, {"a": "z", "b": None}]
    assert constant_baseline(fields, golds) == pytest.approx((2 / 4 + 3 / 4) / 2)


def test_deepeval_scores_hand_made_answers():
    answers = [
        json.dumps(GOLD),  # all right
        json.dumps(dict(GOLD, customer_name="maria  lopez", amount=49)),  # name folds; 49 != 49.99
        '{"intent": "refund_request", "order_id": ',  # cut-off JSON
        json.dumps(dict(GOLD, amount="49.99")),  # JSON, wrong type: schema-invalid
        json.dumps({k: v for k, v in GOLD.items() if k != "urgency"}),  # a required field missing
        json.dumps(dict(GOLD, urgency="urgent", note="x")),  # not in the enum, extra key
        None,  # the teacher gave no answer
    ]
    rows = score_answers(SCHEMA, ["an e-mail"] * len(answers), answers, [GOLD] * len(answers))
    assert [r.json_valid for r in rows] == [True, True, False, True, True, True, False]
    assert [r.schema_valid for r in rows] == [True, True, False, False, False, False, False]
    assert [sum(r.fields.values()) for r in rows] == [6, 5, 0, 5, 5, 5, 0]
    assert rows[1].fields["amount"] is False and rows[1].fields["customer_name"] is True
    assert rows[4].fields["urgency"] is False and rows[5].fields["urgency"] is False
    s = summarize(rows, schema_fields(SCHEMA))
    assert s["field_accuracy"] == pytest.approx(26 / 42)
    assert s["exact_match"] == pytest.approx(1 / 7)
    assert s["per_field_accuracy"]["amount"] == pytest.approx(3 / 7)
    # DeepEval's JsonCorrectnessMetric (pydantic) agrees with the JSON Schema itself on these answers.
    validator = Draft202012Validator(SCHEMA)
    for answer, row in zip(answers, rows):
        try:
            value = json.loads(answer)
        except (TypeError, ValueError):
            assert not row.schema_valid
            continue
        assert row.schema_valid == validator.is_valid(value), answer


def test_pydantic_model_is_strict_and_handles_awkward_names():
    model = pydantic_model(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["model_config", "n"],
            "properties": {
                "model_config": {"type": "string", "pattern": "^BN-"},
                "n": {"type": "integer", "minimum": 0},
            },
        }
    )
    assert model.model_validate_json('{"model_config": "BN-1", "n": 3}')
    for bad in (
        '{"model_config": "X-1", "n": 3}',
        '{"model_config": "BN-1", "n": "3"}',
        '{"model_config": "BN-1", "n": -1}',
        '{"model_config": "BN-1"}',
        '{"model_config": "BN-1", "n": 1, "z": 0}',
    ):
        with pytest.raises(ValueError):
            model.model_validate_json(bad)


# --------------------------------------------------------------------------- the student


def test_locate_span_strings_and_numbers():
    from distillbuild.train.extractor import locate_span

    text = "Order BN-123456 for $1,188.00. Tom said hi. Thanks,\nTom Becker (customer since 1188)"
    s, e = locate_span(text, "tom becker", "string")
    assert text[s:e] == "Tom Becker"
    s, e = locate_span(text, "Tom", "string")
    assert (text[s:e], s) == ("Tom", text.index("Tom said"))
    s, e = locate_span(text, 1188.0, "number")
    assert text[s:e] == "1,188.00"  # next to a currency sign wins over the bare 1188
    assert locate_span(text, 123456, "number") is None  # digits inside BN-123456 are not a number
    assert locate_span(text, "Anna", "string") is None and locate_span(text, None, "string") is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A student trained on 160 e-mails of the pipeline's data (answers from its key), 4 epochs."""
    from distillbuild.train.extractor import ExtractorTrainConfig, train_encoder_extractor

    key = {" ".join(r["text"].split()): r["label"] for r in _rows(PIPELINE / "data/teacher_key.jsonl")}
    inputs = _rows(PIPELINE / "data/inputs.jsonl")[:160]
    train = [{"text": r["text"], "label": json.dumps(key[" ".join(r["text"].split())])} for r in inputs]
    heldout = _rows(PIPELINE / "data/heldout.jsonl")[:60]
    cfg = ExtractorTrainConfig(
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        output_schema=SCHEMA,
        max_length=96,
        epochs=4,
        batch_size=16,
        learning_rate=1e-4,
        head_learning_rate=3e-3,
        seed=3,
        threads=1,
    )
    out = tmp_path_factory.mktemp("extractor") / "model"
    history = train_encoder_extractor(cfg, train, train[:20], out, log=lambda m: None)
    return out, history, heldout


def test_the_extractor_learns_and_answers_valid_objects(trained):
    from distillbuild.train.extractor import EncoderExtractor

    out, history, heldout = trained
    losses = [s["loss"] for s in history["steps"]]
    assert history["train_rows"] == 160 and len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    model = EncoderExtractor.load(out, threads=1)
    predicted = model.predict([r["text"] for r in heldout])
    validator = Draft202012Validator(SCHEMA)
    assert all(validator.is_valid(p) and list(p) == list(SCHEMA["properties"]) for p in predicted)
    fields = schema_fields(SCHEMA)
    rows = [
        RowScore(True, True, {f.name: values_match(p[f.name], r["label"][f.name]) for f in fields})
        for p, r in zip(predicted, heldout)
    ]
    s = summarize(rows, fields)
    baseline = constant_baseline(fields, [r["label"] for r in heldout])
    assert baseline < 0.45
    assert s["field_accuracy"] >= 0.75 and s["field_accuracy"] - baseline >= 0.3, s  # measured: 0.856 vs 0.414
    assert s["per_field_accuracy"]["order_id"] >= 0.85 and s["per_field_accuracy"]["customer_name"] >= 0.8, s


def test_a_saved_extractor_reloads_to_the_same_answers(trained):
    from distillbuild.train.extractor import EncoderExtractor, fit_encoder_extractor  # noqa: F401

    out, _, heldout = trained
    texts = [r["text"] for r in heldout[:12]]
    first = EncoderExtractor.load(out, threads=1).predict(texts)
    assert EncoderExtractor.load(out, threads=1).predict(texts) == first
    one_by_one = [EncoderExtractor.load(out, threads=1).predict([t])[0] for t in texts[:3]]
    assert one_by_one == first[:3]  # padding in a batch changes nothing
    meta = json.loads((out / "student.json").read_text())
    assert meta["kind"] == "encoder-extractor" and meta["fields"] == list(SCHEMA["properties"])
    with pytest.raises(TypeError):
        EncoderExtractor.load(out).predict("one string")


def test_the_trainer_config_refuses_bad_settings():
    from distillbuild.train.extractor import ExtractorTrainConfig

    good = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "output_schema": SCHEMA}
    assert ExtractorTrainConfig.from_dict(good).epochs >= 1
    with pytest.raises(ValueError, match="unknown extractor train config key"):
        ExtractorTrainConfig.from_dict(dict(good, epoch=3))
    with pytest.raises(ValueError, match="property 'tags'"):
        ExtractorTrainConfig.from_dict(
            dict(good, output_schema={"type": "object", "properties": {"tags": {"type": "array"}}})
        )
    with pytest.raises(ValueError, match="batch_size"):
        ExtractorTrainConfig.from_dict(dict(good, batch_size=0))


# --------------------------------------------------------------------------- the spec


def _generator():
    spec = importlib.util.spec_from_file_location("support_email_generate", PIPELINE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_spec_is_valid_compiled_and_matches_its_data():
    from distillbuild.pipeline.compile import render

    spec = load_spec(PIPELINE / "distill.yaml")
    assert spec.get("student.kind") == "encoder-extractor" and spec.get("task.type") == "extraction"
    assert spec.get("gates.field_accuracy") == {"min": 0.8, "bound": "ci_low"}
    assert (PIPELINE / "dvc.yaml").read_text(encoding="utf-8") == render(spec)  # the committed dvc.yaml is current
    assert spec.get("task.output_schema") == _generator().SCHEMA  # the generator's schema is the spec's
    validator = Draft202012Validator(SCHEMA)
    heldout = _rows(PIPELINE / "data/heldout.jsonl")
    assert 150 <= len(heldout) <= 250 and all(validator.is_valid(r["label"]) for r in heldout)
    size = sum(p.stat().st_size for p in (PIPELINE / "data").iterdir())
    assert size < 1_000_000


def _write(tmp_path: Path, data: dict) -> Path:
    root = tmp_path
    (root / ".git").mkdir(exist_ok=True)
    for name in ("inputs.jsonl", "heldout.jsonl", "teacher_key.jsonl"):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / name).write_text("")
    path = root / "distill.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _messages(tmp_path: Path, data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, data))
    return [f"{i.path}: {i.message}" for i in info.value.issues]


def test_extraction_gates_and_student_rules_are_checked(tmp_path):
    base = load_yaml_file(PIPELINE / "distill.yaml").data
    load_spec(_write(tmp_path, base))  # valid as written

    bad = copy.deepcopy(base)
    bad["gates"] = {
        "accuracy": {"min": 0.9},
        "exact_match": {"min": 0.5, "bound": "ci_low"},
        "teacher_field_accuracy": {"min": 0.5, "bound": "ci_low"},
    }
    msgs = _messages(tmp_path, bad)
    assert any(
        m.startswith("gates.accuracy: gate on 'accuracy', a metric that is never computed for extraction") for m in msgs
    )
    assert any(
        m.startswith("gates.teacher_field_accuracy.bound: teacher_field_accuracy has no bootstrap interval")
        for m in msgs
    )
    assert not any(m.startswith("gates.exact_match") for m in msgs)

    bad = copy.deepcopy(base)
    bad["task"]["output_schema"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    assert any(m.startswith("task.output_schema: property 'tags' is array") for m in _messages(tmp_path, bad))

    bad = copy.deepcopy(base)
    bad["student"]["trainer"] = "axolotl"
    assert "student.trainer: encoder-extractor students train with trainer: local" in _messages(tmp_path, bad)

    bad = copy.deepcopy(base)
    del bad["task"]["output_schema"]
    bad["task"]["type"] = "classification"
    bad["task"]["labels"] = ["a", "b"]
    bad["gates"] = {"accuracy": {"min": 0.5}}
    assert "student.kind: an encoder-extractor student needs task.type extraction, not classification" in _messages(
        tmp_path, bad
    )


# --------------------------------------------------------------------------- end to end

N_INPUTS, N_HELDOUT = 200, 60


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("extraction-repo")
    sh = RepoShell(root, timeout=600, DISTILL_CACHE_DIR=None)
    spec = load_yaml_file(PIPELINE / "distill.yaml").data
    spec["student"].update(epochs=5, max_length=96, threads=1)
    spec["evaluation"] = {"latency_samples": 20, "threads": 1, "bootstrap": 500}
    spec["gates"] = {
        "field_accuracy": {"min": 0.7, "bound": "ci_low"},
        "schema_valid_rate": {"min": 0.99},
        "latency_p95_ms": {"max": 10000},
    }
    first = build_reduced_pipeline(
        sh,
        spec,
        _rows(PIPELINE / "data/inputs.jsonl")[:N_INPUTS],
        _rows(PIPELINE / "data/heldout.jsonl")[:N_HELDOUT],
        _rows(PIPELINE / "data/teacher_key.jsonl"),
    )
    return root, sh, first


def test_repro_builds_an_extractor_and_the_gate_passes(repo):
    root, sh, first = repo
    for stage in ("teacher", "filter", "dataset", "configure", "train", "evaluate", "gate"):
        assert f"Running stage '{stage}'" in first.stdout
    assert "PASS" in first.stderr  # stages log to stderr
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["verdict"] == "pass"
    m = read_report(root / "build/evaluate/metrics.json")
    assert m["heldout_rows"] == N_HELDOUT and m["evaluator"].startswith("deepeval ")
    assert m["json_valid_rate"] == 1.0 and m["schema_valid_rate"] == 1.0  # the student's objects always validate
    assert 0.9 <= m["teacher_field_accuracy"] <= 1.0 and m["teacher_schema_valid_rate"] >= 0.9
    # Well above the best constant answer (each field's most common gold value).
    assert m["baseline_field_accuracy"] < 0.45
    assert m["field_accuracy"] >= 0.8 and m["field_accuracy"] - m["baseline_field_accuracy"] >= 0.35, m
    assert m["retention"] == pytest.approx(m["field_accuracy"] / m["teacher_field_accuracy"], abs=1e-5)
    assert m["field_accuracy_ci_low"] <= m["field_accuracy"] <= m["field_accuracy_ci_high"]
    assert m["exact_match_ci_low"] <= m["exact_match"] <= m["exact_match_ci_high"]
    assert m["exact_match"] <= min(m["per_field_accuracy"].values())
    assert m["field_accuracy"] == pytest.approx(sum(m["per_field_accuracy"].values()) / 6, abs=1e-5)
    assert m["latency_p50_ms"] > 0 and m["teacher_cost_per_1k_usd"] > 0 and m["student_cost_per_1k_usd"] > 0
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    assert len(predictions) == N_HELDOUT and {"actual", "predicted", "student_answer"} <= set(predictions[0])
    card = (root / "build/gate/model_card.md").read_text()
    assert "| field_accuracy |" in card and "encoder-extractor" in card and "simulated stand-in" in card
    assert not (root / ".deepeval").exists()  # DeepEval wrote nothing into the working directory
    report = read_report(root / "build/train/report.json")
    assert report["kind"] == "encoder-extractor" and report["train_rows"] > 100


def test_a_second_repro_does_no_work_and_metrics_show(repo):
    _, sh, _ = repo
    again = sh("dvc", "repro")
    assert "Running stage" not in again.stdout
    shown = json.dumps(json.loads(sh("dvc", "metrics", "show", "--json").stdout))
    assert "field_accuracy" in shown and "schema_valid_rate" in shown
