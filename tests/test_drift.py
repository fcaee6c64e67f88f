"""`distill drift` on real customer queries (BANKING77, read from the shared datasets): new inputs
from intent families the training inputs never had are reported as drift (exit 1); new inputs
drawn from the same distribution are not (exit 0)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import base_spec, write_rows

from distillbuild.cli import main
from distillbuild.evaluate.drift import label_shift

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

BANKING77 = Path(__file__).resolve().parents[2] / "shared/datasets/banking77"
TRAINED_FAMILIES = ("card", "top", "pending", "declined")  # card_*, top_up_*, pending_*, declined_*
NEW_FAMILIES = ("transfer", "exchange", "cash", "verify", "balance")

pytestmark = pytest.mark.skipif(not (BANKING77 / "train.csv").is_file(), reason="needs ../shared/datasets/banking77")


def _rows(split: str) -> list[dict]:
    with (BANKING77 / f"{split}.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _project(project, inputs: list[str]) -> Path:
    write_rows(project.root / "data/inputs.jsonl", [{"id": f"i{i}", "text": t} for i, t in enumerate(inputs)])
    return project(base_spec())


def _drift(spec: Path, new: list[str], tmp_path: Path) -> tuple[int, dict]:
    path = tmp_path / "new.jsonl"
    write_rows(path, [{"id": f"n{i}", "text": t} for i, t in enumerate(new)])
    result = CliRunner().invoke(main, ["drift", str(path), "--spec", str(spec), "--json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.build  # trains or loads a model
def test_new_intent_families_are_drift_and_the_same_distribution_is_not(project, tmp_path):
    rng = random.Random(7)
    train, test = _rows("train"), _rows("test")
    family = lambda row: row["category"].split("_")[0]  # noqa: E731
    seen = [r["text"] for r in train if family(r) in TRAINED_FAMILIES]
    unseen = [r["text"] for r in test if family(r) in NEW_FAMILIES]
    spec = _project(project, rng.sample(seen, 600))
    code, shifted = _drift(spec, rng.sample(unseen, 300), tmp_path)
    print(f"\nnew families: {shifted['ood_share']:.1%} out of distribution")
    assert code == 1 and shifted["drift"] and shifted["ood_share"] > 0.3, shifted

    same = [r["text"] for r in train]
    rng.shuffle(same)
    spec = _project(project, same[:600])
    code, steady = _drift(spec, [r["text"] for r in rng.sample(test, 300)], tmp_path)
    print(f"random split: {steady['ood_share']:.1%} out of distribution")
    assert code == 0 and not steady["drift"] and steady["ood_share"] < 0.15, steady
    assert steady["label_shift"] is None  # no student built here: not measured, and said so


def test_label_shift_is_the_total_variation_of_the_two_mixes():
    assert label_shift(["a", "a", "b", "b"], ["a", "b", "a", "b"])[0] == 0.0
    assert label_shift(["a"] * 10, ["b"] * 10)[0] == 1.0
    shift, mixes = label_shift(["a", "a", "a", "b"], ["a", "b", "b", "b"])
    assert shift == 0.5 and mixes["training"] == {"a": 0.75, "b": 0.25}


def test_drift_thresholds_come_from_the_spec(project):
    from distillbuild.spec import load_spec

    spec = base_spec()
    spec["drift"] = {"max_ood_share": 0.3}
    loaded = load_spec(project(yaml.safe_dump(spec)))
    assert loaded.drift.max_ood_share == 0.3 and loaded.drift.max_label_shift == 0.15
