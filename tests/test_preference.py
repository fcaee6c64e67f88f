"""student.preference: DPO after SFT. The `pairs` stage turns the SFT student's disagreements with
the teacher into (prompt, chosen, rejected) rows; the `preference` stage's config is the SFT one
with `rl: dpo` over the merged SFT model, and Axolotl's own validator accepts it with no key
dropped. Changing only beta re-runs only the preference step (tests/test_axolotl_train.py trains
it and checks that through `dvc status`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, base_spec, write_rows
from test_axolotl_configs import MODEL, causal_spec, make_project, needs_axolotl_venv, run_validator

from distillbuild import layout
from distillbuild.errors import SpecError
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.runner import run_stage
from distillbuild.pipeline.stages.pairs import cap, judge_pairs, make_pairs, prompts_to_ask
from distillbuild.pipeline.stages.preference import write_config
from distillbuild.spec import load_spec
from distillbuild.spec.model import PairJudge

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def _row(i: int, label: str, answer: str | None = None) -> dict:
    return {
        "id": f"r{i}",
        "label": label,
        "messages": [
            {"role": "system", "content": "Classify."},
            {"role": "user", "content": f"ticket {i}"},
            {"role": "assistant", "content": answer or label},
        ],
    }


def test_pairs_are_the_rows_where_the_sft_student_and_the_teacher_disagree():
    rows = prompts_to_ask(
        [_row(1, "bug"), {**_row(1, "bug"), "id": "r1#2"}, _row(2, "refund"), _row(3, "login")], "answer"
    )
    assert [r["id"] for r in rows] == ["r1", "r2", "r3"]  # an oversampled copy is asked once
    pairs, reasons = make_pairs(rows, ["bug", "billing", None], ["bug", "billing", "I am not sure"])
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("r2", "refund", "billing"),
        ("r3", "login", "I am not sure"),
    ]
    assert pairs[0]["messages"] == rows[1]["messages"][:-1]  # the prompt, without the teacher's turn
    assert reasons == {"student_agrees": 1, "other_label": 1, "no_label": 1}
    every, _ = make_pairs(rows, [None, None, None], ["x", "y", "z"])
    capped = cap(every, 2)
    assert len(capped) == 2 and capped == cap(list(reversed(every)), 2)[::-1]  # chosen by id, not by order
    step = prompts_to_ask(
        [
            {
                **_row(4, "bug"),
                "id": "r4#label",
                "messages": [{"role": "user", "content": "[label] ticket 4"}, {"role": "assistant", "content": "bug"}],
            },
            {"id": "r4#rationale", "task": "rationale", "label": "bug", "messages": []},
        ],
        "step_by_step",
    )
    assert [(r["id"], r["text"]) for r in step] == [("r4", "ticket 4")]


def _spec(**preference) -> dict:
    return causal_spec({"preference": {"beta": 0.1, **preference}})


def test_the_preference_stages_sit_between_train_and_evaluate_and_beta_is_read_by_preference_alone(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "distill.yaml").write_text(yaml.safe_dump(_spec(max_pairs=50), sort_keys=False))
    stages = yaml.safe_load(render(load_spec(root / "distill.yaml")))["stages"]
    assert list(stages)[list(stages).index("train") :][:4] == ["train", "pairs", "preference", "evaluate"]
    pairs_params = stages["pairs"]["params"][0]["distill.yaml"]
    assert "student.preference.max_pairs" in pairs_params and not any(
        "beta" in k or k == "student" for k in pairs_params
    )
    assert stages["preference"]["params"][0]["distill.yaml"] == ["name", "task.type", "student"]
    assert {layout.PREFERENCE_MODEL, layout.PREFERENCE_BASE, layout.MODEL_DIR} <= set(
        stages["evaluate"]["deps"]
    )  # DPO vs SFT


@pytest.mark.slow  # over 4 s: left out of the unit tier
@needs_axolotl_venv
def test_the_dpo_config_passes_axolotls_validator_with_no_key_dropped(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "distill.yaml").write_text(yaml.safe_dump(_spec(epochs=2), sort_keys=False))
    spec = load_spec(root / "distill.yaml")
    shutil.copytree(root / MODEL, root / layout.PREFERENCE_BASE)  # what the merge writes: a model directory
    (root / layout.PAIRS).write_text("")
    cwd = os.getcwd()
    try:
        assert run_stage("configure", spec) == 0  # the SFT config and its device plan, which DPO follows
        Path(layout.PREFERENCE_CONFIG).mkdir(parents=True)
        plan = write_config(spec, Path(layout.PREFERENCE_CONFIG))
    finally:
        os.chdir(cwd)
    cfg = yaml.safe_load((root / layout.PREFERENCE_CONFIG / "axolotl.yaml").read_text())
    assert (cfg["rl"], cfg["rl_beta"], cfg["num_epochs"], cfg["base_model"]) == ("dpo", 0.1, 2, layout.PREFERENCE_BASE)
    assert cfg["datasets"][0]["type"] == "chat_template.default" and cfg["datasets"][0]["path"] == layout.PAIRS
    assert cfg["output_dir"] == layout.PREFERENCE_MODEL and "test_datasets" not in cfg and plan["device"]
    assert cfg["learning_rate"] == 5.0e-6 and cfg["adapter"] == "lora"  # the schema's default; a LoRA over the merge
    report = run_validator("--cwd", str(root), str(root / layout.PREFERENCE_CONFIG / "axolotl.yaml"), cwd=tmp_path)
    result = report["configs"][0]
    assert result["ok"] and not result["dropped"] and not result["errors"], result


def test_preference_needs_an_axolotl_causal_student(tmp_path):
    from distillbuild.errors import SpecError

    root = make_project(tmp_path / "p")
    spec = _spec()
    spec["student"]["trainer"] = "local"
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        load_spec(root / "distill.yaml")
    except SpecError as err:
        assert "student.preference" in {i.path for i in err.issues}
    else:
        raise AssertionError("a local trainer with student.preference was accepted")
    assert LABELS  # the project's labels are the classification task's


def test_the_paired_test_and_the_gates_on_dpos_gain(tmp_path):
    from distillbuild.errors import SpecError
    from distillbuild.stats import mcnemar_p, round_p

    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert abs(mcnemar_p(10, 0) - 2 / 2**10) < 1e-12 and mcnemar_p(3, 10) == mcnemar_p(10, 3) < 0.1
    # 41 vs 104 discordant rows: p = 1.6968e-07, which six decimal places would write as 0.0;
    # rounded up, so that a gate `max: 0.05` fails closed just above it
    assert round_p(mcnemar_p(41, 104)) == 1.697e-07 and round_p(6.335276789855397e-16) == 6.336e-16
    assert round_p(0.0500004) == 0.05001 and round_p(0.05) == 0.05 and round_p(1.0) == 1.0 and round_p(0.0) == 0.0
    root = make_project(tmp_path / "p")
    spec = _spec()
    spec["gates"] = {"preference_gain": {"min": 0.0}, "preference_gain_p": {"max": 0.05}}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    load_spec(root / "distill.yaml")  # computed when student.preference is set
    del spec["student"]["preference"]
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        load_spec(root / "distill.yaml")
    except SpecError as err:
        assert {"gates.preference_gain", "gates.preference_gain_p"} <= {i.path for i in err.issues}
    else:
        raise AssertionError("a gate on DPO's gain without student.preference was accepted")


def test_the_judge_keeps_only_pairs_where_the_teachers_answer_wins(project, monkeypatch, tmp_path):
    """filters.judge (the stand-in, over real HTTP, through DeepEval's G-Eval) scores both answers;
    a pair where the teacher is the one that is wrong is dropped, the rest carry both scores."""
    from distillbuild.endpoints.open import open_judge

    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    write_rows(
        project.root / "data/key.jsonl",
        [
            {"text": "ticket 1", "label": "bug"},
            {"text": "ticket 2", "label": "refund"},
            {"text": "ticket 3", "label": "login"},
        ],
    )
    spec = base_spec()
    spec["filters"]["judge"] = {
        "provider": "simulated",
        "model": "sim-judge",
        "min_score": 0.5,
        "evaluation_steps": ["Check that the Actual Output is the ticket's category."],
        "simulated": {"answers": "data/key.jsonl", "accuracy": 1.0, "seed": 5, "latency_ms": 0},
    }
    loaded = load_spec(project(spec))
    rows = [{**_row(i, label), "text": f"ticket {i}"} for i, label in ((1, "bug"), (2, "billing"), (3, "login"))]
    pairs, _ = make_pairs(rows, ["billing", "refund", None], ["billing", "refund", "no idea"])
    rule = PairJudge(min_margin=0.1)
    with open_judge(loaded.filters.judge, loaded.dir, loaded.repo_root, "filters.judge", print) as (settings, cache):
        kept, report = judge_pairs(pairs, rows, loaded.filters.judge, rule, settings, cache)
    assert [p["id"] for p in kept] == ["r1", "r3"]  # r2: the teacher said billing, the key says refund
    assert all(p["chosen_score"] - p["rejected_score"] >= 0.1 for p in kept)
    assert report["pairs_judged"] == 3 and report["unconfirmed"] == 1 and report["simulated"] is True
    assert report["calls"]["billed"] > 0


def test_judged_pairs_need_the_filters_judge_and_the_pairs_stage_reads_it(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "distill.yaml").write_text(yaml.safe_dump(_spec(judge={"min_margin": 0.2}), sort_keys=False))
    try:
        load_spec(root / "distill.yaml")
    except SpecError as err:
        assert "student.preference.judge" in {i.path for i in err.issues}
    else:
        raise AssertionError("a judge with no filters.judge was accepted")
    spec = _spec(judge={"min_margin": 0.2})
    spec["filters"]["judge"] = {
        "provider": "simulated",
        "model": "sim-judge",
        "evaluation_steps": ["Check it."],
        "simulated": {"answers": spec["teacher"]["simulated"]["answers"]},
    }
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    pairs_stage = yaml.safe_load(render(load_spec(root / "distill.yaml")))["stages"]["pairs"]
    assert {"student.preference.judge", "filters.judge"} <= set(pairs_stage["params"][0]["distill.yaml"])
    assert spec["teacher"]["simulated"]["answers"] in pairs_stage["deps"]


def test_a_dpo_student_is_exported_from_its_dpo_adapter_over_the_merged_sft_model(tmp_path):
    root = make_project(tmp_path / "p")
    spec = _spec()
    spec["export"] = {"format": "gguf"}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    export = yaml.safe_load(render(load_spec(root / "distill.yaml")))["stages"]["export"]
    assert {layout.PREFERENCE_MODEL, layout.PREFERENCE_BASE} <= set(export["deps"]) and layout.MODEL_DIR not in export[
        "deps"
    ]
