"""The `distill` CLI through Click's CliRunner, and the compiler's contract with DVC."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, base_spec

from distillbuild.cli import main
from distillbuild.pipeline.compile import render
from distillbuild.pipeline.stage_list import by_name, names
from distillbuild.spec import load_spec
from distillbuild.spec.loader import has_path

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_ok(project):
    result = run("validate", str(project()))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_validate_broken_exits_2_with_file_line_key_and_no_traceback(project):
    spec = base_spec()
    spec["teacher"]["concurrency"] = -4
    path = project(spec)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}:" in result.output and ": teacher.concurrency: must be >= 1" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file_exits_2(tmp_path):
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_compile_is_byte_identical_and_check_detects_staleness(project):
    path = project()
    assert run("compile", str(path)).exit_code == 0
    dvc_yaml = path.parent / "dvc.yaml"
    first = dvc_yaml.read_bytes()
    assert run("compile", str(path)).exit_code == 0
    assert dvc_yaml.read_bytes() == first
    assert run("compile", "--check", str(path)).exit_code == 0

    spec = base_spec()
    spec["evaluation"] = {"latency_samples": 10}  # a new section: evaluate's params change
    project(spec)
    stale = run("compile", "--check", str(path))
    assert stale.exit_code == 1 and "stale" in stale.output
    assert dvc_yaml.read_bytes() == first  # --check writes nothing


def test_committed_dvc_yaml_is_current():
    result = run("compile", "--check", str(ROOT / "distill.yaml"))
    assert result.exit_code == 0, result.output


def test_every_stage_runs_distill_stage_and_lists_exactly_its_keys(project):
    spec = load_spec(project())
    pipeline = yaml.safe_load(render(spec))
    assert list(pipeline["stages"]) == [
        n for n in names() if n not in ("seed", "pairs", "preference", "route", "export")
    ]  # when asked for
    for name, stage in pipeline["stages"].items():
        assert stage["cmd"] == f"distill stage {name}"
        listed = stage.get("params", [{}])[0].get("distill.yaml", [])
        declared = [k for k in by_name(name).keys_read(spec) if has_path(spec.raw, k)]
        assert listed == [k for k in declared if not any(k.startswith(other + ".") for other in declared)]
    # Only `gate` reads `gates`: raising a threshold re-runs nothing else.
    readers = [
        n for n, st in pipeline["stages"].items() if "gates" in st.get("params", [{}])[0].get("distill.yaml", [])
    ]
    assert readers == ["gate"]
    # Sections the spec omits are not listed (DVC refuses a missing params key).
    assert "evaluation" not in pipeline["stages"]["evaluate"]["params"][0]["distill.yaml"]


def test_no_spec_value_reaches_a_command_line(project):
    spec = base_spec()
    spec["task"]["instruction"] = "Classify; rm -rf / $(touch pwned) `id`"
    spec["teacher"]["model"] = "model'; echo injected"
    pipeline = yaml.safe_load(render(load_spec(project(spec))))
    for stage in pipeline["stages"].values():
        assert "rm -rf" not in stage["cmd"] and "injected" not in stage["cmd"]
        assert stage["cmd"].split()[:2] == ["distill", "stage"]


def test_metrics_and_plots_are_declared(project):
    pipeline = yaml.safe_load(render(load_spec(project())))
    evaluate = pipeline["stages"]["evaluate"]
    assert evaluate["metrics"] == [{"build/evaluate/metrics.json": {"cache": False}}]
    templates = {next(iter(p)): next(iter(p.values())) for p in pipeline["plots"]}
    assert templates["build/evaluate/predictions.json"]["template"] == "confusion"


def test_help_lists_the_commands():
    result = run("--help")
    for command in ("validate", "compile", "stage", "summary", "serve-teacher"):
        assert command in result.output


def test_a_stage_refuses_to_run_from_a_stale_dvc_yaml(project):
    path = project()
    assert run("compile", str(path)).exit_code == 0
    spec = base_spec()
    spec["evaluation"] = {"threads": 2}
    project(spec)
    result = CliRunner().invoke(main, ["stage", "gate", "--spec", str(path)])
    assert result.exit_code == 3
    assert "stale" in result.output and "distill compile" in result.output


def test_summary_before_any_build(project):
    result = run("summary", str(project()))
    assert result.exit_code == 0
    assert "not run yet" in result.output
