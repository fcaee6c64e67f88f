"""`distill serve` as production traffic meets it, through the real `openai` SDK and raw HTTP:
plain, streamed and logprob answers; keys (none, wrong, right); limits (413, 400s naming the
key); a flood past the queue answered 429 with Retry-After, then normal service; and SIGTERM
with requests in flight, every one of them answered before the process exits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import LABELS, base_spec
from openai import APIStatusError, AuthenticationError, BadRequestError, OpenAI

from distillbuild.spec import load_spec

KEY = "sk-distill-" + "k" * 24


def _project(project, student, **serve):
    shutil.copytree(student, project.root / "build/model")
    spec = base_spec()
    spec["serve"] = serve
    return project(spec)


@pytest.fixture
def server(project, student):
    from distillbuild.serve.app import serve

    path = _project(project, student, max_body_bytes=64 * 1024, max_messages=4, max_text_chars=2000)
    with serve(load_spec(path), api_keys=(KEY, "sk-second-key-" + "z" * 16)) as running:
        yield running


def test_plain_streamed_and_logprob_answers_through_the_sdk(server):
    client = OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    messages = [{"role": "system", "content": "triage"}, {"role": "user", "content": "I was charged twice"}]
    plain = client.chat.completions.create(model="any", messages=messages, logprobs=True, top_logprobs=4)
    label = plain.choices[0].message.content
    assert label in LABELS and plain.model == "mini-student" and plain.choices[0].finish_reason == "stop"
    top = plain.choices[0].logprobs.content[0].top_logprobs
    assert sorted(t.token for t in top) == sorted(LABELS) and top[0].token == label

    chunks = list(client.chat.completions.create(model="any", messages=messages, stream=True, logprobs=True))
    assert len(chunks) >= 3  # the role, the content, the finish
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == label
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert any(c.choices[0].logprobs and c.choices[0].logprobs.content[0].token == label for c in chunks)

    with client.chat.completions.stream(model="any", messages=messages) as stream:  # the SDK's helper reads it too
        assert stream.get_final_completion().choices[0].message.content == label

    models = client.models.list()
    assert [m.id for m in models.data] == ["mini-student"]


def test_keys_are_required_and_checked(server):
    messages = [{"role": "user", "content": "my invoice"}]
    with pytest.raises(AuthenticationError) as wrong:
        OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0).chat.completions.create(
            model="any", messages=messages
        )
    assert wrong.value.status_code == 401 and wrong.value.body["code"] == "invalid_api_key"
    root = server.base_url.removesuffix("/v1")
    bare = httpx.post(f"{server.base_url}/chat/completions", json={"model": "any", "messages": messages})
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in bare.json()["error"]["message"]
    second = OpenAI(base_url=server.base_url, api_key="sk-second-key-" + "z" * 16, max_retries=0)
    assert second.chat.completions.create(model="any", messages=messages).choices[0].message.content in LABELS
    # Probes and the scraper need no key; they tell nothing about the traffic's content.
    assert httpx.get(root + "/health").json()["ready"] is True and httpx.get(root + "/ready").status_code == 200
    assert httpx.get(root + "/metrics").text.count('distill_rejected_total{reason="unauthorized"} 2.0') == 1


def test_limits_answer_413_and_400s_that_name_the_key(server):
    client = OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(APIStatusError) as big:
        client.chat.completions.create(model="any", messages=[{"role": "user", "content": "x" * 200_000}])
    assert big.value.status_code == 413 and "serve.max_body_bytes" in big.value.message

    def bad(**request) -> BadRequestError:
        with pytest.raises(BadRequestError) as err:
            client.chat.completions.create(**{"model": "any", **request})
        return err.value

    assert bad(messages=[{"role": "user", "content": 5}]).body["param"] == "messages[0].content"
    assert bad(messages=[{"role": "robot", "content": "hi"}]).body["param"] == "messages[0].role"
    assert bad(messages=[]).body["param"] == "messages"
    assert bad(messages=[{"role": "user", "content": "x" * 3000}]).body["param"] == "messages[0].content"
    assert "serve.max_text_chars" in bad(messages=[{"role": "user", "content": "x" * 3000}]).message
    too_many = bad(messages=[{"role": "user", "content": "hi"}] * 5)
    assert too_many.body["param"] == "messages" and "serve.max_messages" in too_many.message
    assert bad(messages=[{"role": "user", "content": "hi"}], temperature="hot").body["param"] == "temperature"
    assert bad(messages=[{"role": "user", "content": "hi"}], n=2).body["param"] == "n"
    assert (
        bad(messages=[{"role": "user", "content": "hi"}], extra_body={"tempreature": 0}).body["param"] == "tempreature"
    )
    assert bad(messages=[{"role": "assistant", "content": "hello"}]).body["param"] == "messages"  # no user turn

    for body in (b'{"model": "any", "messages": [', b"[1, 2]", b"\xff\xfe"):
        raw = httpx.post(
            f"{server.base_url}/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    # Still serving.
    answer = client.chat.completions.create(model="any", messages=[{"role": "user", "content": "my invoice"}])
    assert answer.choices[0].message.content in LABELS


def test_a_flood_past_the_queue_gets_429_with_retry_after_then_normal_service(project, student):
    from distillbuild.serve.app import serve

    # A queue of 4 and a model that waits up to 300 ms for company: 48 requests at once overflow it.
    path = _project(project, student, max_queue=4, max_batch=64, max_wait_ms=300)
    with serve(load_spec(path)) as running:
        url = f"{running.base_url}/chat/completions"

        def send(i: int) -> httpx.Response:
            return httpx.post(url, json={"model": "any", "messages": [{"role": "user", "content": f"ticket {i}"}]})

        with ThreadPoolExecutor(48) as pool:
            responses = list(pool.map(send, range(48)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 429}, statuses  # no reset connection, no other error
        assert 4 <= statuses.count(200) < 48
        refused = [r for r in responses if r.status_code == 429]
        assert all(r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "queue_full" for r in refused)
        # The SDK retries a 429 after Retry-After on its own, and the queue has drained: normal service.
        client = OpenAI(base_url=running.base_url, api_key="unused", max_retries=2)
        answers = [
            client.chat.completions.create(model="any", messages=[{"role": "user", "content": f"again {i}"}])
            for i in range(5)
        ]
        assert all(a.choices[0].message.content in LABELS for a in answers)


def test_sigterm_answers_every_request_in_flight_then_exits(project, student, tmp_path):
    """`distill serve` as a process, stopped as a container runtime stops it: 300 requests sent at
    once, every one routed to a teacher that takes 2 s, SIGTERM while at least 100 of them wait,
    and every one of them answered before the process exits."""
    from distillbuild.endpoints.standin.server import SimulatedTeacherServer
    from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key

    slow = SimulatedTeacherServer(
        SimulatedTeacher(load_answer_key(project.root / "data/key.jsonl"), LABELS, accuracy=1.0, seed=1),
        latency_ms=2000,
    ).__enter__()
    shutil.copytree(student, project.root / "build/model")
    spec = base_spec()
    spec["teacher"] = {"provider": "openai", "model": "gpt-4o-mini", "base_url": slow.base_url,
                       "api_key_env": "SLOW_TEACHER_KEY", "max_retries": 0, "timeout_s": 60}  # fmt: skip
    spec["route"] = {"min_accuracy": 0.9}
    (project.root / "build/route").mkdir(parents=True)
    (project.root / "build/route/report.json").write_text(json.dumps({"threshold": 1.01}))  # all routed
    path = project(spec)
    port = _free_port()
    env = {**os.environ, "DISTILL_SERVE_API_KEYS": KEY, "SLOW_TEACHER_KEY": "sk-slow"}
    process = _serve_process(path, port, env, "--host", "127.0.0.1")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, process)
        client = OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=60)

        def ask(i: int):
            try:
                answer = client.chat.completions.create(model="any", messages=[{"role": "user", "content": f"t{i}"}])
                return answer.choices[0].message.content
            except Exception as exc:  # noqa: BLE001 - recorded, and the assertion below names it
                return exc

        with ThreadPoolExecutor(300) as pool:
            futures = [pool.submit(ask, i) for i in range(300)]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # all 300 in (answered or waiting), at least 100 waiting
                answered, waiting = _served(base)
                if answered + waiting == 300 and waiting >= 100:
                    break
                time.sleep(0.005)
            assert answered + waiting == 300 and waiting >= 100, (answered, waiting)
            process.send_signal(signal.SIGTERM)
            results = [f.result() for f in futures]
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
        slow.__exit__(None, None, None)
    assert all(r in LABELS for r in results), [r for r in results if r not in LABELS][:3]
    assert process.returncode == 0 and "every request in flight was answered" in output, output


def test_an_open_address_without_a_key_is_refused(project, student):
    path = _project(project, student)
    env = {k: v for k, v in os.environ.items() if k != "DISTILL_SERVE_API_KEYS"}
    done = subprocess.run(
        [sys.executable, "-m", "distillbuild", "serve", str(path), "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "refusing to serve on 0.0.0.0 without an API key" in done.stderr


def _serve_process(spec: Path, port: int, env: dict, *options: str) -> subprocess.Popen:
    """`distill serve SPEC --port PORT OPTIONS` as its own process, run from the spec's directory."""
    command = [sys.executable, "-m", "distillbuild", "serve", str(spec), "--port", str(port), *options]
    return subprocess.Popen(command, cwd=spec.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server was not ready in 120 s")


def _served(base: str) -> tuple[float, float]:
    """(requests answered, requests admitted and waiting), from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    answered = waiting = 0.0
    for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=5).text):
        if family.name == "distill_requests":
            answered = sum(s.value for s in family.samples if s.name == "distill_requests_total")
        elif family.name == "distill_queue_depth":
            waiting = family.samples[0].value
    return answered, waiting


def test_capture_is_masked_and_read_by_import_logs_and_drift_as_it_is(project, student, tmp_path):
    from distillbuild.curate.log_import import import_logs
    from distillbuild.privacy.scrubber import Scrubber
    from distillbuild.serve.app import serve
    from distillbuild.spec.inputs import read_rows

    path = _project(project, student, capture="logs/capture.jsonl")
    email, card = "jane.doe@example.com", "4111 1111 1111 1111"
    texts = [f"refund to {email} please", f"card {card} charged twice", "login broken"]
    with serve(load_spec(path)) as running:
        client = OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)
        for text in texts:
            client.chat.completions.create(model="any", messages=[{"role": "user", "content": text}])
    captured = (project.root / "logs/capture.jsonl").read_text()
    assert email not in captured and "4111" not in captured and "[EMAIL]" in captured and "[CARD]" in captured
    records = [json.loads(line) for line in captured.splitlines()]
    assert len(records) == 3 and all(r["label"] in LABELS and r["routed"] is False for r in records)
    rows, report = import_logs([project.root / "logs/capture.jsonl"], Scrubber())
    assert [r["text"] for r in rows] == [r["text"] for r in records]
    assert [r["text"] for r in read_rows(project.root / "logs/capture.jsonl", None, need_label=False)] == [
        r["text"] for r in records
    ]


def test_shadow_and_canary_record_both_students_and_the_report_reads_them(project, student, tmp_path):
    from distillbuild.serve.app import serve
    from distillbuild.serve.shadow import shadow_summary, shadow_text

    path = _project(project, student)
    candidate = base_spec()
    candidate["promote"] = {"name": "next"}
    candidate_path = project(candidate, name="candidate.yaml")  # the same model: it must agree everywhere
    texts = [f"ticket {i} about my {LABELS[i % 4]}" for i in range(60)]
    log = tmp_path / "shadow.jsonl"
    with serve(load_spec(path), shadow=candidate_path, shadow_log=log, canary=0.5) as running:
        client = OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)
        answers = [
            client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}]) for t in texts
        ]
    by_candidate = [a.model == "next-candidate" for a in answers]
    assert 15 <= sum(by_candidate) <= 45 and {a.model for a in answers} == {"mini-student", "next-candidate"}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 60 and all("text" not in r for r in records)  # ids only: no text in the log
    assert sum(r["served_by"] == "candidate" for r in records) == sum(by_candidate)
    summary = shadow_summary(log)
    assert summary["candidate_vs_current"]["share"] == 1.0 and summary["candidate_vs_current"]["of"] == 60
    assert summary["candidate_vs_current"]["ci_low"] > 0.9
    assert "candidate agrees with the current student: 100.0% (60 of 60" in shadow_text(summary)
    # The same text always goes the same way.
    with serve(load_spec(path), shadow=candidate_path, shadow_log=tmp_path / "again.jsonl", canary=0.5) as running:
        client = OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)
        again = [client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}]) for t in texts]
    assert [a.model for a in again] == [a.model for a in answers]


def test_a_causal_student_behind_an_engine_is_asked_concurrently(project, monkeypatch):
    """student.endpoint (vLLM's place): requests reach the engine side by side, not one by one,
    with the route still in front; timed against one request on the same server."""
    from distillbuild.endpoints.standin.server import SimulatedTeacherServer
    from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
    from distillbuild.serve.app import serve

    root = project.root
    texts = [json.loads(line)["text"] for line in (root / "data/inputs.jsonl").open()]
    engine = SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), LABELS, accuracy=1.0, seed=1)
    with SimulatedTeacherServer(engine, latency_ms=300) as student_srv:
        spec = base_spec()
        spec["student"] = {
            "kind": "causal-lm",
            "base_model": "meta-llama/Llama-3.1-8B-Instruct",
            "trainer": "axolotl",
            "max_length": 256,
            "endpoint": {"base_url": student_srv.base_url, "model": "ticket-lora"},
        }
        spec["serve"] = {"threads": 8}
        with serve(load_spec(project(spec))) as running:
            client = OpenAI(base_url=running.base_url, api_key="unused", max_retries=0)

            def ask(text: str) -> str:
                return (
                    client.chat.completions.create(model="any", messages=[{"role": "user", "content": text}])
                    .choices[0]
                    .message.content
                )

            started = time.perf_counter()
            ask(texts[0])
            one = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(ask, texts[:16] + texts[:4]))
            sixteen = time.perf_counter() - started
    assert all(a in LABELS for a in answers)
    assert sixteen < 8 * one, (one, sixteen)  # one at a time would take 20x one request


def test_workers_share_the_port_and_their_metrics_add_up(project, student, tmp_path):
    path = _project(project, student)
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    process = _serve_process(path, port, env, "--workers", "2")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, process)
        client = OpenAI(base_url=base + "/v1", api_key="unused", max_retries=3)  # a worker still loading: 503, retried
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: client.chat.completions.create(
                        model="any", messages=[{"role": "user", "content": f"ticket {i}"}]
                    ),
                    range(40),
                )
            )
        assert all(a.choices[0].message.content in LABELS for a in answers)
        totals = {_served(base)[0] for _ in range(6)}  # whichever worker answers the scrape
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert totals == {40.0}
    pids = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2  # two processes counted into the one directory
