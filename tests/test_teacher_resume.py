"""`kill -9` in the middle of a teacher run, then a rerun: it pays only for what was missing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LABELS, base_spec, write_rows

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher
from distillbuild.measurements import read_report

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

N = 400
CONCURRENCY = 8
KEY = "sk-resume-" + "K" * 30


def _cached(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the table is not there yet


@pytest.mark.slow  # over 4 s: left out of the unit tier
def test_kill_9_then_rerun_pays_only_for_the_missing(project, tmp_path):
    root = project.root
    rows = [{"id": f"r{i}", "text": f"resume ticket {i} about {LABELS[i % 4]}"} for i in range(N)]
    write_rows(root / "data/inputs.jsonl", rows)
    teacher = SimulatedTeacher({r["text"]: KeyEntry(LABELS[i % 4]) for i, r in enumerate(rows)}, LABELS, 1.0, 1)
    with SimulatedTeacherServer(teacher, latency_ms=40, api_key=KEY) as server:
        spec = base_spec()
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o",
            "base_url": server.base_url,
            "api_key_env": "RESUME_KEY",
            "concurrency": CONCURRENCY,
        }
        project(spec)
        env = dict(
            os.environ,
            RESUME_KEY=KEY,
            DISTILL_CACHE_DIR=str(tmp_path / "cache"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        )
        db = tmp_path / "cache/teacher.sqlite"
        proc = subprocess.Popen(
            ["distill", "stage", "teacher"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while _cached(db) < N // 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        paid_first = server.requests_served
        kept = _cached(db)
        assert N // 4 <= kept < N + 1  # killed mid-run, answers so far kept
        assert not (root / "build/teacher/answers.jsonl").exists()  # nothing half-written looks finished

        done = subprocess.run(["distill", "stage", "teacher"], cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert KEY not in done.stdout + done.stderr  # nor in the logs
        report = read_report(root / "build/teacher/report.json")
        total_paid = server.requests_served
    assert report["calls"]["from_cache"] == kept
    # Only the requests in flight at the kill are paid twice.
    assert total_paid - (N + 1) <= CONCURRENCY
    assert paid_first - kept <= CONCURRENCY
    answers = [json.loads(l) for l in (root / "build/teacher/answers.jsonl").open()]
    assert len(answers) == N and all(a["answer"] in LABELS for a in answers)
    for path in [*root.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file() and ".git" not in path.parts:
            assert KEY.encode() not in path.read_bytes(), path


def test_budget_stop_exits_3_keeps_answers_and_a_rerun_continues(project, tmp_path):
    root = project.root
    rows = [{"id": f"b{i}", "text": f"budget ticket {i} " + "words " * 40} for i in range(200)]
    write_rows(root / "data/inputs.jsonl", rows)
    teacher = SimulatedTeacher({r["text"]: KeyEntry(LABELS[i % 4]) for i, r in enumerate(rows)}, LABELS, 1.0, 1)
    env = dict(
        os.environ,
        RESUME_KEY=KEY,
        DISTILL_CACHE_DIR=str(tmp_path / "cache"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    with SimulatedTeacherServer(teacher, api_key=KEY) as server:
        spec = base_spec()
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o",
            "base_url": server.base_url,
            "api_key_env": "RESUME_KEY",
            "concurrency": 4,
            "price": {"input_per_mtok": 2.5, "output_per_mtok": 10},
            "budget_usd": 0.01,
        }
        project(spec)
        first = subprocess.run(["distill", "stage", "teacher"], cwd=root, env=env, capture_output=True, text=True)
        assert first.returncode == 3, first.stderr
        assert "budget reached" in first.stderr and "rerun" in first.stderr.lower()
        paid = server.requests_served
        assert 0 < paid < 201
        assert _cached(tmp_path / "cache/teacher.sqlite") == paid  # what was paid for is kept
        spec["teacher"]["budget_usd"] = 1.0
        project(spec)
        second = subprocess.run(["distill", "stage", "teacher"], cwd=root, env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        assert server.requests_served == 201  # the rerun paid only for the rest
    report = read_report(root / "build/teacher/report.json")
    assert report["calls"]["from_cache"] == paid
    # The first run stopped before passing its budget, within the cost of the requests in flight.
    per_call = report["cost_usd"] / report["calls"]["billed"]
    assert paid * per_call <= 0.01 + 4 * per_call
