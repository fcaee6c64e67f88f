"""No row lost quietly: `dvc repro` against an OpenAI-compatible server that throws 429s, 5xx,
unreadable and cut-off 200s and dropped connections answers every prompt, pays for each good
answer once, and reports what the server counted; rows still unanswered fail the stage, and the
next plain `dvc repro` asks for them alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import LABELS, RepoShell, base_spec, write_rows
from fault_server import PAID, FaultServer

from distillbuild.measurements import read_report

pytestmark = pytest.mark.build  # `dvc repro` in a git repository

FAULTS = {"rate_limit": 0.10, "server_error": 0.05, "malformed": 0.02, "truncated": 0.02, "dropped": 0.01}
# The report's retry kinds, for each fault the server injects.
REPORTED_AS = {
    "rate_limit": "rate_limited",
    "server_error": "server_error",
    "malformed": "malformed",
    "truncated": "truncated",
    "dropped": "connection",
}


def _project(root: Path, base_url: str, inputs: int, heldout: int, max_retries: int) -> RepoShell:
    write_rows(root / "data/inputs.jsonl", [{"id": f"r{i}", "text": f"lost-row ticket {i}"} for i in range(inputs)])
    write_rows(
        root / "data/heldout.jsonl",
        [{"id": f"h{i}", "text": f"held-out ticket {i}", "label": LABELS[i % 4]} for i in range(heldout)],
    )
    spec = base_spec()
    spec["teacher"] = {
        "provider": "openai",
        "model": "fault-model",
        "base_url": base_url,
        "api_key_env": "FAULT_KEY",
        "concurrency": 16,
        "timeout_s": 5,
        "max_retries": max_retries,
        "top_logprobs": 0,
        "price": {"input_per_mtok": 2.5, "output_per_mtok": 10},
    }
    spec["filters"] = {"min_confidence": 0}
    spec["student"]["kd"] = {"alpha": 0}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / ".gitignore").write_text(".distill/\n")
    sh = RepoShell(root, FAULT_KEY="k", DISTILL_CACHE_DIR=str(root.parent / "cache"))
    sh.init_repo()
    sh("distill", "compile")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "project")
    return sh


def _rows(root: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / f"build/teacher/{name}.jsonl").read_text().splitlines()]


def test_two_thousand_prompts_through_faults_each_answered_and_paid_once(tmp_path: Path):
    root = tmp_path / "project"
    with FaultServer(LABELS, FAULTS, seed=7) as server:
        sh = _project(root, server.base_url, inputs=1950, heldout=50, max_retries=8)
        sh("dvc", "repro", "teacher")  # one plain run
    rows = _rows(root, "answers") + _rows(root, "heldout_answers")
    assert len(rows) == 2000 and [r for r in rows if r.get("error")] == []
    # Every prompt got exactly one good (paid) answer; a fault was paid only when it was a 200.
    assert len(server.by_prompt) == 2000
    assert all(counts["ok"] == 1 for counts in server.by_prompt.values())
    report = read_report(root / "build/teacher/report.json")
    calls = report["calls"]
    assert (
        calls["billed"]
        == sum(server.served[k] for k in PAID)
        == 2000 + server.served["malformed"] + server.served["truncated"]
    )
    assert calls["answered"] == 2000 and report["errors"] == {}
    assert calls["retries"] == {REPORTED_AS[k]: n for k, n in server.served.items() if k != "ok"}
    assert all(server.served[k] > 0 for k in FAULTS)  # each kind of fault happened
    assert report["tokens"] == {
        "prompt": server.usage["prompt_tokens"],
        "completion": server.usage["completion_tokens"],
    }


def test_rows_left_unanswered_fail_the_stage_and_the_rerun_asks_for_them_alone(tmp_path: Path):
    root = tmp_path / "project"
    with FaultServer(LABELS, {"server_error": 0.2}, seed=3) as server:
        sh = _project(root, server.base_url, inputs=300, heldout=20, max_retries=0)
        failed = sh("dvc", "repro", "teacher", check=False)
        lost = {p for p, counts in server.by_prompt.items() if counts["ok"] == 0}
        assert failed.returncode != 0 and lost
        assert f"{len(lost)} of 320 teacher calls unanswered (server_error {len(lost)}" in failed.stderr
        assert not (root / "build/teacher/answers.jsonl").exists()  # nothing partial for DVC to record
        lock = root / "dvc.lock"
        assert not lock.exists() or "teacher" not in (yaml.safe_load(lock.read_text()) or {}).get("stages", {})

        server.faults = {}
        before = {p: sum(c.values()) for p, c in server.by_prompt.items()}
        sh("dvc", "repro", "teacher")
        asked_again = {p for p, c in server.by_prompt.items() if sum(c.values()) > before.get(p, 0)}
    assert asked_again == lost  # the answers kept in the cache were not asked for again
    assert [r for r in _rows(root, "answers") + _rows(root, "heldout_answers") if r.get("error")] == []
    report = read_report(root / "build/teacher/report.json")
    assert report["calls"]["from_cache"] == 320 - len(lost) and report["calls"]["billed"] == len(lost)
