"""`distill diff`: the review of a spec change against a git revision, in temporary git repositories.

Each test commits a small spec (simulated teacher) with its data and compiled dvc.yaml, changes
the working tree, and checks the semantic diff, the stages that rebuild and why, the teacher
calls the change costs, the metrics diff, and the Markdown a pull request would show.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, ROOT, base_spec, write_rows

from distillbuild.errors import StageError
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.stage_list import names
from distillbuild.review import diff_report, render_markdown
from distillbuild.review.diff import ABSENT, reads, semantic_diff
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

BIN = str(Path(sys.executable).parent)
SECRET = "sk-live-" + "Zr4" * 12


@pytest.fixture(autouse=True)
def _offline_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "teacher-cache"))  # empty: nothing cached
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def compile_spec(path: Path) -> None:
    (path.parent / "dvc.yaml").write_text(render(load_spec(path)), encoding="utf-8")


@pytest.fixture
def repo(project):
    """The conftest project, committed: distill.yaml, data, and the compiled dvc.yaml."""
    root = project.root
    for key, value in (("user.email", "test@example.com"), ("user.name", "test"), ("commit.gpgsign", "false")):
        git(root, "config", key, value)
    (root / ".gitignore").write_text(".distill/\n")
    path = project(base_spec())
    compile_spec(path)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    project.path = path
    return project


def edited(**changes) -> dict:
    """base_spec() with dotted keys set."""
    spec = base_spec()
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return spec


def by_stage(report: dict) -> dict[str, dict]:
    return {s["stage"]: s for s in report["stages"]}


def rebuilding(report: dict) -> list[str]:
    return [s["stage"] for s in report["stages"] if s["rebuilds"]]


# ---------------------------------------------------------------------------------------------
# the cases a reviewer meets


def test_filter_threshold_rebuilds_filter_and_downstream_not_teacher(repo):
    repo(edited(filters__min_confidence=0.7))
    report = diff_report(repo.path, "HEAD")

    assert report["changes"] == [{"key": "filters.min_confidence", "status": "changed", "old": 0.5, "new": 0.7}]
    assert rebuilding(report) == ["filter", "dataset", "train", "evaluate", "gate"]
    stages = by_stage(report)
    assert stages["filter"]["keys"] == ["filters.min_confidence"] and not stages["filter"]["conditional"]
    assert "`filters.min_confidence` changed" in stages["filter"]["reasons"]
    for name in ("dataset", "train", "evaluate"):
        assert stages[name]["conditional"] and stages[name]["after"] == ["filter"], name
        assert stages[name]["reasons"] == ["after `filter`"]
    # The gate records the spec as every stage sees it (its lineage), so it reruns on the key itself.
    assert stages["gate"]["keys"] == ["filters.min_confidence"] and not stages["gate"]["conditional"]
    assert not stages["teacher"]["rebuilds"] and not stages["configure"]["rebuilds"]
    assert report["teacher"]["rebuilds"] is False and report["teacher"]["new_calls"] == 0
    assert report["dvc_yaml"]["stale"] is False  # a threshold does not change dvc.yaml

    md = render_markdown(report)
    assert "### distill diff: `mini` against `HEAD`" in md
    assert "| `filters.min_confidence` | `0.5` | `0.7` |" in md
    assert "| `filter` | **yes** | `filters.min_confidence` changed |" in md
    assert "| `train` | yes † | after `filter` |" in md
    assert "| `teacher` | no |  |" in md and "| `configure` | no |  |" in md
    assert "0 new teacher calls" in md and "simulated stand-in" in md
    assert "stale" not in md


def test_gate_threshold_rebuilds_gate_alone(repo):
    repo(edited(gates={"accuracy": {"min": 0.9}}))
    report = diff_report(repo.path, "HEAD")
    assert [(c["key"], c["old"], c["new"]) for c in report["changes"]] == [("gates.accuracy.min", 0.5, 0.9)]
    assert rebuilding(report) == ["gate"]
    assert by_stage(report)["gate"]["reasons"] == ["`gates.accuracy.min` changed"]
    assert report["teacher"]["new_calls"] == 0
    assert "1 of 7 stages rebuild" in render_markdown(report)


def test_teacher_temperature_rebuilds_teacher_and_estimates_every_call(repo):
    spec = base_spec()
    spec["teacher"]["temperature"] = 0.7
    repo(spec)
    report = diff_report(repo.path, "HEAD")
    assert report["changes"] == [{"key": "teacher.temperature", "status": "added", "old": None, "new": 0.7}]
    stages = by_stage(report)
    assert stages["teacher"]["rebuilds"] and stages["teacher"]["keys"] == ["teacher.temperature"]
    assert not stages["configure"]["rebuilds"]
    assert stages["filter"]["after"] == ["teacher"] and stages["filter"]["conditional"]
    assert rebuilding(report) == ["teacher", "filter", "dataset", "train", "evaluate", "gate"]

    teacher = report["teacher"]
    assert teacher["simulated"] and teacher["rebuilds"]
    est = teacher["estimate"]
    assert est["requests"] == 13 and est["cached"] == 0 and est["to_call"] == 13  # 12 inputs + 1 held out
    assert teacher["new_calls"] == 13 and est["prompt_tokens"] > 0
    assert est["cost_usd_expected"] is not None and 0 < est["cost_usd_expected"] <= est["cost_usd_max"]

    md = render_markdown(report)
    assert "| `teacher.temperature` | *(absent)* | `0.7` |" in md
    assert "**13 new teacher calls** of 13 requests" in md
    assert f"at most ${est['cost_usd_max']:,.4f}" in md
    assert "nothing is billed" in md


def test_edited_data_file_rebuilds_teacher_naming_the_file_and_costs_only_the_new_row(repo):
    root = repo.root
    # Warm the teacher cache at the base: the real teacher stage against the simulated server.
    done = subprocess.run(["distill", "stage", "teacher"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert diff_report(repo.path, "HEAD")["teacher"]["new_calls"] == 0  # nothing changed yet

    with (root / "data/inputs.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "new1", "text": "a brand new ticket about refunds"}) + "\n")
    report = diff_report(repo.path, "HEAD")

    assert report["changes"] == []
    stages = by_stage(report)
    assert stages["teacher"]["rebuilds"] and stages["teacher"]["files"] == ["data/inputs.jsonl"]
    assert stages["teacher"]["reasons"] == ["`data/inputs.jsonl` modified (`data.inputs`)"]
    assert not stages["filter"]["files"]  # filter depends on the held-out file only
    assert not stages["configure"]["rebuilds"]
    statuses = {f["path"]: f["status"] for f in report["data_files"]}
    assert statuses == {
        "data/inputs.jsonl": "modified",
        "data/heldout.jsonl": "unchanged",
        "data/key.jsonl": "unchanged",
    }
    assert report["teacher"]["new_calls"] == 1  # net of the cache: one new prompt, one call
    assert report["teacher"]["estimate"]["cached"] == 13

    md = render_markdown(report)
    assert "| `teacher` | **yes** | `data/inputs.jsonl` modified (`data.inputs`) |" in md
    assert "**1 new teacher call** of 14 requests (13 already in the teacher cache" in md


def test_held_out_file_edit_rebuilds_every_stage_that_reads_it(repo):
    write_rows(repo.root / "data/heldout.jsonl", [{"id": "h1", "text": "held out", "label": "login"}])
    stages = by_stage(diff_report(repo.path, "HEAD"))
    for name in ("teacher", "filter", "evaluate"):
        assert stages[name]["files"] == ["data/heldout.jsonl"] and not stages[name]["conditional"], name
    assert stages["dataset"]["conditional"] and not stages["configure"]["rebuilds"]


def test_comments_and_key_order_are_not_changes(repo):
    spec = base_spec()
    reordered = {k: spec[k] for k in reversed(list(spec))}
    reordered["teacher"] = {k: spec["teacher"][k] for k in reversed(list(spec["teacher"]))}
    text = "# a comment at the top\n" + yaml.safe_dump(reordered, sort_keys=False, default_flow_style=True, width=60)
    text = text.replace("\n", "  # trailing comment\n", 1)
    repo(text)
    assert repo.path.read_text() != git(repo.root, "show", "HEAD:distill.yaml")  # the text did change
    report = diff_report(repo.path, "HEAD")
    assert report["changes"] == [] and rebuilding(report) == []
    assert report["teacher"]["new_calls"] == 0
    md = render_markdown(report)
    assert "None: the two sides hold the same data" in md and "0 of 7 stages rebuild" in md


def test_unknown_revision_and_no_repository_are_stage_errors(repo, tmp_path_factory, monkeypatch):
    with pytest.raises(StageError, match="unknown revision 'no-such-branch'"):
        diff_report(repo.path, "no-such-branch")
    with pytest.raises(StageError, match="not a git revision"):
        diff_report(repo.path, "--output=/tmp/x")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "distill.yaml").write_text(yaml.safe_dump(base_spec()))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(outside.parent))
    with pytest.raises(StageError, match="not in a git repository"):
        diff_report(outside / "distill.yaml", "HEAD")


def test_spec_absent_at_base_is_a_new_pipeline(repo):
    root = repo.root
    (root / "pipelines/two/data").mkdir(parents=True)
    for name in ("inputs.jsonl", "heldout.jsonl", "key.jsonl"):
        (root / "pipelines/two/data" / name).write_bytes((root / "data" / name).read_bytes())
    path = root / "pipelines/two/distill.yaml"
    path.write_text(yaml.safe_dump(base_spec(), sort_keys=False))
    report = diff_report(path, "HEAD")
    assert report["spec"] == "pipelines/two/distill.yaml" and report["new_pipeline"]
    assert rebuilding(report) == [
        n for n in names() if n not in ("seed", "pairs", "preference", "route", "export")
    ]  # every stage the spec has
    assert {c["status"] for c in report["changes"]} == {"added"}
    assert report["dvc_yaml"]["missing"] and report["dvc_yaml"]["stale"]
    assert report["teacher"]["new_calls"] == 13
    md = render_markdown(report)
    assert "does not exist at `HEAD`: a new pipeline" in md and "is missing" in md


def test_spec_in_a_subdirectory_is_read_at_the_base_by_its_repository_path(repo):
    root = repo.root
    sub = root / "pipelines/sub"
    (sub / "data").mkdir(parents=True)
    for name in ("inputs.jsonl", "heldout.jsonl", "key.jsonl"):
        (sub / "data" / name).write_bytes((root / "data" / name).read_bytes())
    path = sub / "distill.yaml"
    path.write_text(yaml.safe_dump(base_spec(), sort_keys=False))
    compile_spec(path)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "second pipeline")
    path.write_text(yaml.safe_dump(edited(split={"val_fraction": 0.3, "seed": 3}), sort_keys=False))
    report = diff_report(path, "HEAD")
    assert report["spec"] == "pipelines/sub/distill.yaml" and not report["new_pipeline"]
    assert [c["key"] for c in report["changes"]] == ["split.val_fraction"]
    assert rebuilding(report) == ["dataset", "train", "evaluate", "gate"]
    assert report["data_files"][0]["path"] == "pipelines/sub/data/inputs.jsonl"


def test_stale_dvc_yaml_is_reported(repo):
    spec = base_spec()
    spec["evaluation"] = {"latency_samples": 10}  # evaluate's params list grows: dvc.yaml changes
    repo(spec)
    report = diff_report(repo.path, "HEAD")
    assert report["dvc_yaml"]["stale"] and not report["dvc_yaml"]["missing"]
    assert rebuilding(report) == ["evaluate", "gate"]
    assert by_stage(report)["evaluate"]["reasons"] == ["`evaluation` added"]
    assert "`dvc.yaml` is stale: run `distill compile distill.yaml`" in render_markdown(report)
    compile_spec(repo.path)
    assert not diff_report(repo.path, "HEAD")["dvc_yaml"]["stale"]


def test_student_change_rebuilds_configure_and_what_follows_it(repo):
    spec = base_spec()
    spec["student"]["epochs"] = 3
    repo(spec)
    report = diff_report(repo.path, "HEAD")
    assert rebuilding(report) == ["configure", "train", "evaluate", "gate"]
    stages = by_stage(report)
    assert stages["configure"]["keys"] == ["student.epochs"]
    assert stages["train"]["after"] == ["configure"] and stages["gate"]["after"] == ["configure"]
    assert report["notes"] == [] and report["teacher"]["new_calls"] == 0


def test_a_key_no_stage_reads_is_noted_and_rebuilds_nothing(repo):
    root = repo.root
    old = base_spec()
    old["version"] = 2  # the base is parsed, not validated
    (root / "distill.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    git(root, "commit", "-q", "-am", "version 2")
    repo(base_spec())
    report = diff_report(repo.path, "HEAD")
    assert [(c["key"], c["old"], c["new"]) for c in report["changes"]] == [("version", 2, 1)]
    assert rebuilding(report) == []
    assert report["notes"] == ["`version` is read by no stage: nothing rebuilds for it."]
    assert "> `version` is read by no stage" in render_markdown(report)


def test_base_spec_secret_is_never_printed(repo):
    root = repo.root
    old = base_spec()
    old["teacher"]["api_key"] = SECRET  # an old spec, from before inline keys were refused
    old["teacher"]["base_url"] = "https://user:hunter2pass@llm.example.com/v1"
    (root / "distill.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    git(root, "commit", "-q", "-am", "an old spec with an inline key")
    repo(base_spec())
    report = diff_report(repo.path, "HEAD")
    removed = {c["key"]: c for c in report["changes"]}
    assert removed["teacher.api_key"]["status"] == "removed" and removed["teacher.api_key"]["old"] == "***"
    assert removed["teacher.base_url"]["old"] == "https://***@llm.example.com/v1"
    text = render_markdown(report) + json.dumps(report)
    assert SECRET not in text and "hunter2pass" not in text


def test_dvc_tracked_data_compares_the_md5_in_its_dvc_file(repo):
    root = repo.root
    data = root / "data/inputs.jsonl"
    md5 = hashlib.md5(data.read_bytes()).hexdigest()
    git(root, "rm", "-q", "--cached", "data/inputs.jsonl")
    (root / "data/.gitignore").write_text("/inputs.jsonl\n")
    (root / "data/inputs.jsonl.dvc").write_text(f"outs:\n- md5: {md5}\n  size: 1\n  hash: md5\n  path: inputs.jsonl\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "inputs tracked by dvc")
    assert not by_stage(diff_report(repo.path, "HEAD"))["teacher"]["rebuilds"]
    with data.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "z", "text": "one more"}) + "\n")
    report = diff_report(repo.path, "HEAD")
    assert by_stage(report)["teacher"]["files"] == ["data/inputs.jsonl"]
    assert report["data_files"][0]["how"] == "md5 in inputs.jsonl.dvc"


def test_metrics_diff_when_both_sides_are_built(repo):
    root = repo.root
    for cmd in (["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    done = subprocess.run(["distill", "compile"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "build/evaluate/metrics.json" in (root / "dvc.yaml").read_text()  # declared as a metric
    metrics = root / "build/evaluate/metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(
        json.dumps(
            {
                "accuracy": 0.8,
                "retention": 0.9,
                "latency_p95_ms": 20.0,
                "per_class_f1": {"bug": 0.5},
                "teacher_model": "sim",
            }
        )
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "built")

    before = diff_report(repo.path, "HEAD")["metrics"]
    assert before["available"] and before["rows"] == [] and "accuracy" in before["unchanged"]

    metrics.write_text(
        json.dumps(
            {
                "accuracy": 0.85,
                "retention": 0.9,
                "latency_p95_ms": 18.5,
                "per_class_f1": {"bug": 0.75},
                "teacher_model": "sim2",
            }
        )
    )
    report = diff_report(repo.path, "HEAD")
    m = report["metrics"]
    assert m["available"]
    rows = {r["metric"]: r for r in m["rows"]}
    assert set(rows) == {"accuracy", "latency_p95_ms", "per_class_f1.bug"}  # text metrics left out
    assert rows["accuracy"]["old"] == 0.8 and rows["accuracy"]["new"] == 0.85
    assert rows["accuracy"]["change"] == pytest.approx(0.05)
    assert m["unchanged"] == ["retention"]
    md = render_markdown(report)
    assert "| metric | old | new | change |" in md
    assert "| `accuracy` | 0.8 | 0.85 | +0.05 |" in md
    assert "| `latency_p95_ms` | 20 | 18.5 | -1.5 |" in md
    assert "Unchanged: `retention`." in md


def test_metrics_not_built_on_both_sides_says_so(repo):
    report = diff_report(repo.path, "HEAD")
    assert not report["metrics"]["available"] and report["metrics"]["reason"]
    assert "Metrics are not built on both sides" in render_markdown(report)


# ---------------------------------------------------------------------------------------------
# the pieces


def test_semantic_diff_compares_data_not_text():
    old = {"a": 1, "b": {"c": [1, 2, 3], "d": True}, "gone": None, "labels": ["x", "y"]}
    new = {"labels": ["x", "z"], "b": {"d": 1, "c": [1, 2]}, "a": 1.0, "e": {"f": 1}}
    assert semantic_diff(old, new) == [
        ("labels[1]", "y", "z"),  # same length: element-wise
        ("b.d", True, 1),  # a bool is not a number
        ("b.c", [1, 2, 3], [1, 2]),  # other length: the whole list
        ("e", ABSENT, {"f": 1}),  # added
        ("gone", None, ABSENT),  # removed (an explicit null is not absence)
    ]
    assert semantic_diff({"a": [{"x": 1}]}, {"a": [{"x": 2}]}) == [("a[0].x", 1, 2)]


def test_a_key_is_read_when_equal_under_or_above_a_listed_key():
    assert reads("filters.min_confidence", "filters")
    assert reads("task", "task.labels") and reads("task.labels[3]", "task.labels")
    assert reads("data.heldout", "data.heldout")
    assert not reads("task.labelsx", "task.labels") and not reads("data.inputs", "data.heldout")
    assert not reads("names", "name")


def test_markdown_cells_are_compact_and_escaped(repo):
    spec = base_spec()
    spec["task"]["labels"] = LABELS + [f"label_{i}" for i in range(20)]
    spec["task"]["instruction"] = "Pick one | answer with `the label` only. " + "More words. " * 20
    repo(spec)
    md = render_markdown(diff_report(repo.path, "HEAD"))
    labels_row = next(line for line in md.splitlines() if line.startswith("| `task.labels` |"))
    assert "(24 items)" in labels_row and "…" in labels_row and "label_19" not in labels_row
    instruction_row = next(line for line in md.splitlines() if line.startswith("| `task.instruction` |"))
    assert "\\|" in instruction_row and "``" in instruction_row and "characters)" in instruction_row
    assert all(len(line) < 400 for line in md.splitlines())


# ---------------------------------------------------------------------------------------------
# the GitHub Actions workflow


def test_workflow_runs_distill_diff_on_spec_changes_and_comments():
    wf = yaml.safe_load((ROOT / ".github/workflows/distill-diff.yml").read_text())
    trigger = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "**/distill.yaml" in trigger["pull_request"]["paths"]
    assert wf["permissions"]["pull-requests"] == "write"
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert str(python["with"]["python-version"]) == "3.11"
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "make install" in scripts
    assert ".venv/bin/distill diff" in scripts and "git diff --name-only" in scripts
    assert "gh pr comment" in scripts and "-X PATCH" in scripts  # one comment, updated on each push
    assert scripts.count("<!-- distill-diff -->") >= 2  # written with the report, searched for when updating
    assert "${{ github.base_ref }}" not in scripts  # passed through the environment, never pasted into a script


def test_explanations_and_seed_generation_are_counted_with_the_teacher_calls(repo):
    """Explain mode's explanations are teacher calls too; a seed stage's first round is the
    generator's. A reviewer sees what `distill estimate` would print."""
    repo(edited(teacher__reasoning={"mode": "explain", "max_tokens": 64}))
    report = diff_report(repo.path, "HEAD")
    teacher = report["teacher"]
    assert teacher["estimate"]["to_call"] == 13  # 12 inputs and the held-out row, none cached
    assert teacher["explanations"]["to_call"] == 12  # one per training input: held-out rows are not explained
    assert teacher["new_calls"] == 25 and teacher["seed"] is None
    md = render_markdown(report)
    assert (
        "· 25 new teacher calls ·" in md
        and "**13 new teacher calls** of 13" in md
        and "Then its explanations" in md
        and "**12 new calls** of 12" in md
    )

    repo(edited(seed={"per_label": 6, "per_request": 4, "examples": 2, "max_rounds": 6}))
    report = diff_report(repo.path, "HEAD")
    assert by_stage(report)["seed"]["rebuilds"]
    seeding = report["teacher"]["seed"]
    assert (seeding["requests"], seeding["to_call"]) == (8, 8)  # 6 inputs a label, 4 asked for a request
    assert report["teacher"]["explanations"] is None
    md = render_markdown(report)
    assert "8 seed generator calls" in md and "`seed` rebuilds: **8 generator calls** of 8 requests" in md
    assert "it will also answer the ones it keeps" in md  # as `distill estimate` says it
