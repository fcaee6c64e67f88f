"""The simulated teacher server as a provider: latency, rate limits, injected faults, Files + Batches.

Everything goes through the real openai SDK (or raw HTTP where headers and bytes matter) over
127.0.0.1. Fault draws are deterministic in (seed, body, attempt), so the counts below are fixed
for a given seed; the bounds are loose anyway so that a change of hash does not make them flaky.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from distillbuild.endpoints.standin.sections import teacher_server
from distillbuild.endpoints.standin.server import FAULT_KINDS, SimulatedTeacherServer, format_duration
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher, estimate_prompt_tokens
from distillbuild.spec.model import Teacher, build

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

pytestmark = pytest.mark.timeout(60)

LABELS = ["billing", "refund", "login", "bug", "shipping"]
TEXTS = [f"ticket {i}: something about {LABELS[i % 5]}" for i in range(600)]
KEY = {t: KeyEntry(LABELS[i % 5], (LABELS[(i + 1) % 5],)) for i, t in enumerate(TEXTS)}
TEACHER = SimulatedTeacher(KEY, LABELS, accuracy=0.9, seed=5)
DURATION = re.compile(r"^(\d+ms|(\d+m)?\d+(\.\d{1,3})?s)$")


def msgs(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Classify."}, {"role": "user", "content": TEXTS[i]}]


def client(srv: SimulatedTeacherServer, **kw) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=srv.base_url, api_key="x", **kw)


def ask(c: openai.OpenAI, i: int, **kw):
    return c.chat.completions.create(model="sim", messages=msgs(i), max_tokens=4, temperature=0, **kw)


def outcome(c: openai.OpenAI, i: int) -> str:
    """The fault kind as a client sees it (max_retries=0)."""
    try:
        r = ask(c, i)
    except openai.RateLimitError:
        return "rate_limit"
    except openai.InternalServerError:
        return "server_error"
    except openai.APITimeoutError:
        return "timeout"
    except openai.APIConnectionError:
        return "connection_reset"
    except ValueError:  # json.JSONDecodeError: the SDK does not wrap a malformed 200
        return "malformed"
    return "truncated" if r.choices[0].finish_reason == "length" else "ok"


def raw_post(srv: SimulatedTeacherServer, body: dict) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        srv.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


# --- latency ---------------------------------------------------------------------------------------


def test_latency_is_lognormal_with_the_set_mean_and_does_not_serialize():
    with SimulatedTeacherServer(TEACHER, latency_ms=40, latency_sigma=0.5) as srv:
        c = client(srv)

        def timed(i):
            t = time.perf_counter()
            r = c.chat.completions.with_raw_response.create(model="sim", messages=msgs(i), max_tokens=4)
            return int(r.headers["openai-processing-ms"]), time.perf_counter() - t

        with ThreadPoolExecutor(32) as pool:
            t0 = time.perf_counter()
            got = list(pool.map(timed, range(400)))
            wall = time.perf_counter() - t0
    drawn = [ms for ms, _ in got]
    # The drawn latencies (what the server slept): mean ~ latency_ms, a real spread (sigma 0.5).
    assert 34 <= statistics.mean(drawn) <= 46
    assert min(drawn) < 0.6 * 40 and max(drawn) > 1.6 * 40
    assert 0.35 < statistics.pstdev(f / 40 for f in drawn) < 0.75  # sqrt(exp(0.25)-1) = 0.53
    # Each request really waited at least what was drawn (wall clock, independent of CPU speed)...
    assert all(elapsed >= ms / 1000 - 0.002 for ms, elapsed in got)
    # ...and the sleeps overlap: 400 x 40 ms serialized would be 16 s.
    assert wall < 6.0
    assert srv.requests_served == 400


def test_constant_latency_with_sigma_zero_and_concurrent_sleeps():
    with SimulatedTeacherServer(TEACHER, latency_ms=300) as srv:
        c = client(srv)
        with ThreadPoolExecutor(32) as pool:
            t0 = time.perf_counter()
            heads = list(
                pool.map(
                    lambda i: c.chat.completions.with_raw_response.create(
                        model="sim", messages=msgs(i), max_tokens=4
                    ).headers["openai-processing-ms"],
                    range(32),
                )
            )
            wall = time.perf_counter() - t0
    assert set(heads) == {"300"}
    assert 0.3 <= wall < 2.5  # 32 x 0.3 s serialized would be 9.6 s


# --- rate limits -----------------------------------------------------------------------------------


def test_rpm_limit_answers_429_with_retry_after_and_ratelimit_headers():
    with SimulatedTeacherServer(TEACHER, limits={"rpm": 3}) as srv:
        c = client(srv)
        remaining = []
        for i in range(3):
            r = c.chat.completions.with_raw_response.create(model="sim", messages=msgs(i), max_tokens=4)
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit-requests"] == "3"
            assert DURATION.match(r.headers["x-ratelimit-reset-requests"])
            assert "x-ratelimit-limit-tokens" not in r.headers  # no tpm set
            remaining.append(int(r.headers["x-ratelimit-remaining-requests"]))
            r.parse()
        assert remaining == [2, 1, 0]
        status, headers, body = raw_post(srv, {"model": "sim", "messages": msgs(9)})
        assert status == 429
        error = json.loads(body)["error"]
        assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
        assert "Limit 3" in error["message"]
        retry = float(headers["retry-after"])
        assert 55 < retry <= 60  # the oldest request leaves the 60 s window
        assert abs(int(headers["retry-after-ms"]) / 1000 - retry) < 0.002
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert DURATION.match(headers["x-ratelimit-reset-requests"])
        with pytest.raises(openai.RateLimitError):
            ask(c, 10)
        assert srv.requests_served == 3  # a 429 is not billed
        assert srv.stats["limited_requests"] == 2 and srv.stats["ok"] == 3


def test_tpm_limit_charges_prompt_plus_max_tokens_and_rejects_too_large():
    with SimulatedTeacherServer(TEACHER, limits={"tpm": 100, "rpm": 1000}) as srv:
        cost = estimate_prompt_tokens(msgs(0)) + 40
        status, headers, _ = raw_post(srv, {"model": "sim", "messages": msgs(0), "max_tokens": 40})
        assert status == 200
        assert headers["x-ratelimit-limit-tokens"] == "100"
        assert int(headers["x-ratelimit-remaining-tokens"]) == 100 - cost
        assert headers["x-ratelimit-remaining-requests"] == "999"
        status, headers, body = raw_post(srv, {"model": "sim", "messages": msgs(1), "max_tokens": 40})
        assert status == 429 and json.loads(body)["error"]["type"] == "tokens"
        assert float(headers["retry-after"]) > 50
        # Larger than the limit by itself: never retryable, and the SDK obeys x-should-retry.
        c = client(srv, max_retries=3)
        with pytest.raises(openai.RateLimitError) as info:
            ask(c, 2, extra_body={"max_tokens": 500})
        assert info.value.response.headers["x-should-retry"] == "false"
        assert "Request too large" in info.value.message
        assert srv.stats["limited_tokens"] == 2 and srv.requests_served == 1


def test_sliding_window_frees_slots_and_sdk_retries_honour_retry_after():
    with SimulatedTeacherServer(TEACHER, limits={"rpm": 2}, limit_window_s=0.4) as srv:
        c = client(srv, max_retries=4)
        t0 = time.perf_counter()
        results = [
            c.chat.completions.with_raw_response.create(model="sim", messages=msgs(i), max_tokens=4) for i in range(6)
        ]
        elapsed = time.perf_counter() - t0
    assert all(r.parse().choices[0].message.content in LABELS for r in results)
    assert sum(r.retries_taken for r in results) == srv.stats["limited_requests"] >= 2
    assert elapsed >= 0.75  # 6 requests at 2 per 0.4 s window need two more windows
    assert srv.requests_served == 6


def test_format_duration_matches_openai_style():
    assert [format_duration(s) for s in (0, 0.02, 0.3504, 1.2, 59.5, 60, 360, 61.25)] == [
        "0s",
        "20ms",
        "350ms",
        "1.2s",
        "59.5s",
        "1m0s",
        "6m0s",
        "1m1.25s",
    ]


# --- faults ----------------------------------------------------------------------------------------

RATES = {
    "rate_limit": 0.08,
    "server_error": 0.08,
    "timeout": 0.02,
    "connection_reset": 0.08,
    "malformed": 0.08,
    "truncated": 0.08,
}


def test_each_fault_kind_at_roughly_its_rate_and_billing_is_exact():
    n = 500
    with SimulatedTeacherServer(TEACHER, faults=RATES, hang_s=3.0) as srv:
        c = client(srv, timeout=1.5)
        with ThreadPoolExecutor(24) as pool:
            seen = list(pool.map(lambda i: outcome(c, i), range(n)))
        stats = srv.stats
        billed = srv.requests_served
        t0 = time.perf_counter()
    assert time.perf_counter() - t0 < 1.0  # close() does not wait for hung handlers
    for kind in FAULT_KINDS:
        assert seen.count(kind) == stats[kind], kind  # the client saw exactly what the server did
        assert 0.4 * RATES[kind] * n <= stats[kind] <= 1.8 * RATES[kind] * n, (kind, stats[kind])
    assert seen.count("ok") == stats["ok"] >= 0.5 * n
    # Billed: clean answers, malformed 200s and truncated 200s; never 429, 5xx, timeouts or resets.
    assert billed == stats["billed"] == stats["ok"] + stats["malformed"] + stats["truncated"]


def test_sdk_retries_recover_from_rate_limit_server_error_and_reset():
    faults = {"rate_limit": 0.1, "server_error": 0.1, "connection_reset": 0.1}
    with SimulatedTeacherServer(TEACHER, faults=faults) as srv:
        c = client(srv, max_retries=6)
        with ThreadPoolExecutor(40) as pool:
            results = list(
                pool.map(
                    lambda i: c.chat.completions.with_raw_response.create(
                        model="sim", messages=msgs(i), max_tokens=4, temperature=0
                    ),
                    range(40),
                )
            )
        stats = srv.stats
    answers = [r.parse().choices[0].message.content for r in results]
    assert answers == [TEACHER.answer(TEXTS[i]).label for i in range(40)]
    assert all(stats[k] >= 1 for k in faults), stats
    assert sum(r.retries_taken for r in results) == sum(stats[k] for k in faults)
    assert stats["ok"] == 40 and srv.requests_served == 40  # failed attempts are not billed


def test_malformed_is_a_client_side_parse_error_and_billed():
    with SimulatedTeacherServer(TEACHER, faults={"malformed": 1.0}) as srv:
        c = client(srv, max_retries=2)
        with pytest.raises(json.JSONDecodeError):
            ask(c, 0)  # a 200 is not retried by the SDK
        status, headers, body = raw_post(srv, {"model": "sim", "messages": msgs(1)})
        assert status == 200 and headers["content-type"] == "application/json"
        assert int(headers["content-length"]) == len(body) and body.startswith(b'{"id": "chatcmpl-')
        with pytest.raises(ValueError):
            json.loads(body)
        assert srv.requests_served == 2 == srv.stats["malformed"]


def test_truncated_answers_have_finish_reason_length_and_a_cut_label():
    with SimulatedTeacherServer(TEACHER, faults={"truncated": 1.0}) as srv:
        for i in range(10):
            r = ask(client(srv), i, logprobs=True, top_logprobs=3)
            choice = r.choices[0]
            assert choice.finish_reason == "length"
            full = TEACHER.answer(TEXTS[i]).label
            assert choice.message.content == full[:3] or (len(full) <= 3 and choice.message.content == full[:-1])
            assert 0 < len(choice.message.content) < len(full)
            assert choice.logprobs.content[0].token == choice.message.content
        assert srv.requests_served == 10 == srv.stats["truncated"]


def test_injected_429_and_5xx_look_like_a_provider():
    with SimulatedTeacherServer(TEACHER, faults={"rate_limit": 1.0}) as srv:
        for i in range(10):
            status, headers, body = raw_post(srv, {"model": "sim", "messages": msgs(i)})
            assert status == 429 and json.loads(body)["error"]["code"] == "rate_limit_exceeded"
            assert 0.05 <= float(headers["retry-after"]) <= 0.2
            assert headers["retry-after-ms"] == str(round(float(headers["retry-after"]) * 1000))
    with SimulatedTeacherServer(TEACHER, faults={"server_error": 1.0}) as srv:
        seen = set()
        for i in range(30):
            status, headers, body = raw_post(srv, {"model": "sim", "messages": msgs(i)})
            seen.add(status)
            assert json.loads(body)["error"]["type"] == "server_error" and headers["x-request-id"]
        assert seen == {500, 502, 503}
        assert srv.requests_served == 0 and srv.stats["server_error"] == 30


def test_timeout_holds_without_answer_and_reset_is_a_real_rst():
    with SimulatedTeacherServer(TEACHER, faults={"timeout": 1.0}, hang_s=2.0) as srv:
        t0 = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            ask(client(srv, timeout=0.3), 0)
        assert 0.3 <= time.perf_counter() - t0 < 1.5
        assert srv.stats["timeout"] == 1 and srv.requests_served == 0
    with SimulatedTeacherServer(TEACHER, faults={"connection_reset": 1.0}) as srv:
        body = json.dumps({"model": "sim", "messages": msgs(0)}).encode()
        with socket.create_connection(srv.httpd.server_address[:2], timeout=5) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            with pytest.raises(ConnectionResetError):
                s.recv(100)
        with pytest.raises(openai.APIConnectionError):
            ask(client(srv), 1)
        assert srv.stats["connection_reset"] == 2 and srv.requests_served == 0


def test_fault_draws_are_deterministic_per_seed_and_attempt():
    faults = {"rate_limit": 0.1, "server_error": 0.1, "connection_reset": 0.1, "malformed": 0.1, "truncated": 0.1}

    def run(seed: int, passes: int = 1) -> list[list[str]]:
        with SimulatedTeacherServer(TEACHER, faults=faults, seed=seed) as srv:
            c = client(srv)
            return [[outcome(c, i) for i in range(150)] for _ in range(passes)]

    first, second = run(11, passes=2)
    assert run(11) == [first]  # same seed, same requests: same outcomes
    assert run(12) != [first]  # another seed: other outcomes
    # The second attempt of each body draws afresh: a retry can succeed.
    assert first != second
    assert any(a != "ok" and b == "ok" for a, b in zip(first, second))


def test_bad_fault_or_limit_settings_are_refused():
    with pytest.raises(ValueError):
        SimulatedTeacherServer(TEACHER, faults={"meteor": 0.1})
    with pytest.raises(ValueError):
        SimulatedTeacherServer(TEACHER, faults={"timeout": 1.5})
    with pytest.raises(ValueError):
        SimulatedTeacherServer(TEACHER, limits={"rph": 5})


# --- Files and Batches -----------------------------------------------------------------------------


def batch_file(path: Path, n: int, extra: list[dict] | None = None) -> Path:
    rows = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "sim", "messages": msgs(i), "max_tokens": 4, "temperature": 0},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + (extra or [])), encoding="utf-8")
    return path


def wait_for(c: openai.OpenAI, batch_id: str, until=("completed", "failed", "cancelled"), limit_s: float = 20):
    deadline = time.monotonic() + limit_s
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in until or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def test_files_and_batches_round_trip_through_the_sdk(tmp_path):
    bad = {"custom_id": "broken", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "sim"}}
    path = batch_file(tmp_path / "requests.jsonl", 30, extra=[bad])
    with SimulatedTeacherServer(TEACHER, batch_rows_per_s=40) as srv:
        c = client(srv)
        uploaded = c.files.create(file=open(path, "rb"), purpose="batch")
        assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.filename == "requests.jsonl"
        assert uploaded.bytes == path.stat().st_size == c.files.retrieve(uploaded.id).bytes
        assert c.files.content(uploaded.id).text == path.read_text()
        batch = c.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "validating" and batch.input_file_id == uploaded.id
        # A client that restarts polls the batch still in flight on the same server.
        other = openai.OpenAI(base_url=srv.base_url, api_key="another", max_retries=0)
        mid = wait_for(other, batch.id, until=("in_progress",))
        assert mid.status == "in_progress" and mid.request_counts.total == 31
        assert mid.request_counts.completed < 30 and mid.output_file_id is None
        done = wait_for(other, batch.id)
        assert done.status == "completed" and done.completed_at and done.in_progress_at
        assert (done.request_counts.completed, done.request_counts.failed) == (30, 1)
        assert done.usage.output_tokens == 30
        lines = [json.loads(l) for l in other.files.content(done.output_file_id).text.splitlines()]
        errors = [json.loads(l) for l in other.files.content(done.error_file_id).text.splitlines()]
        assert [b.id for b in c.batches.list()] == [batch.id]
        assert srv.requests_served == 30 and srv.stats["batch_ok"] == 30 and srv.stats["batch_error"] == 1
    by_id = {l["custom_id"]: l for l in lines}
    assert sorted(by_id) == sorted(f"req-{i}" for i in range(30))
    assert [l["custom_id"] for l in lines] != [f"req-{i}" for i in range(30)]  # any order, like OpenAI
    for i in range(30):
        line = by_id[f"req-{i}"]
        assert line["error"] is None and line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"] == TEACHER.answer(TEXTS[i]).label
    assert [e["custom_id"] for e in errors] == ["broken"]
    assert errors[0]["response"]["status_code"] == 400 and errors[0]["response"]["body"]["error"]["message"]


def test_batch_cancel_keeps_partial_results_and_bills_only_them(tmp_path):
    path = batch_file(tmp_path / "requests.jsonl", 60)
    with SimulatedTeacherServer(TEACHER, batch_rows_per_s=30) as srv:
        c = client(srv)
        fid = c.files.create(file=open(path, "rb"), purpose="batch").id
        batch = c.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")
        wait_for(c, batch.id, until=("in_progress",))
        time.sleep(0.3)
        assert c.batches.cancel(batch.id).status == "cancelling"
        done = wait_for(c, batch.id)
        assert done.status == "cancelled" and done.cancelled_at
        lines = c.files.content(done.output_file_id).text.splitlines()
        assert 0 < len(lines) == done.request_counts.completed < 60
        assert srv.requests_served == len(lines)
        with pytest.raises(openai.BadRequestError):
            c.batches.cancel(batch.id)


def test_batch_validation_failures_and_bad_requests(tmp_path):
    dup = batch_file(
        tmp_path / "dup.jsonl",
        3,
        extra=[{"custom_id": "req-0", "method": "POST", "url": "/v1/chat/completions", "body": {}}],
    )
    with SimulatedTeacherServer(TEACHER) as srv:
        c = client(srv)
        fid = c.files.create(file=open(dup, "rb"), purpose="batch").id
        batch = wait_for(
            c, c.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h").id
        )
        assert batch.status == "failed" and batch.errors.data[0].code == "duplicate_custom_id"
        assert batch.errors.data[0].line == 4
        with pytest.raises(openai.NotFoundError):
            c.batches.retrieve("batch_nope")
        with pytest.raises(openai.NotFoundError):
            c.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
        with pytest.raises(openai.BadRequestError):
            c.batches.create(input_file_id=fid, endpoint="/v1/embeddings", completion_window="24h")
        with pytest.raises(openai.BadRequestError):
            c.files.create(file=("notes.txt", b"x"), purpose="batch")
        assert srv.requests_served == 0


# --- from a spec -----------------------------------------------------------------------------------


def server_from_section(sim: dict, base_dir: Path, **overrides):
    """The teacher stand-in of a teacher section, as the teacher stage starts it."""
    return teacher_server(build(Teacher, {"model": "sim-model", "simulated": sim}), base_dir, LABELS, **overrides)


def test_server_from_spec_honours_latency_limits_and_faults(tmp_path):
    key = tmp_path / "key.jsonl"
    key.write_text("".join(json.dumps({"text": t, "label": LABELS[i % 5]}) + "\n" for i, t in enumerate(TEXTS[:20])))
    sim = {
        "answers": "key.jsonl",
        "accuracy": 1.0,
        "latency_ms": 5,
        "seed": 3,
        "latency_sigma": 0.25,
        "limits": {"rpm": 50, "tpm": None},
        "faults": {"truncated": 1.0, "rate_limit": 0, "timeout": 0},
    }
    with server_from_section(sim, tmp_path, hang_s=1.0) as srv:
        assert (srv.latency_s, srv.latency_sigma, srv.seed, srv.hang_s) == (0.005, 0.25, 3, 1.0)
        r = client(srv).chat.completions.with_raw_response.create(model="sim-model", messages=msgs(0), max_tokens=4)
        assert r.headers["x-ratelimit-limit-requests"] == "50"
        assert r.parse().choices[0].finish_reason == "length"
    plain = {"answers": "key.jsonl", "accuracy": 1.0, "latency_ms": 0, "seed": 3, "latency_sigma": 0}
    with server_from_section(plain, tmp_path) as srv:  # limits and faults absent: none
        r = client(srv).chat.completions.with_raw_response.create(model="m", messages=msgs(1), max_tokens=4)
        assert "x-ratelimit-limit-requests" not in r.headers
        assert r.parse().choices[0].message.content == LABELS[1]
        assert srv.stats["ok"] == 1 == srv.requests_served
