"""Batch mode against the simulated server's Files and Batches endpoints, and its resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher
from distillbuild.llm import batch as batch_module
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.engine import answer_all
from distillbuild.llm.settings import TeacherSettings
from distillbuild.protocol.prompts import messages_for
from distillbuild.spec.model import Task, build

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

LABELS = ["billing", "refund", "login", "bug"]
TASK = build(Task, {"type": "classification", "instruction": "Classify.", "labels": LABELS})


def _setup(n: int):
    texts = [f"batch ticket {i} on {LABELS[i % 4]}" for i in range(n)]
    teacher = SimulatedTeacher({t: KeyEntry(LABELS[i % 4]) for i, t in enumerate(texts)}, LABELS, 1.0, 4)
    return teacher, [messages_for(TASK, t) for t in texts]


def _settings(server, **kw) -> TeacherSettings:
    base = dict(
        endpoint_id="simulated:batch",
        base_url=server.base_url,
        model="sim",
        temperature=0,
        max_tokens=8,
        top_logprobs=3,
        seed=None,
        concurrency=4,
        timeout_s=10,
        max_retries=2,
        api_key="k",
        batch=True,
    )
    base.update(kw)
    return TeacherSettings(**base)


def test_batch_mode_answers_through_files_and_batches_and_fills_the_cache(tmp_path: Path):
    teacher, requests = _setup(150)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    with SimulatedTeacherServer(teacher) as server:
        results, stats = answer_all(requests, _settings(server), cache, log=lambda m: None)
        assert server.requests_served == 150  # each batch line billed once
        assert stats.billed_calls == 150 and stats.answered == 150
        assert all(r.response["choices"][0]["message"]["content"] in LABELS for r in results)
        # Output lines arrive in any order; each was matched back to its request by custom_id.
        assert [r.response["choices"][0]["message"]["content"] for r in results] == [LABELS[i % 4] for i in range(150)]
        assert len(server.batches.list_batches()["data"]) == 1
        # The same cache serves online runs: nothing more is paid.
        again, stats2 = answer_all(requests, _settings(server, batch=False), cache, log=lambda m: None)
        assert stats2.cache_hits == 150 and server.requests_served == 150
    assert not list((tmp_path / "batches").glob("*.json"))  # no batch left in flight


def test_a_restarted_run_resumes_the_batch_in_flight(tmp_path: Path, monkeypatch):
    teacher, requests = _setup(80)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    real_wait = batch_module._wait_and_collect

    def killed(*args, **kwargs):  # the process dies after submitting, while the provider works
        raise KeyboardInterrupt

    with SimulatedTeacherServer(teacher, batch_rows_per_s=400) as server:
        monkeypatch.setattr(batch_module, "_wait_and_collect", killed)
        with pytest.raises(KeyboardInterrupt):
            answer_all(requests, _settings(server), cache, log=lambda m: None)
        state_files = list((tmp_path / "batches").glob("*.json"))
        assert len(state_files) == 1  # the batch id survived the crash
        monkeypatch.setattr(batch_module, "_wait_and_collect", real_wait)
        messages: list[str] = []
        results, stats = answer_all(requests, _settings(server), cache, log=messages.append)
        submitted = len(server.batches.list_batches()["data"])
        assert any("resuming 1 batch" in m for m in messages)
        assert all(r.response is not None for r in results)
        assert server.requests_served == 80  # the resumed batch was not submitted, nor paid, twice
    assert submitted == 1
    assert not list((tmp_path / "batches").glob("*.json"))
