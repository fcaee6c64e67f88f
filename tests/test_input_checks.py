"""The checks that need only the input run before the teacher: a row they drop is never asked
(counted at the teacher's own endpoint), `distill estimate` counts only the rows that will be
asked, and the filter still reports every reason, as it did when the checks ran after the
teacher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, write_rows

from distillbuild.curate.filters import FilterConfig, curate
from distillbuild.curate.input_checks import InputChecks, check_inputs
from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

SPAMASSASSIN = ROOT.parent / "shared/datasets/spamassassin"


@pytest.mark.unit
def test_each_check_gives_the_reason_the_filter_gives_after_the_teacher():
    base = "the invoice for march was charged twice to my company card please refund it"
    rows = [
        {"id": "a", "text": base},
        {"id": "b", "text": "  The INVOICE for March   was charged twice to my company card please refund it "},
        {"id": "c", "text": base.replace("please", "kindly")},  # a near-duplicate of a
        {"id": "d", "text": "my password reset link expired before I could open it yesterday evening"},
        {"id": "e", "text": "hi"},
        {"id": "f", "text": "x" * 500},
        {"id": "g", "text": "the export to csv drops every column after the twentieth one in large sheets"},
    ]
    heldout = ["My password reset link expired before I could open it yesterday evening"]
    checks = InputChecks(min_chars=5, max_chars=400, near_threshold=0.5)
    verdicts = check_inputs(rows, heldout, checks)
    reasons = {r["id"]: (v[0] if v else None) for r, v in zip(rows, verdicts)}
    assert reasons == {
        "a": None,
        "b": "duplicate",
        "c": "near_duplicate",
        "d": "contaminated",
        "e": "input_length",
        "f": "input_length",
        "g": None,
    }
    assert "< 5" in verdicts[4][1] and "> 400" in verdicts[5][1]

    # The filter, over the same rows answered (no length rule on answers), rejects the same rows
    # for the same set reasons.
    answered = [{**r, "answer": "billing", "confidence": 0.99, "error": None} for r in rows[:4] + rows[6:]]
    cfg = FilterConfig(labels=("billing",), near_threshold=0.5)
    _, rejected, _ = curate(answered, cfg, heldout)
    assert {r["id"]: r["reason"] for r in rejected} == {
        k: v for k, v in reasons.items() if v not in (None, "input_length")
    }


def _stand_in(monkeypatch, key_path: Path, labels: list[str]):
    """The teacher's own endpoint, in this process, recording every text it is asked about."""
    import distillbuild.endpoints.standin.server as standin

    asked, respond = [], standin.respond
    monkeypatch.setattr(
        standin,
        "respond",
        lambda teacher, request, *rest: (
            asked.append(request["messages"][-1]["content"]),
            respond(teacher, request, *rest),
        )[1],
    )
    server = SimulatedTeacherServer(SimulatedTeacher(load_answer_key(key_path), labels, accuracy=0.9, seed=3))
    return server, asked


def _point_at(spec: dict, base_url: str) -> None:
    spec["teacher"] = {
        **{k: v for k, v in spec["teacher"].items() if k not in ("provider", "simulated", "api_key_env")},
        "provider": "openai",
        "base_url": base_url,
        "api_key_env": "INPUT_CHECKS_TEACHER_KEY",
        "max_retries": 0,
        "concurrency": 16,
    }


def _build_teacher_and_filter(root: Path, spec: dict, monkeypatch, key_path: Path, tmp_path: Path):
    server, asked = _stand_in(monkeypatch, key_path, spec["task"]["labels"])
    monkeypatch.setenv("INPUT_CHECKS_TEACHER_KEY", "sk-any")
    with server:
        _point_at(spec, server.base_url)
        (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        _compiled(root)
        loaded = load_spec(root / "distill.yaml")
        monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.chdir(root)
        from distillbuild.pipeline.stages.teacher import estimate_for, load_inputs, load_requests

        inputs, verdicts = load_inputs(loaded)
        estimate = estimate_for(loaded)
        from distillbuild.pipeline.spend import spend_for  # what `distill diff` prices

        assert spend_for(loaded).answers == estimate
        _, _, messages = load_requests(loaded, (inputs, verdicts))
        for stage in ("teacher", "filter"):
            assert run_stage(stage, loaded) == 0, stage
        served = server.requests_served
    return loaded, inputs, verdicts, estimate, messages, asked, served


def _compiled(root: Path) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "distillbuild", "compile"], cwd=root, check=True, capture_output=True)


def test_the_quickstart_asks_no_input_the_checks_drop(tmp_path, monkeypatch):
    root = tmp_path / "quickstart"
    shutil.copytree(ROOT / "data/tickets", root / "data/tickets")
    spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
    loaded, inputs, verdicts, estimate, messages, asked, served = _build(root, spec, monkeypatch, tmp_path)
    dropped = [(row, v) for row, v in zip(inputs, verdicts) if v is not None]
    # After the teacher the filter dropped 19 for these reasons; before it, the checks see the rows the
    # teacher would have failed too (a near-duplicate of a low-confidence answer is one more call saved).
    assert len(inputs) == 900 and len(dropped) == 26
    unique = {json.dumps(m, sort_keys=True) for m in messages}
    assert served == len(unique) == estimate.unique == estimate.to_call  # every call made was estimated
    assert served == len(asked) and len(messages) == 900 - 26 + 240
    asked_texts = set(asked)
    heldout_texts = {json.loads(line)["text"] for line in (root / "data/tickets/heldout.jsonl").open()}
    for row, (reason, _) in dropped:  # never asked, unless it is word for word a row that was (an exact copy)
        assert row["text"] not in asked_texts or reason == "duplicate" or row["text"] in heldout_texts
    report = read_report(root / "build/teacher/report.json")
    assert report["input_checks"]["not_asked"] == 26 and report["input_checks"]["asked"] == 874
    rejected = [json.loads(line) for line in (root / "build/filter/rejected.jsonl").open()]
    filter_report = read_report(root / "build/filter/report.json")
    for reason, count in report["input_checks"]["by_reason"].items():
        assert filter_report["by_reason"][reason] == count == sum(r["reason"] == reason for r in rejected)
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").open()]
    assert [a["id"] for a in answers] == [r["id"] for r in inputs]  # one row per input, in input order
    assert sum(a.get("skipped") is not None for a in answers) == 26
    print(f"\nquickstart: {report['input_checks']}")


def _build(root: Path, spec: dict, monkeypatch, tmp_path: Path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    key = root / spec["teacher"]["simulated"]["answers"]
    return _build_teacher_and_filter(root, spec, monkeypatch, key, tmp_path)


@pytest.mark.skipif(not SPAMASSASSIN.is_dir(), reason="needs ../shared/datasets/spamassassin")
def test_the_spamassassin_training_split_asks_no_copy(tmp_path, monkeypatch):
    """The corpus repeats messages across its groups and between its splits."""
    root = tmp_path / "spam"
    train = [json.loads(line) for line in (SPAMASSASSIN / "train.jsonl").open()]
    test = [json.loads(line) for line in (SPAMASSASSIN / "test.jsonl").open()]
    label = {"spam": "spam", "ham": "legit"}
    write_rows(root / "data/inputs.jsonl", [{k: r[k] for k in ("id", "subject", "body")} for r in train])
    write_rows(
        root / "data/heldout.jsonl",
        [{**{k: r[k] for k in ("id", "subject", "body")}, "label": label[r["label"]]} for r in test],
    )
    write_rows(root / "data/key.jsonl", [])
    spec = yaml.safe_load((ROOT / "pipelines/spam-filter/distill.yaml").read_text())
    spec["task"].pop("examples", None)
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["filters"] = {"dedup": {"exact": True, "near_threshold": 0.9}, "decontaminate": True}
    spec["teacher"] = {"provider": "simulated", "model": "sim", "max_tokens": 4, "top_logprobs": 2,
                       "simulated": {"answers": "data/key.jsonl", "latency_ms": 0}}  # fmt: skip
    loaded, inputs, verdicts, estimate, messages, asked, served = _build(root, spec, monkeypatch, tmp_path)
    reasons = [v[0] for v in verdicts if v is not None]
    assert reasons.count("duplicate") >= 87 and reasons.count("contaminated") >= 65
    unique = {json.dumps(m, sort_keys=True) for m in messages}
    assert served == len(unique) == estimate.to_call
    assert len(messages) == len(train) - len(reasons) + len(test)
    report = read_report(root / "build/teacher/report.json")
    print(f"\nSpamAssassin train: {len(train)} e-mails, not asked {report['input_checks']}")
