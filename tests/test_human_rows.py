"""People's labels beside the teacher's (data.human): never asked of the teacher nor dropped for
its confidence, but deduplicated (the person's label wins) and decontaminated like any row; the
filter counts where the teacher disagreed with the person; the dataset oversamples them to
data.human_share of the training split, copies never crossing into validation."""

from __future__ import annotations

import json

from conftest import LABELS, base_spec, write_rows

from distillbuild.curate.filters import FilterConfig, curate, human_rows
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec


def _cfg(**extra) -> FilterConfig:
    spec = base_spec()
    spec["filters"] = {
        "min_confidence": 0.9,
        "dedup": {"exact": True},
        "decontaminate": True,
        "min_rows_per_label": 0,
        **extra,
    }
    return spec


def test_human_rows_bypass_the_teacher_checks_but_not_dedup_or_decontamination(project):
    loaded = load_spec(project(_cfg()))
    cfg = FilterConfig.from_spec(loaded.task, loaded.filters)
    teacher = [
        {"id": "t1", "text": "my card was charged twice", "answer": "refund", "confidence": 0.95},
        {"id": "t2", "text": "I cannot log in", "answer": "login", "confidence": 0.97},
        {"id": "t3", "text": "the export button crashes", "answer": "bug", "confidence": 0.5},
    ]
    people = human_rows(
        [
            {"id": "h1", "text": "My card was charged twice", "label": "billing"},  # same input as t1
            {"id": "h2", "text": "I cannot log in", "label": "login"},  # agrees with t2
            {"id": "h3", "text": "please send a paper invoice", "label": "invoice"},  # not a label
            {"id": "h4", "text": "held out ticket about a refund", "label": "refund"},
        ]
    )
    kept, rejected, report = curate(teacher, cfg, ["held out ticket about a refund"], people)
    by_id = {r["id"]: r for r in kept}
    assert by_id["human:h1"]["label"] == "billing" and by_id["human:h1"]["source"] == "human"
    assert "human:h2" in by_id and "t1" not in by_id and "t2" not in by_id  # the person's row wins the duplicate
    reasons = {r["id"]: r["reason"] for r in rejected}
    assert reasons == {
        "t1": "duplicate",
        "t2": "duplicate",
        "t3": "low_confidence",
        "human:h3": "invalid_label",
        "human:h4": "contaminated",
    }
    assert report["human"] == {
        "rows": 4,
        "kept": 2,
        "answered_by_teacher_too": 2,
        "teacher_disagrees": 1,
        "teacher_disagreement_rate": 0.5,
    }


def test_the_dataset_oversamples_human_rows_to_their_share_of_training(project, monkeypatch, tmp_path):
    root = project.root
    write_rows(
        root / "data/human.jsonl",
        [
            {"id": f"p{i}", "text": f"customer {i} writes about {LABELS[i % 4]} by hand", "label": LABELS[i % 4]}
            for i in range(6)
        ],
    )
    spec = _cfg(min_confidence=0.0)
    spec["data"].update(human="data/human.jsonl", human_share=0.5)
    path = project(spec)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    loaded = load_spec(path)
    for stage in ("teacher", "filter", "dataset"):
        assert run_stage(stage, loaded) == 0, stage
    asked = read_report(root / "build/teacher/report.json")["calls"]["requested"]
    assert asked == 12 + 1  # the inputs and the held-out row: the human rows are never asked
    train = [json.loads(line) for line in (root / "build/dataset/train.jsonl").open()]
    val = [json.loads(line) for line in (root / "build/dataset/val.jsonl").open()]
    human_train = [r for r in train if r.get("source") == "human"]
    assert abs(len(human_train) / len(train) - 0.5) <= 1 / len(train)
    assert all(r["label_probs"] is None for r in human_train)  # a person gives no soft labels
    assert {r["id"].split("#")[0] for r in val} & {r["id"].split("#")[0] for r in train} == set()
    assert not any("#" in r["id"] for r in val)
    report = read_report(root / "build/dataset/report.json")
    assert report["human"]["human_copies_added"] == len(human_train) - report["human"]["human_rows"] > 0


def test_train_on_picks_the_teacher_rows_the_human_rows_or_both(project, monkeypatch, tmp_path):
    import yaml

    from distillbuild.pipeline.compile import render

    root = project.root
    write_rows(
        root / "data/human.jsonl",
        [
            {"id": f"p{i}", "text": f"customer {i} writes about {LABELS[i % 4]} by hand", "label": LABELS[i % 4]}
            for i in range(6)
        ],
    )
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    sources = {}
    for train_on in ("both", "teacher", "human"):
        spec = _cfg(min_confidence=0.0)
        spec["data"].update(human="data/human.jsonl", train_on=train_on)
        loaded = load_spec(project(spec))
        assert "data.train_on" in yaml.safe_load(render(loaded))["stages"]["dataset"]["params"][0]["distill.yaml"]
        for stage in ("teacher", "filter", "dataset"):
            assert run_stage(stage, loaded) == 0, stage
        rows = [json.loads(line) for name in ("train", "val") for line in (root / f"build/dataset/{name}.jsonl").open()]
        sources[train_on] = {r.get("source", "teacher") for r in rows}
    assert sources == {"both": {"teacher", "human"}, "teacher": {"teacher"}, "human": {"human"}}
