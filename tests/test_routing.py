"""Fallback routing on planted rows: the curve, the threshold for each kind of target, and
cross-fitting that never scores a row with a threshold fitted on it."""

from __future__ import annotations

import random

import pytest

from distillbuild.evaluate.routing import NEVER, Row, Target, choose, cross_fit, curve
from distillbuild.measurements import read_report

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def planted(n: int = 400, seed: int = 3) -> list[Row]:
    """A student right on 90% of its confident rows (confidence >= 0.8) and 50% of the rest; a
    teacher right on 95% of every row."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        confidence = rng.uniform(0.5, 1.0)
        student_p = 0.9 if confidence >= 0.8 else 0.5
        rows.append(Row(f"r{i}", confidence, rng.random() < student_p, rng.random() < 0.95))
    return rows


def test_the_curve_runs_from_all_student_to_all_teacher():
    rows = planted()
    points = curve(rows)
    assert points[0]["coverage"] == 1.0 and points[-1]["coverage"] == 0.0 and points[-1]["threshold"] is None
    assert points[0]["accuracy"] == pytest.approx(sum(r.student_right for r in rows) / len(rows), abs=1e-6)
    assert points[-1]["accuracy"] == pytest.approx(sum(r.teacher_right for r in rows) / len(rows), abs=1e-6)
    assert [p["coverage"] for p in points] == sorted((p["coverage"] for p in points), reverse=True)


def test_a_min_accuracy_target_takes_the_most_coverage_that_reaches_it():
    rows = planted()
    t = choose(rows, Target(min_accuracy=0.9))
    reached = [p for p in curve(rows) if p["accuracy"] >= 0.9]
    assert t != NEVER and min(p["threshold"] for p in reached if p["threshold"] is not None) == round(t, 6)
    assert 0.7 < t < 0.9  # near where the planted student turns reliable
    best = max(curve(rows), key=lambda p: p["accuracy"])
    unreachable = choose(rows, Target(min_accuracy=0.999))  # not even the teacher reaches it: the best there is
    assert [p["accuracy"] for p in curve(rows) if p["threshold"] == round(unreachable, 6)] == [best["accuracy"]]


def test_a_teacher_share_cap_is_never_exceeded():
    rows = planted()
    for cap in (0.0, 0.1, 0.3):
        t = choose(rows, Target(max_teacher_share=cap))
        share = sum(r.confidence < t for r in rows) / len(rows)
        assert share <= cap + 1e-9
    assert choose(rows, Target(max_teacher_share=0.0)) == min(r.confidence for r in rows)


def test_cross_fitting_scores_each_half_with_the_other_halfs_threshold():
    rows = planted()
    right, to_teacher, fitted = cross_fit(rows, Target(min_accuracy=0.9))
    assert len(right) == len(rows) and len(fitted) == 2 and all(0.5 < t < 1 for t in fitted)
    routed = sum(right) / len(rows)
    assert sum(r.student_right for r in rows) / len(rows) < routed  # better than the student alone
    assert 0.1 < sum(to_teacher) / len(rows) < 0.9  # and it did route
    # Each row is routed by the threshold fitted on the other half: rewriting its own half's
    # outcomes moves the other half's routing, never its own.
    from distillbuild.stats import half as _half  # the cross-fit halves, shared with the filter

    first = rows[0]
    rewritten = [
        Row(r.id, r.confidence, not r.student_right, r.teacher_right) if _half(r.id) == _half(first.id) else r
        for r in rows
    ]
    again = cross_fit(rewritten, Target(min_accuracy=0.9))[1]
    assert [t for r, t in zip(rows, again) if _half(r.id) == _half(first.id)] == [
        t for r, t in zip(rows, to_teacher) if _half(r.id) == _half(first.id)
    ]


def test_the_route_stage_reports_the_cross_fitted_system_and_its_cost(project, monkeypatch):
    import json

    import yaml
    from conftest import base_spec

    from distillbuild.pipeline.compile import render
    from distillbuild.pipeline.runner import run_stage
    from distillbuild.spec import load_spec

    rows = planted()
    root = project.root
    (root / "build/evaluate").mkdir(parents=True)
    predictions = [
        {
            "id": r.id,
            "actual": "billing",
            "predicted": "billing" if r.student_right else "refund",
            "teacher": "billing" if r.teacher_right else "login",
            "student_confidence": r.confidence,
        }
        for r in rows
    ]
    (root / "build/evaluate/predictions.json").write_text(json.dumps(predictions))
    (root / "build/evaluate/metrics.json").write_text(
        json.dumps({"student_cost_per_1k_usd": 0.001, "teacher_cost_per_1k_usd": 0.5})
    )
    spec = base_spec()
    spec["route"] = {"max_teacher_share": 0.3}
    monkeypatch.chdir(root)
    loaded = load_spec(project(spec))
    stages = list(yaml.safe_load(render(loaded))["stages"])
    assert stages.index("evaluate") < stages.index("route") < stages.index("gate")
    assert run_stage("route", loaded) == 0
    report = read_report(root / "build/route/report.json")
    right, to_teacher, _ = cross_fit(rows, Target(max_teacher_share=0.3))
    assert report["routed_accuracy"] == round(sum(right) / len(rows), 6)
    assert report["teacher_share"] == round(sum(to_teacher) / len(rows), 6)
    assert report["routed_accuracy_ci_low"] <= report["routed_accuracy"] <= report["routed_accuracy_ci_high"]
    assert report["student_accuracy"] < report["routed_accuracy"]
    assert report["routed_cost_per_1k_usd"] == pytest.approx(0.001 + report["teacher_share"] * 0.5, abs=1e-6)
    assert report["target_met"] is True and report["threshold"] is not None
    assert json.loads((root / "build/route/curve.json").read_text()) == curve(rows)


def test_no_route_section_no_stage_and_routing_is_for_classification(project):
    import yaml
    from conftest import base_spec

    from distillbuild.errors import SpecError
    from distillbuild.pipeline.compile import render
    from distillbuild.spec import load_spec

    assert "route" not in yaml.safe_load(render(load_spec(project())))["stages"]
    spec = base_spec()
    spec["route"] = {}
    with pytest.raises(SpecError, match="route"):
        load_spec(project(spec))
    spec["route"] = {"min_accuracy": 0.9, "max_teacher_share": 0.2}
    with pytest.raises(SpecError, match="route"):
        load_spec(project(spec))


def test_gates_may_bound_the_routed_system_when_the_spec_routes(project, monkeypatch):
    import json

    import yaml
    from conftest import base_spec

    from distillbuild.errors import SpecError
    from distillbuild.pipeline.compile import render
    from distillbuild.pipeline.stages.gate import _with_route, check
    from distillbuild.spec import load_spec

    spec = base_spec()
    spec["gates"] = {"routed_accuracy": {"min": 0.9, "bound": "ci_low"}, "teacher_share": {"max": 0.3}}
    with pytest.raises(SpecError, match="routed_accuracy"):  # no route section: never computed
        load_spec(project(spec))
    spec["route"] = {"min_accuracy": 0.9}
    loaded = load_spec(project(spec))
    gate = yaml.safe_load(render(loaded))["stages"]["gate"]
    assert "build/route/report.json" in gate["deps"]  # the gate runs after route, on what it measured
    (project.root / "build/route").mkdir(parents=True)
    (project.root / "build/route/report.json").write_text(
        json.dumps({"routed_accuracy": 0.93, "routed_accuracy_ci_low": 0.91, "teacher_share": 0.35, "threshold": 0.8})
    )
    monkeypatch.chdir(project.root)
    metrics = _with_route(loaded, {"accuracy": 0.8}, json.loads((project.root / "build/route/report.json").read_text()))
    assert metrics == {"accuracy": 0.8, "routed_accuracy": 0.93, "routed_accuracy_ci_low": 0.91, "teacher_share": 0.35}
    rows = [check(name, bound, metrics) for name, bound in loaded.gates.items()]
    assert [(r["gate"], r["pass"]) for r in rows] == [("routed_accuracy (ci low)", True), ("teacher_share", False)]
