"""`distill serve`: the student behind the OpenAI protocol, used through the real `openai` SDK;
with a route, the unconfident requests go to a live teacher endpoint, each answer names its
model, and a teacher that goes down fails only the requests routed to it."""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest
from conftest import LABELS, base_spec
from openai import APIStatusError, OpenAI

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.spec import load_spec

KEY = "sk-serve-test-" + "x" * 20


def _spec(project, student, monkeypatch, teacher_url: str, threshold: float | None, **serve):
    root = project.root
    shutil.copytree(student, root / "build/model")
    spec = base_spec()
    if serve:
        spec["serve"] = serve
    spec["teacher"] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": teacher_url,
        "api_key_env": "SERVE_TEACHER_KEY",
        "max_retries": 0,
        "timeout_s": 5,
    }
    if threshold is not None:
        spec["route"] = {"min_accuracy": 0.9}
        (root / "build/route").mkdir(parents=True)
        (root / "build/route/report.json").write_text(json.dumps({"threshold": threshold}))
    monkeypatch.setenv("SERVE_TEACHER_KEY", KEY)
    return load_spec(project(spec))


def _routing_case(root, student) -> tuple[list[str], dict[str, float], float, SimulatedTeacher]:
    """The project's inputs, the student's confidence on each, a threshold that routes about half
    of them (halfway between two texts: rounding cannot move one across), and a right teacher."""
    from distillbuild.train.encoder import EncoderClassifier

    texts = [json.loads(line)["text"] for line in (root / "data/inputs.jsonl").open()]
    confidence = dict(zip(texts, EncoderClassifier.load(student).predict_proba(texts).max(axis=1)))
    ranked = sorted(confidence.values())
    threshold = float(ranked[len(texts) // 2 - 1] + ranked[len(texts) // 2]) / 2
    return (
        texts,
        confidence,
        threshold,
        SimulatedTeacher(load_answer_key(root / "data/key.jsonl"), LABELS, accuracy=1.0, seed=1),
    )


def _get(base_url: str, path: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + path, timeout=10) as response:
        return json.loads(response.read())


def _metrics(base_url: str) -> dict:
    """/metrics as Prometheus scrapes it: {sample name with its labels: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def _answers(metrics: dict, source: str) -> float:
    return metrics.get(f"distill_answers_total{{source={source}}}", 0)


def _requests(metrics: dict, status: str = "200") -> float:
    return sum(v for k, v in metrics.items() if k.startswith("distill_requests_total{") and f"status={status}" in k)


def test_200_requests_are_routed_by_confidence_and_each_answer_names_its_model(project, student, monkeypatch):
    from distillbuild.serve.app import serve

    texts, confidence, threshold, teacher = _routing_case(project.root, student)
    with SimulatedTeacherServer(teacher, api_key=KEY) as upstream:
        spec = _spec(project, student, monkeypatch, upstream.base_url, threshold, capture="logs/capture.jsonl")
        with serve(spec) as server:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            sent = [texts[i % len(texts)] for i in range(200)]
            answers = [
                client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}]) for t in sent
            ]
            metrics, health = _metrics(server.base_url), _get(server.base_url, "/health")
        served_by_teacher = upstream.requests_served
    routed = [confidence[t] < threshold for t in sent]
    assert 0 < sum(routed) < 200
    assert [a.model for a in answers] == ["gpt-4o-mini" if r else "mini-student" for r in routed]
    assert all(a.choices[0].message.content in LABELS for a in answers)
    assert served_by_teacher == sum(routed)  # the student answered the rest itself
    assert _requests(metrics) == 200 and _answers(metrics, "teacher") == sum(routed)
    assert _answers(metrics, "student") == 200 - sum(routed)
    assert metrics["distill_share_routed"] == pytest.approx(sum(routed) / 200, abs=1e-6)
    assert metrics["distill_request_duration_seconds_count{answered_by=teacher}"] == sum(routed)
    assert health["status"] == "ok" and health["threshold"] == pytest.approx(threshold)
    assert KEY not in json.dumps(health) and KEY not in json.dumps(metrics)
    captured = [json.loads(line) for line in (project.root / "logs/capture.jsonl").read_text().splitlines()]
    assert [r["routed"] for r in captured] == routed  # one record per request, in order (one client)
    assert [r["model"] for r in captured] == [a.model for a in answers]
    assert all(r["teacher_label"] == r["label"] for r in captured if r["routed"])
    assert all(r["teacher_label"] is None for r in captured if not r["routed"])
    assert len({r["id"] for r in captured}) == 200  # the same text asked twice is two records


def test_a_teacher_that_is_down_fails_the_routed_requests_clearly_and_the_student_answers_on(
    project, student, monkeypatch
):
    from distillbuild.serve.app import serve

    texts, confidence, threshold, teacher = _routing_case(project.root, student)
    upstream = SimulatedTeacherServer(teacher, api_key=KEY).__enter__()
    spec = _spec(project, student, monkeypatch, upstream.base_url, threshold)
    with serve(spec) as server:
        upstream.__exit__(None, None, None)  # the teacher goes away while the student serves
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        for text in texts:
            messages = [{"role": "user", "content": text}]
            if confidence[text] >= threshold:
                answer = client.chat.completions.create(model="any", messages=messages, logprobs=True)
                assert answer.model == "mini-student" and answer.choices[0].message.content in LABELS
                top = answer.choices[0].logprobs.content[0].top_logprobs
                assert sorted(t.token for t in top) == sorted(LABELS)  # the student's distribution over labels
            else:
                with pytest.raises(APIStatusError) as err:
                    client.chat.completions.create(model="any", messages=messages)
                assert err.value.status_code == 502 and "did not answer" in str(err.value)
        metrics = _metrics(server.base_url)
    assert metrics["distill_teacher_errors_total"] == sum(confidence[t] < threshold for t in texts) > 0


def test_without_a_route_the_student_answers_everything(project, student, monkeypatch):
    from distillbuild.serve.app import serve

    spec = _spec(project, student, monkeypatch, "http://127.0.0.1:9/v1", None)  # no teacher is ever asked
    with serve(spec) as server:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="any", messages=[{"role": "user", "content": "my invoice"}])
        assert answer.model == "mini-student" and answer.choices[0].message.content in LABELS
        assert _get(server.base_url, "/v1/models")["data"][0]["id"] == "mini-student"


def test_a_causal_student_is_served_with_its_label_and_confidence_read_off_its_logprobs(project, monkeypatch):
    """A causal-LM student (here behind student.endpoint, as vLLM would serve its adapter; the
    llm tier serves a real exported GGUF through llama.cpp): its words are mapped to a label and
    its confidence read by the sequence walk, as in evaluation; the unconfident go to the teacher."""
    from distillbuild.serve.app import serve

    root = project.root
    texts = [json.loads(line)["text"] for line in (root / "data/inputs.jsonl").open()][:40]
    key = load_answer_key(root / "data/key.jsonl")
    teacher = SimulatedTeacher(key, LABELS, accuracy=1.0, seed=1)
    causal = SimulatedTeacher(key, LABELS, accuracy=0.6, seed=3)  # an unsure student: some answers below 0.9
    with SimulatedTeacherServer(teacher, api_key=KEY) as upstream, SimulatedTeacherServer(causal) as student_srv:
        spec = base_spec()
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": upstream.base_url,
            "api_key_env": "SERVE_TEACHER_KEY",
            "max_retries": 0,
            "timeout_s": 5,
        }
        spec["student"] = {
            "kind": "causal-lm",
            "base_model": "meta-llama/Llama-3.1-8B-Instruct",
            "trainer": "axolotl",
            "max_length": 256,
            "endpoint": {"base_url": student_srv.base_url, "model": "ticket-lora"},
        }
        spec["route"] = {"min_accuracy": 0.9}
        (root / "build/route").mkdir(parents=True)
        (root / "build/route/report.json").write_text(json.dumps({"threshold": 0.9}))
        monkeypatch.setenv("SERVE_TEACHER_KEY", KEY)
        with serve(load_spec(project(spec))) as server:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            answers = [
                client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}], logprobs=True)
                for t in texts
            ]
            metrics, health = _metrics(server.base_url), _get(server.base_url, "/health")
    assert health["runtime"] == "endpoint"
    by_model = {m: [a for a in answers if a.model == m] for m in ("mini-student", "gpt-4o-mini")}
    assert by_model["mini-student"] and by_model["gpt-4o-mini"]  # some answered, some routed
    assert len(by_model["mini-student"]) + len(by_model["gpt-4o-mini"]) == len(texts)
    for answer in by_model["mini-student"]:  # kept: a label the student is at least 0.9 sure of
        assert answer.choices[0].message.content in LABELS
        assert answer.model_extra["distill"]["student_confidence"] >= 0.9
        top = answer.choices[0].logprobs.content[0]
        assert top.token == answer.choices[0].message.content
    for answer in by_model["gpt-4o-mini"]:
        assert answer.model_extra["distill"]["routed"] and answer.model_extra["distill"]["student_confidence"] < 0.9
    assert _answers(metrics, "teacher") == len(by_model["gpt-4o-mini"])
    assert _answers(metrics, "student") == len(by_model["mini-student"])


def test_a_student_that_fails_gets_a_500_with_the_reason_and_the_server_keeps_serving(project):
    """A causal student behind student.endpoint whose server is not there (as when its llama.cpp died)."""
    from distillbuild.serve.app import serve

    spec = base_spec()
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "meta-llama/Llama-3.1-8B-Instruct",
        "trainer": "axolotl",
        "max_length": 256,
        "endpoint": {"base_url": "http://127.0.0.1:9/v1", "model": "ticket-lora"},
    }
    with serve(load_spec(project(spec))) as server:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
        for _ in range(2):
            with pytest.raises(APIStatusError) as err:
                client.chat.completions.create(model="any", messages=[{"role": "user", "content": "my invoice"}])
            assert err.value.status_code == 500 and "student could not answer" in str(err.value)
        assert _get(server.base_url, "/health")["status"] == "ok"
        assert _requests(_metrics(server.base_url), "500") == 2


def test_a_reasoning_teacher_is_asked_as_the_teacher_stage_asks_it_and_read_at_its_answer_line(
    project, student, monkeypatch
):
    """teacher.reasoning in prompt mode: the fallback sends the teacher stage's request (the
    reasoning system prompt) and reads the label off the reply's answer line."""
    import distillbuild.endpoints.standin.server as standin
    from distillbuild.protocol.prompts import system_prompt
    from distillbuild.serve.app import serve

    asked, respond = [], standin.respond
    monkeypatch.setattr(
        standin,
        "respond",
        lambda teacher, request, *rest: (asked.append(request["messages"]), respond(teacher, request, *rest))[1],
    )
    texts, _, _, teacher = _routing_case(project.root, student)
    with SimulatedTeacherServer(teacher, api_key=KEY) as upstream:
        spec = _spec(project, student, monkeypatch, upstream.base_url, 1.01)  # every request is routed
        raw = dict(spec.raw)
        raw["teacher"] = {**raw["teacher"], "max_tokens": 256, "reasoning": {"mode": "prompt"}}
        spec = load_spec(project(raw))
        with serve(spec) as server:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            answers = [
                client.chat.completions.create(model="any", messages=[{"role": "user", "content": t}]) for t in texts
            ]
            metrics = _metrics(server.base_url)
    assert len(asked) == len(texts) and all(
        m[0]["content"] == system_prompt(spec.task, spec.teacher.reasoning) for m in asked
    )
    from_teacher = [a for a in answers if a.model == "gpt-4o-mini"]
    assert (
        _answers(metrics, "teacher") == len(from_teacher) >= 0.9 * len(texts)
    )  # the stand-in now and then writes no answer line
    assert all(a.choices[0].message.content in LABELS for a in from_teacher)


def test_the_route_sends_the_teacher_the_request_masked_by_data_scrub(project, student, monkeypatch):
    """data.scrub's `route` door: what the teacher is asked is masked; the caller's answer comes back."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from distillbuild.serve.app import serve

    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "billing"}}
            answer = {"id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini", "choices": [choice]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{upstream.server_address[1]}/v1"
        spec = _spec(project, student, monkeypatch, url, threshold=1.01)  # every request goes to the teacher
        path = spec.path
        text = path.read_text() + "\n"
        path.write_text(text.replace("data:\n", "data:\n  scrub: {ner: false}\n", 1))
        with serve(load_spec(path)) as server:
            client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            said = "refund to card 4111 1111 1111 1111 please, mail ada.l@example.org"
            answer = client.chat.completions.create(model="any", messages=[{"role": "user", "content": said}])
    finally:
        upstream.shutdown()
    assert answer.model == "gpt-4o-mini" and answer.choices[0].message.content == "billing"
    assert len(received) == 1 and "[CARD]" in received[0] and "[EMAIL]" in received[0]
    assert "4111" not in received[0] and "ada.l@example.org" not in received[0]
