"""The offline stand-in teacher: a real HTTP server speaking OpenAI's Chat Completions.

It answers each prompt from an answer key ({"text", "label", "alternatives"}) with a set
accuracy. A wrong answer is a plausible confusion (the key's first alternative, most of the
time), and confidence is calibrated the way real teachers roughly are: right answers mostly
confident, wrong ones mostly not, with overlap, so a confidence filter helps but is not an
oracle. Each label is emitted as a single token, with `top_logprobs` over the other labels.
Every choice is a function of (seed, prompt), so runs are reproducible.

It is a stand-in for a real teacher, labelled as such wherever its results are shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from distillbuild.teacher.prompts import prompt_text


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class KeyEntry:
    label: str
    alternatives: tuple[str, ...] = ()


def load_answer_key(path: Path) -> dict[str, KeyEntry]:
    key: dict[str, KeyEntry] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            key[_norm(row["text"])] = KeyEntry(row["label"], tuple(row.get("alternatives") or ()))
    return key


@dataclass(frozen=True)
class SimAnswer:
    label: str
    prob: float
    top: tuple[tuple[str, float], ...]  # (label, probability), most likely first


class SimulatedTeacher:
    """The answering logic, apart from HTTP."""

    def __init__(self, key: dict[str, KeyEntry], labels: list[str], accuracy: float, seed: int):
        self.key, self.labels, self.accuracy, self.seed = key, list(labels), accuracy, seed

    def _rng(self, text: str, sample: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\0{sample}\0{_norm(text)}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def answer(self, text: str, sample: int = 0) -> SimAnswer:
        rng = self._rng(text, sample)
        entry = self.key.get(_norm(text))
        others = lambda exclude: [l for l in self.labels if l not in exclude]  # noqa: E731
        if entry is None or entry.label not in self.labels:
            # Not in the key: an unsure guess.
            label, prob, gold, alts = rng.choice(self.labels), 0.25 + 0.25 * rng.random(), None, []
        elif rng.random() < self.accuracy:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            label, prob = gold, 1.0 - 0.35 * rng.random() ** 2  # mostly confident
        else:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            if alts and rng.random() < 0.8:
                label = alts[0]
            else:
                label = rng.choice(others({gold}))
            prob = 0.3 + 0.5 * rng.random()  # mostly unsure, sometimes confidently wrong
        # Spread the remaining mass: the true label and the plausible confusions first.
        rest = 1.0 - prob
        runners = list(dict.fromkeys(l for l in ([gold] if gold else []) + alts if l != label))
        runners += others({label, *runners})
        weights = [4.0 if l == gold else 2.0 if l in alts else 0.2 * rng.random() for l in runners]
        total = sum(weights) or 1.0
        top = [(label, prob)] + sorted(((l, rest * w / total) for l, w in zip(runners, weights)), key=lambda x: -x[1])
        return SimAnswer(label, prob, tuple(top))


def _token_entry(token: str, prob: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(max(prob, 1e-12)), "bytes": list(token.encode())}


def completion_body(teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int) -> dict[str, Any]:
    """A Chat Completions response for one request body."""
    messages = request.get("messages") or []
    text = prompt_text(messages)
    n = int(request.get("n") or 1)
    temperature = float(request.get("temperature") if request.get("temperature") is not None else 1.0)
    k = int(request.get("top_logprobs") or 0)
    want_logprobs = bool(request.get("logprobs"))
    choices = []
    for i in range(n):
        ans = teacher.answer(text, sample=i if temperature > 0 else 0)
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": ans.label, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if want_logprobs:
            entry = _token_entry(ans.label, ans.prob)
            entry["top_logprobs"] = [_token_entry(l, p) for l, p in ans.top[:k]]
            choice["logprobs"] = {"content": [entry], "refusal": None}
        choices.append(choice)
    prompt_tokens = sum(4 + len(str(m.get("content", ""))) // 4 for m in messages) + 3
    return {
        "id": f"chatcmpl-sim-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": f"fp_sim_{teacher.seed}",
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK expects
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each keep-alive request
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": self.server.model, "object": "model", "owned_by": "distillbuild"}]})
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        expected = self.server.api_key
        if not auth.startswith("Bearer ") or (expected and auth != f"Bearer {expected}"):
            self._error(401, "Incorrect API key provided.", "invalid_request_error")
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._error(404, f"no route {self.path}", "invalid_request_error")
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._error(400, "body is not JSON", "invalid_request_error")
            return
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            self._error(400, "messages must be a non-empty list", "invalid_request_error")
            return
        sim = self.server
        with sim.lock:
            sim.requests += 1
            counter = sim.requests
        body = completion_body(sim.teacher, request, request.get("model") or sim.model, counter)
        if sim.latency_s > 0:
            jitter = random.Random(counter).random()
            time.sleep(sim.latency_s * (0.5 + jitter))  # mean = latency
        with sim.lock:
            sim.completions += len(body["choices"])
        self._send(200, body, {"x-request-id": body["id"]})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class SimulatedTeacherServer:
    """`with SimulatedTeacherServer(teacher) as srv: OpenAI(base_url=srv.base_url, ...)`."""

    def __init__(self, teacher: SimulatedTeacher, latency_ms: float = 0.0, port: int = 0, model: str = "simulated",
                 api_key: str | None = None):
        self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.teacher = teacher
        self.httpd.latency_s = latency_ms / 1000.0
        self.httpd.model = model
        self.httpd.api_key = api_key  # None accepts any bearer token
        self.httpd.lock = threading.Lock()
        self.httpd.requests = 0
        self.httpd.completions = 0
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests_served(self) -> int:
        """Requests answered with a completion: what a real provider would bill."""
        return self.httpd.requests

    def start(self) -> "SimulatedTeacherServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="simulated-teacher", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> "SimulatedTeacherServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def teacher_from_spec(spec) -> SimulatedTeacher:
    sim = spec.get("teacher.simulated")
    key = load_answer_key(spec.resolve(sim["answers"]))
    return SimulatedTeacher(key, spec.get("task.labels") or [], sim["accuracy"], sim["seed"])


def server_from_spec(spec, port: int = 0) -> SimulatedTeacherServer:
    sim = spec.get("teacher.simulated")
    return SimulatedTeacherServer(teacher_from_spec(spec), latency_ms=sim["latency_ms"], port=port, model=spec.get("teacher.model"))
