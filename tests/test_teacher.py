"""The teacher engine against the simulated server, through the real openai SDK over HTTP."""

from __future__ import annotations

import math

import pytest

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher
from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache, request_key
from distillbuild.llm.engine import answer_all
from distillbuild.llm.settings import TeacherSettings
from distillbuild.protocol.prompts import messages_for
from distillbuild.protocol.softlabels import answer_confidence, label_distribution
from distillbuild.spec.model import Task, build

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

LABELS = ["billing", "refund", "login", "bug", "shipping"]
TASK = build(Task, {"type": "classification", "instruction": "Classify.", "labels": LABELS})


def make_teacher(n: int = 400, accuracy: float = 0.8, seed: int = 5) -> tuple[SimulatedTeacher, list[str], list[str]]:
    texts = [f"ticket {i}: something about {LABELS[i % 5]}" for i in range(n)]
    gold = [LABELS[i % 5] for i in range(n)]
    key = {t: KeyEntry(g, (LABELS[(i + 1) % 5],)) for i, (t, g) in enumerate(zip(texts, gold))}
    return SimulatedTeacher(key, LABELS, accuracy, seed), texts, gold


def settings(server: SimulatedTeacherServer, **kw) -> TeacherSettings:
    base = dict(
        endpoint_id="simulated:test",
        base_url=server.base_url,
        model="sim",
        temperature=0,
        max_tokens=8,
        top_logprobs=5,
        seed=None,
        concurrency=8,
        timeout_s=10,
        max_retries=2,
        price_in_per_mtok=2.5,
        price_out_per_mtok=10.0,
        api_key="sk-test-" + "Z" * 32,
    )
    base.update(kw)
    return TeacherSettings(**base)


def test_simulated_teacher_accuracy_confusions_and_calibration():
    teacher, texts, gold = make_teacher(n=2000, accuracy=0.85)
    answers = [teacher.answer(t) for t in texts]
    right = [a.label == g for a, g in zip(answers, gold)]
    assert 0.82 < sum(right) / len(right) < 0.88
    wrong = [(a, g) for a, g in zip(answers, gold) if a.label != g]
    # Most mistakes are the key's plausible confusion (the next label here), not uniform noise.
    plausible = sum(a.label == LABELS[(LABELS.index(g) + 1) % 5] for a, g in wrong)
    assert plausible / len(wrong) > 0.6
    mean_right = sum(a.prob for a, r in zip(answers, right) if r) / sum(right)
    mean_wrong = sum(a.prob for a, r in zip(answers, right) if not r) / len(wrong)
    assert mean_right > mean_wrong + 0.2
    for a in answers[:50]:
        assert math.isclose(sum(p for _, p in a.top), 1.0, rel_tol=1e-9)
    assert teacher.answer(texts[3]) == teacher.answer(texts[3])  # deterministic


def test_sdk_roundtrip_cache_and_no_double_billing(tmp_path):
    teacher, texts, gold = make_teacher(n=120)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    requests = [messages_for(TASK, t) for t in texts] + [messages_for(TASK, texts[0])]  # one repeated
    with SimulatedTeacherServer(teacher) as server:
        results, stats = answer_all(requests, settings(server), cache, log=lambda m: None)
        assert server.requests_served == 120  # the repeated request was sent once
        assert stats.billed_calls == 120 and stats.cache_hits == 0
        first = results[0].response
        choice = first["choices"][0]
        assert choice["message"]["content"] in LABELS
        assert len(choice["logprobs"]["content"][0]["top_logprobs"]) == 5
        assert first["usage"]["prompt_tokens"] > 0
        assert stats.cost_usd > 0
        again, stats2 = answer_all(requests, settings(server), cache, log=lambda m: None)
        assert server.requests_served == 120  # a rerun pays nothing
        assert stats2.cache_hits == 121 and stats2.billed_calls == 0
        assert [r.response for r in again] == [r.response for r in results]
        # A changed generation parameter is a different request.
        _, stats3 = answer_all(requests[:3], settings(server, temperature=0.5), cache, log=lambda m: None)
        assert stats3.billed_calls == 3 and server.requests_served == 123


def test_api_key_never_lands_in_the_cache(tmp_path):
    teacher, texts, _ = make_teacher(n=10)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    s = None
    with SimulatedTeacherServer(teacher) as server:
        s = settings(server)
        answer_all([messages_for(TASK, t) for t in texts], s, cache, log=lambda m: None)
    cache.close()
    for path in tmp_path.iterdir():
        assert s.api_key.encode() not in path.read_bytes()
    assert s.api_key not in repr(s)


def test_cache_key_covers_everything_that_changes_the_answer():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    k = request_key("e", body)
    assert k == request_key("e", dict(reversed(list(body.items()))))  # order-insensitive
    assert k != request_key("other", body)
    assert k != request_key("e", {**body, "temperature": 0.1})
    assert k != request_key("e", {**body, "model": "m2"})
    assert k != request_key("e", {**body, "messages": [{"role": "user", "content": "y"}]})


def test_auth_failure_stops_with_a_clear_error_and_no_key_in_it(tmp_path):
    teacher, texts, _ = make_teacher(n=4)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    with SimulatedTeacherServer(teacher, api_key="sk-right-" + "R" * 30) as server:
        wrong = settings(server, api_key="sk-wrong-" + "W" * 30)
        with pytest.raises(StageError) as info:
            answer_all([messages_for(TASK, t) for t in texts], wrong, cache, log=lambda m: None)
    message = str(info.value)
    assert "AuthenticationError" in message
    assert wrong.api_key not in message and "WWWWWWWW" not in message


def test_budget_stops_before_passing_it(tmp_path):
    teacher, texts, _ = make_teacher(n=200)
    cache = TeacherCache(tmp_path / "cache.sqlite")
    with SimulatedTeacherServer(teacher) as server:
        s = settings(server, budget_usd=0.005, concurrency=4)
        results, stats = answer_all([messages_for(TASK, t) for t in texts], s, cache, log=lambda m: None)
    assert stats.budget_stopped
    per_call = stats.cost_usd / stats.billed_calls
    assert stats.cost_usd <= 0.005 + 4 * per_call  # within the requests in flight
    assert 0 < stats.billed_calls < 200
    assert sum(r is None for r in results) == 200 - stats.billed_calls


def test_soft_labels_first_token_mapping():
    lp = {
        "content": [
            {
                "token": "bill",
                "logprob": math.log(0.6),
                "top_logprobs": [
                    {"token": "bill", "logprob": math.log(0.6)},
                    {"token": " Refund", "logprob": math.log(0.3)},
                    {"token": "xyz", "logprob": math.log(0.05)},
                ],
            }
        ]
    }
    probs, ambiguous = label_distribution(lp, LABELS)
    assert probs == pytest.approx({"billing": 0.6 / 0.9, "refund": 0.3 / 0.9})
    assert not ambiguous
    lp_amb = {
        "content": [
            {
                "token": "b",
                "logprob": 0.0,
                "top_logprobs": [
                    {"token": "b", "logprob": math.log(0.5)},
                    {"token": "login", "logprob": math.log(0.5)},
                ],
            }
        ]
    }
    probs, ambiguous = label_distribution(lp_amb, LABELS)  # "b" begins billing and bug
    assert ambiguous and probs == {"login": 1.0}
    assert answer_confidence(lp) == pytest.approx(0.6)
    assert label_distribution(None, LABELS) == (None, False)
