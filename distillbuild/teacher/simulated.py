"""The offline stand-in teacher: a real HTTP server speaking OpenAI's Chat Completions.

It answers each prompt from an answer key ({"text", "label", "alternatives"}) with a set
accuracy. A wrong answer is a plausible confusion (the key's first alternative, most of the
time), and confidence is calibrated the way real teachers roughly are: right answers mostly
confident, wrong ones mostly not, with overlap, so a confidence filter helps but is not an
oracle. Each label is emitted as a single token, with `top_logprobs` over the other labels.
Every choice is a function of (seed, prompt), so runs are reproducible.

The server behaves like a provider where asked to: log-normal latency, sliding-window rpm/tpm
limits (429 with retry-after and x-ratelimit-* headers), injected faults drawn from (seed, request
body, attempt number for that body) so a retry can succeed, and the Files + Batches API
(distillbuild.teacher.simulated_batch).

It is a stand-in for a real teacher, labelled as such wherever its results are shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import NormalDist
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs

from distillbuild.teacher.prompts import prompt_text
from distillbuild.teacher.simulated_batch import ApiError, BatchStore


# Part of the simulated endpoint's identity in cache keys: bump it whenever answers change for
# the same key file, accuracy and seed, so no cache serves answers of an older stand-in.
BEHAVIOUR_VERSION = 2


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class KeyEntry:
    label: Any  # a class name, or for extraction a JSON object, or for generation a text
    alternatives: tuple[Any, ...] = ()


def load_answer_key(path: Path) -> dict[str, KeyEntry]:
    key: dict[str, KeyEntry] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            alternatives = row.get("alternatives") or ()
            key[_norm(row["text"])] = KeyEntry(row["label"], tuple(alternatives) if isinstance(alternatives, list) else ())
    return key


@dataclass(frozen=True)
class SimAnswer:
    label: str
    prob: float
    top: tuple[tuple[str, float], ...]  # (label, probability), most likely first


class SimulatedTeacher:
    """The answering logic, apart from HTTP."""

    def __init__(self, key: dict[str, KeyEntry], labels: list[str], accuracy: float, seed: int,
                 tokenizer: str | None = None):
        self.key = {_norm(text): entry for text, entry in key.items()}  # looked up by normalised prompt
        self.labels, self.accuracy, self.seed = list(labels), accuracy, seed
        self.tokenizer = tokenizer  # the teacher's tokenizer (a local path): token ids in logprobs

    def _rng(self, text: str, sample: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\0{sample}\0{_norm(text)}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def answer(self, text: str, sample: int = 0) -> SimAnswer:
        if not self.labels:
            return self._answer_open(text, sample)
        rng = self._rng(text, sample)
        entry = self.key.get(_norm(text))
        others = lambda exclude: [l for l in self.labels if l not in exclude]  # noqa: E731
        if entry is None or entry.label not in self.labels:
            # Not in the key: an unsure guess.
            label, prob, gold, alts = rng.choice(self.labels), 0.25 + 0.25 * rng.random(), None, []
        elif rng.random() < self.accuracy:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            label, prob = gold, 1.0 - 0.45 * rng.random() ** 2  # mostly confident: 0.55-1, median 0.89
        else:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            if alts and rng.random() < 0.8:
                label = alts[0]
            else:
                label = rng.choice(others({gold}))
            prob = 0.25 + 0.7 * rng.random() ** 1.5  # mostly unsure, sometimes confidently wrong: 0.25-0.95
        # Spread the remaining mass: the true label and the plausible confusions first.
        rest = 1.0 - prob
        runners = list(dict.fromkeys(l for l in ([gold] if gold else []) + alts if l != label))
        runners += others({label, *runners})
        weights = [4.0 if l == gold else 2.0 if l in alts else 0.2 * rng.random() for l in runners]
        total = sum(weights) or 1.0
        top = [(label, prob)] + sorted(((l, rest * w / total) for l, w in zip(runners, weights)), key=lambda x: -x[1])
        return SimAnswer(label, prob, tuple(top))


    def _answer_open(self, text: str, sample: int) -> SimAnswer:
        """Extraction and generation: the key's answer (JSON objects serialised), or a plausible
        mistake: the first alternative, or for an object the same object missing one field."""
        rng = self._rng(text, sample)
        entry = self.key.get(_norm(text))
        if entry is None:
            return SimAnswer("{}", 0.3, (("{}", 0.3),))
        answer, prob = entry.label, 1.0 - 0.45 * rng.random() ** 2
        if rng.random() >= self.accuracy:
            prob = 0.25 + 0.7 * rng.random() ** 1.5
            if entry.alternatives:
                answer = entry.alternatives[0]
            elif isinstance(answer, dict) and answer:
                dropped = rng.choice(sorted(answer))
                answer = {k: v for k, v in answer.items() if k != dropped}
        content = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False)
        return SimAnswer(content, prob, ((content, prob),))


def _token_entry(token: str, prob: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(max(prob, 1e-12)), "bytes": list(token.encode())}


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The stand-in's prompt token count (about 4 characters a token): the usage block and the tpm limit."""
    return sum(4 + len(str(m.get("content", ""))) // 4 for m in messages) + 3


def completion_body(teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int) -> dict[str, Any]:
    """A Chat Completions response for one request body."""
    from distillbuild.teacher.simulated_judge import judge_completion  # G-Eval prompts: the stand-in judge

    judged = judge_completion(teacher, request, model, counter)
    if judged is not None:
        return judged
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
        if want_logprobs and request.get("return_tokens_as_token_ids"):
            # vLLM's extension: every position, its token named by id in the teacher's vocabulary.
            from distillbuild.teacher.simulated_tokens import load_tokenizer, token_logprobs

            if not teacher.tokenizer:
                raise ValueError("return_tokens_as_token_ids needs the stand-in to know its tokenizer (teacher.tokenizer)")
            rng = teacher._rng(text, 1000 + i)
            content = token_logprobs(load_tokenizer(teacher.tokenizer), ans.label, ans.top, k, rng)
            choice["logprobs"] = {"content": content, "refusal": None}
        elif want_logprobs:
            entry = _token_entry(ans.label, ans.prob)
            entry["top_logprobs"] = [_token_entry(l, p) for l, p in ans.top[:k]]
            choice["logprobs"] = {"content": [entry], "refusal": None}
        choices.append(choice)
    completion_tokens = sum(1 + len(c["message"]["content"]) // 4 for c in choices) if not teacher.labels else n
    return chat_completion("sim", counter, model, teacher.seed, choices, estimate_prompt_tokens(messages),
                           completion_tokens)


def chat_completion(server: str, counter: int, model: str, seed: int, choices: list[dict[str, Any]],
                    prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A ``chat.completion`` body of a stand-in server (``server``: "sim" for the teacher,
    "simjudge" for the judge), its id and system fingerprint named after it."""
    return {
        "id": f"chatcmpl-{server}-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": f"fp_{server}_{seed}",
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


# --- provider behaviour: faults, limits, latency ---------------------------------------------------

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "connection_reset", "malformed", "truncated")
# Outcomes counted in `SimulatedTeacherServer.stats`; BILLED ones are what a provider charges for.
OUTCOMES = ("ok",) + FAULT_KINDS + ("limited_requests", "limited_tokens", "bad_request", "unauthorized",
                                    "batch_ok", "batch_error")
BILLED = frozenset({"ok", "malformed", "truncated", "batch_ok"})

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_SERVER_ERRORS = ((500, "The server had an error while processing your request. Sorry about that!"),
                  (502, "Bad gateway."),
                  (503, "The server is overloaded or not ready yet."))
_NORMAL = NormalDist()
_TWO64 = float(1 << 64)


def format_duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: "0s", "20ms", "1.2s", "6m0s"."""
    seconds = round(seconds, 3)
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60.0)
    text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{text}s" if minutes else f"{text}s"


def _max_tokens(request: dict[str, Any]) -> int:
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    try:
        return max(0, int(value)) if value is not None else int(request.get("n") or 1)
    except (TypeError, ValueError):
        return 0


class _Window:
    """A sliding window of (time, amount) charges against `limit`."""

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = int(limit), float(window_s)
        self.charges: deque[tuple[float, int]] = deque()
        self.used = 0

    def prune(self, now: float) -> None:
        charges, cut = self.charges, now - self.window_s
        while charges and charges[0][0] <= cut:
            self.used -= charges.popleft()[1]

    def wait_for(self, now: float, amount: int) -> float:
        """Seconds until `amount` fits (0: now; inf: never, it is over the limit by itself)."""
        if amount > self.limit:
            return math.inf
        need = self.used + amount - self.limit
        if need <= 0:
            return 0.0
        freed = 0
        for t, a in self.charges:
            freed += a
            if freed >= need:
                return max(t + self.window_s - now, 0.001)
        return self.window_s  # unreachable while used is the sum of charges

    def add(self, now: float, amount: int) -> None:
        self.charges.append((now, amount))
        self.used += amount

    def headers(self, now: float, unit: str) -> list[tuple[str, str]]:
        # reset: until the oldest charge leaves the window, i.e. until `remaining` next goes up.
        reset = self.charges[0][0] + self.window_s - now if self.charges else 0.0
        return [(f"x-ratelimit-limit-{unit}", str(self.limit)),
                (f"x-ratelimit-remaining-{unit}", str(max(self.limit - self.used, 0))),
                (f"x-ratelimit-reset-{unit}", format_duration(reset))]


class _Limiter:
    def __init__(self, rpm: int | None, tpm: int | None, window_s: float):
        self.requests = _Window(rpm, window_s) if rpm else None
        self.tokens = _Window(tpm, window_s) if tpm else None

    def admit(self, now: float, cost: int) -> tuple[str | None, float, list[tuple[str, str]]]:
        """(None or "requests"/"tokens", retry-after seconds, x-ratelimit headers). Call under the lock."""
        req, tok = self.requests, self.tokens
        wait_r = wait_t = 0.0
        if req is not None:
            req.prune(now)
            wait_r = req.wait_for(now, 1)
        if tok is not None:
            tok.prune(now)
            wait_t = tok.wait_for(now, cost)
        kind = "requests" if wait_r > 0 else "tokens" if wait_t > 0 else None
        if kind is None:
            if req is not None:
                req.add(now, 1)
            if tok is not None:
                tok.add(now, cost)
        headers = (req.headers(now, "requests") if req is not None else []) + \
                  (tok.headers(now, "tokens") if tok is not None else [])
        return kind, max(wait_r, wait_t), headers


def _retry_headers(seconds: float) -> list[tuple[str, str]]:
    ms = max(1, math.ceil(seconds * 1000))
    return [("retry-after", f"{ms / 1000:.3f}".rstrip("0").rstrip(".")), ("retry-after-ms", str(ms))]


def _error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


# --- HTTP -----------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK expects
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each keep-alive request
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _write(self, status: int, raw: bytes, headers: Iterable[tuple[str, str]] = (),
               content_type: str = "application/json") -> None:
        """Status line, headers and body in one write (one syscall, no Nagle/delayed-ACK stall)."""
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(raw)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers))
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + raw)

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        self._write(status, json.dumps(body).encode(), items)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._write(status, _error_body(message, kind))

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        expected = self.server.api_key
        if not auth.startswith("Bearer ") or (expected and auth != f"Bearer {expected}"):
            self.server.owner._count("unauthorized")
            self._write(401, _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return False
        return True

    def _route(self) -> tuple[tuple[str, ...], dict[str, list[str]]]:
        path, _, query = self.path.partition("?")
        parts = tuple(p for p in path.split("/") if p)
        if parts[:1] == ("v1",):
            parts = parts[1:]
        return parts, parse_qs(query)

    def _api(self, call: Any) -> None:
        try:
            result = call()
        except ApiError as exc:
            self._send(exc.status, exc.body())
            return
        if isinstance(result, bytes):
            self._write(200, result, content_type="application/octet-stream")
        else:
            self._send(200, result)

    def do_GET(self) -> None:
        parts, query = self._route()
        if parts[-1:] == ("models",):
            self._send(200, {"object": "list", "data": [{"id": self.server.model, "object": "model", "owned_by": "distillbuild"}]})
            return
        if not self._authorised():
            return
        store = self.server.owner.batches
        if parts == ("files",):
            self._api(lambda: store.list_files((query.get("purpose") or [None])[0]))
        elif len(parts) == 2 and parts[0] == "files":
            self._api(lambda: store.file_meta(parts[1]))
        elif len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            self._api(lambda: store.file_content(parts[1]))
        elif parts == ("batches",):
            limit = int((query.get("limit") or ["20"])[0])
            self._api(lambda: store.list_batches(max(1, min(limit, 100)), (query.get("after") or [None])[0]))
        elif len(parts) == 2 and parts[0] == "batches":
            self._api(lambda: store.get_batch(parts[1]))
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def do_DELETE(self) -> None:
        parts, _ = self._route()
        if not self._authorised():
            return
        if len(parts) == 2 and parts[0] == "files":
            self._api(lambda: self.server.owner.batches.delete_file(parts[1]))
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        raw = self._body()
        if not self._authorised():
            return
        if self.path.endswith("/chat/completions"):  # the hot path
            self.server.owner._chat(self, raw)
            return
        parts, _ = self._route()
        store = self.server.owner.batches
        if parts == ("files",):
            self._api(lambda: store.upload(self.headers.get("Content-Type", ""), raw))
        elif parts == ("batches",):
            self._api(lambda: store.create_batch(_json_or_error(raw)))
        elif len(parts) == 3 and parts[0] == "batches" and parts[2] == "cancel":
            self._api(lambda: store.cancel_batch(parts[1]))
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")


def _json_or_error(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class SimulatedTeacherServer:
    """`with SimulatedTeacherServer(teacher) as srv: OpenAI(base_url=srv.base_url, ...)`.

    Provider behaviour, all off by default:
    - latency_ms, latency_sigma: each answer waits latency_ms * exp(sigma*z - sigma^2/2), z ~ N(0, 1)
      drawn from (seed, body, attempt), so the mean is latency_ms; sleeping is per handler thread.
    - limits {"rpm", "tpm"}: sliding windows of limit_window_s (60 s); a request over them gets 429.
      Token cost = estimate_prompt_tokens(messages) + max_tokens (or max_completion_tokens; n if
      neither). Admitted requests are charged, 429s are not.
    - faults {kind: probability} for FAULT_KINDS, drawn from (seed, blake2b(body), attempt number
      of that body on this server): a retry of the same body draws afresh.
    - hang_s: how long a "timeout" fault holds the request before closing without an answer.
    - batch_rows_per_s: pace of the Batch API worker (None: as fast as it goes).
    """

    def __init__(self, teacher: SimulatedTeacher, latency_ms: float = 0.0, port: int = 0, model: str = "simulated",
                 api_key: str | None = None, *, latency_sigma: float = 0.0, limits: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None, seed: int | None = None, hang_s: float = 30.0,
                 batch_rows_per_s: float | None = None, limit_window_s: float = 60.0):
        self.teacher = teacher
        self.model = model
        self.latency_s = max(float(latency_ms), 0.0) / 1000.0
        self.latency_sigma = max(float(latency_sigma or 0.0), 0.0)
        self.seed = teacher.seed if seed is None else int(seed)
        self.hang_s = float(hang_s)
        self._seed_bytes = hashlib.sha256(f"simulated-server\0{self.seed}".encode()).digest()[:16]

        faults = dict(faults or {})
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {list(FAULT_KINDS)}")
        probs = {k: float(faults.get(k) or 0.0) for k in FAULT_KINDS}
        if any(not 0.0 <= p <= 1.0 for p in probs.values()):
            raise ValueError(f"fault probabilities must lie in [0, 1]: {probs}")
        self.faults = probs
        total = sum(probs.values())
        scale = 1.0 / total if total > 1.0 else 1.0  # more than 1 in all: shares kept, no clean answers
        bounds, upper = [], 0.0
        for kind in FAULT_KINDS:
            if probs[kind] > 0:
                upper += probs[kind] * scale
                bounds.append((upper, kind))
        self._fault_bounds: tuple[tuple[float, str], ...] = tuple(bounds)
        self._draws = bool(bounds) or self.latency_sigma > 0

        limits = dict(limits or {})
        unknown = set(limits) - {"rpm", "tpm"}
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: rpm, tpm")
        self.limits = {"rpm": limits.get("rpm"), "tpm": limits.get("tpm")}
        self._limiter = _Limiter(limits.get("rpm"), limits.get("tpm"), limit_window_s) \
            if (limits.get("rpm") or limits.get("tpm")) else None

        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._attempts: dict[bytes, int] = {}
        self._seen = 0
        self._stats = dict.fromkeys(OUTCOMES, 0)
        self.batches = BatchStore(self._batch_answer, self.seed, batch_rows_per_s, self._closing,
                                  failed=lambda: self._count("batch_error"))

        self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.owner = self
        self.httpd.teacher = teacher
        self.httpd.latency_s = self.latency_s
        self.httpd.model = model
        self.httpd.api_key = api_key  # None accepts any bearer token
        self.httpd.lock = self._lock
        self.httpd.requests = 0  # billed
        self.httpd.completions = 0  # choices in billed answers
        self._thread: threading.Thread | None = None

    # --- public state ---

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests_served(self) -> int:
        """Requests answered with a completion: what a real provider would bill (batch lines included)."""
        return self.httpd.requests

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot: requests per outcome (OUTCOMES), plus "billed" (= requests_served)."""
        with self._lock:
            snapshot = dict(self._stats)
            snapshot["billed"] = self.httpd.requests
        return snapshot

    # --- lifecycle ---

    def start(self) -> "SimulatedTeacherServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="simulated-teacher", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self._closing.set()  # wakes hung "timeout" handlers and the batch workers
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> "SimulatedTeacherServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._stats[outcome] += 1

    def _batch_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seen += 1
            counter = self._seen
            self.httpd.requests += 1
            self._stats["batch_ok"] += 1
        completion = completion_body(self.teacher, body, body.get("model") or self.model, counter)
        with self._lock:
            self.httpd.completions += len(completion["choices"])
        return completion

    def _chat(self, h: _Handler, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except ValueError:
            self._count("bad_request")
            h._write(400, _error_body("We could not parse the JSON body of your request.", "invalid_request_error"))
            return
        messages = request.get("messages") if isinstance(request, dict) else None
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            self._count("bad_request")
            h._write(400, _error_body("messages must be a non-empty list", "invalid_request_error", param="messages"))
            return
        limiter = self._limiter
        cost = estimate_prompt_tokens(messages) + _max_tokens(request) if limiter is not None and limiter.tokens else 0
        digest = hashlib.blake2b(raw, digest_size=16).digest() if self._draws else b""
        headers: list[tuple[str, str]] = []
        limited = None
        outcome = "ok"
        with self._lock:
            self._seen += 1
            counter = self._seen
            if limiter is not None:
                limited, retry_s, headers = limiter.admit(time.monotonic(), cost)
            if limited is not None:
                self._stats["limited_" + limited] += 1
            else:
                if self._draws:
                    attempt = 0
                    if self._fault_bounds:
                        attempt = self._attempts.get(digest, 0)
                        self._attempts[digest] = attempt + 1
                    draw = hashlib.blake2b(self._seed_bytes + attempt.to_bytes(4, "big") + digest, digest_size=24).digest()
                    u = int.from_bytes(draw[:8], "big") / _TWO64
                    for upper, kind in self._fault_bounds:
                        if u < upper:
                            outcome = kind
                            break
                self._stats[outcome] += 1
                if outcome in BILLED:
                    self.httpd.requests += 1
        request_id = f"req_sim{counter:08d}"
        headers.append(("x-request-id", request_id))
        if limited is not None:
            self._send_limited(h, limited, retry_s, cost, headers)
            return
        latency = self.latency_s
        v = 0.0
        if self._draws:
            v = int.from_bytes(draw[8:16], "big") / _TWO64
            if self.latency_sigma > 0:
                w = min(max(int.from_bytes(draw[16:24], "big") / _TWO64, 1e-12), 1 - 1e-12)
                sigma = self.latency_sigma
                latency *= math.exp(sigma * _NORMAL.inv_cdf(w) - sigma * sigma / 2)
        if outcome == "ok" or outcome == "truncated" or outcome == "malformed":
            body = completion_body(self.teacher, request, request.get("model") or self.model, counter)
            if outcome == "truncated":
                _truncate(body)
            payload = json.dumps(body).encode()
            if outcome == "malformed":
                payload = payload[: len(payload) // 2]  # cut-off JSON
            with self._lock:
                self.httpd.completions += len(body["choices"])
            if latency > 0:
                time.sleep(latency)
            headers.append(("openai-processing-ms", str(round(latency * 1000))))
            h._write(200, payload, headers)
        elif outcome == "rate_limit":
            retry = 0.05 + 0.15 * v
            headers += _retry_headers(retry)
            h._write(429, _error_body(f"Rate limit reached for {self.model} (simulated overload). Please try again "
                                      f"in {round(retry * 1000)}ms.", "requests", "rate_limit_exceeded"), headers)
        elif outcome == "server_error":
            status, message = _SERVER_ERRORS[min(int(v * 3), 2)]
            if latency > 0:
                time.sleep(latency)
            h._write(status, _error_body(message, "server_error"), headers)
        elif outcome == "connection_reset":
            _reset(h)
        else:  # timeout: hold the request, answer nothing, close
            self._closing.wait(self.hang_s)
            h.close_connection = True

    def _send_limited(self, h: _Handler, kind: str, retry_s: float, cost: int, headers: list[tuple[str, str]]) -> None:
        window = self._limiter.requests if kind == "requests" else self._limiter.tokens
        unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
        requested = 1 if kind == "requests" else cost
        if math.isinf(retry_s):  # can never fit: a provider says so and the SDK should not retry
            message = (f"Request too large for {self.model} on {unit}: Limit {window.limit}, Requested {requested}. "
                       f"The input or output tokens must be reduced in order to run successfully.")
            headers.append(("x-should-retry", "false"))
        else:
            message = (f"Rate limit reached for {self.model} on {unit}: Limit {window.limit}, Used {window.used}, "
                       f"Requested {requested}. Please try again in {format_duration(retry_s)}.")
            headers += _retry_headers(retry_s)
        h._write(429, _error_body(message, kind, "rate_limit_exceeded"), headers)


def _truncate(body: dict[str, Any]) -> None:
    """finish_reason "length" and the answer cut (to its first 3 characters, always shorter than the label)."""
    for choice in body["choices"]:
        label = choice["message"]["content"]
        cut = label[: max(1, min(3, len(label) - 1))]
        choice["message"]["content"], choice["finish_reason"] = cut, "length"
        if choice["logprobs"]:
            entry = choice["logprobs"]["content"][0]
            entry["token"], entry["bytes"] = cut, list(cut.encode())


def _reset(h: _Handler) -> None:
    """Close the connection with no response; SO_LINGER 0 makes it a real RST."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    h.connection.close()  # the real close (RST) happens as the handler's files close


def teacher_from_spec(spec) -> SimulatedTeacher:
    sim = spec.get("teacher.simulated")
    key = load_answer_key(spec.resolve(sim["answers"]))
    tokenizer = spec.get("teacher.tokenizer")
    tokenizer = str(spec.resolve(tokenizer)) if tokenizer and spec.resolve(tokenizer).is_dir() else tokenizer
    return SimulatedTeacher(key, spec.get("task.labels") or [], sim["accuracy"], sim["seed"], tokenizer=tokenizer)


def server_from_spec(spec, port: int = 0, **overrides: Any) -> SimulatedTeacherServer:
    """The stand-in of a spec's teacher.simulated section; `overrides` (hang_s, batch_rows_per_s, ...) win."""
    sim = spec.get("teacher.simulated")
    kwargs: dict[str, Any] = dict(latency_ms=sim.get("latency_ms", 0.0), port=port, model=spec.get("teacher.model"),
                                  latency_sigma=sim.get("latency_sigma") or 0.0, limits=sim.get("limits"),
                                  faults=sim.get("faults"), seed=sim.get("seed"))
    kwargs.update(overrides)
    return SimulatedTeacherServer(teacher_from_spec(spec), **kwargs)
