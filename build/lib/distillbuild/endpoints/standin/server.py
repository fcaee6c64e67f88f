"""The stand-in servers: a real HTTP server speaking OpenAI's Chat Completions, Files and Batches.

It answers with a stand-in (distillbuild.endpoints.standin.teacher's SimulatedTeacher, or the judge of
distillbuild.endpoints.standin.judge: any stand-in server answers G-Eval prompts) and behaves like a
provider where asked to: log-normal latency, sliding-window rpm/tpm limits (429 with
retry-after and x-ratelimit-* headers), injected faults drawn from (seed, request body, attempt
number for that body) so a retry can succeed, and the Files + Batches API
(distillbuild.endpoints.standin.batch).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter, deque
from statistics import NormalDist
from typing import Any, Mapping, NamedTuple

from distillbuild.endpoints.standin.batch import BatchStore
from distillbuild.endpoints.standin.generator import seed_completion
from distillbuild.endpoints.standin.http import Handler, HTTPServer, error_body, reset
from distillbuild.endpoints.standin.judge import judge_completion
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, completion_body, estimate_prompt_tokens
from distillbuild.llm.completions import input_of, text_completion
from distillbuild.protocol.choice import labels_of

TEXT_COMPLETION = "_text_completion"  # a request that came in on /v1/completions


def respond(teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int) -> dict[str, Any]:
    """The completion for one request body: G-Eval prompts get the stand-in judge's verdict, seed
    requests the stand-in generator's inputs."""
    for special in (judge_completion, seed_completion):
        answer = special(teacher, request, model, counter)
        if answer is not None:
            return answer
    return completion_body(teacher, request, model, counter)


# --- provider behaviour: faults, limits, latency ---------------------------------------------------

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "connection_reset", "malformed", "truncated")
# Outcomes counted in `SimulatedTeacherServer.stats`; BILLED ones are what a provider charges for.
OUTCOMES = (
    ("ok",)
    + FAULT_KINDS
    + ("limited_requests", "limited_tokens", "bad_request", "unauthorized", "batch_ok", "batch_error")
)
BILLED = frozenset({"ok", "malformed", "truncated", "batch_ok"})

_SERVER_ERRORS = (
    (500, "The server had an error while processing your request. Sorry about that!"),
    (502, "Bad gateway."),
    (503, "The server is overloaded or not ready yet."),
)
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
        return [
            (f"x-ratelimit-limit-{unit}", str(self.limit)),
            (f"x-ratelimit-remaining-{unit}", str(max(self.limit - self.used, 0))),
            (f"x-ratelimit-reset-{unit}", format_duration(reset)),
        ]


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
        headers = (req.headers(now, "requests") if req is not None else []) + (
            tok.headers(now, "tokens") if tok is not None else []
        )
        return kind, max(wait_r, wait_t), headers


def _retry_headers(seconds: float) -> list[tuple[str, str]]:
    ms = max(1, math.ceil(seconds * 1000))
    return [("retry-after", f"{ms / 1000:.3f}".rstrip("0").rstrip(".")), ("retry-after-ms", str(ms))]


def _fault_table(faults: Mapping[str, Any] | None) -> tuple[dict[str, float], tuple[tuple[float, str], ...]]:
    """({kind: probability} for every FAULT_KIND, and the cumulative (upper bound, kind) table a draw
    in [0, 1) is looked up in). Refuses unknown kinds and probabilities outside [0, 1]."""
    faults = dict(faults or {})
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {list(FAULT_KINDS)}")
    probs = {k: float(faults.get(k) or 0.0) for k in FAULT_KINDS}
    if any(not 0.0 <= p <= 1.0 for p in probs.values()):
        raise ValueError(f"fault probabilities must lie in [0, 1]: {probs}")
    total = sum(probs.values())
    scale = 1.0 / total if total > 1.0 else 1.0  # more than 1 in all: shares kept, no clean answers
    bounds, upper = [], 0.0
    for kind in FAULT_KINDS:
        if probs[kind] > 0:
            upper += probs[kind] * scale
            bounds.append((upper, kind))
    return probs, tuple(bounds)


def _fault_of(draw: bytes, bounds: tuple[tuple[float, str], ...]) -> str:
    """The outcome the draw's first 8 bytes fall on: a fault kind, or "ok" past them all."""
    u = int.from_bytes(draw[:8], "big") / _TWO64
    for upper, kind in bounds:
        if u < upper:
            return kind
    return "ok"


def _limits(limits: Mapping[str, Any] | None, window_s: float) -> tuple[dict[str, Any], _Limiter | None]:
    """({"rpm", "tpm"} as given, and the limiter enforcing them, None when neither is set)."""
    limits = dict(limits or {})
    unknown = set(limits) - {"rpm", "tpm"}
    if unknown:
        raise ValueError(f"unknown limits {sorted(unknown)}; known: rpm, tpm")
    limiter = (
        _Limiter(limits.get("rpm"), limits.get("tpm"), window_s) if (limits.get("rpm") or limits.get("tpm")) else None
    )
    return {"rpm": limits.get("rpm"), "tpm": limits.get("tpm")}, limiter


class _Admission(NamedTuple):
    """What `_admit` decided for one chat request."""

    counter: int  # the request's number on this server
    limited: str | None  # "requests" or "tokens" when over the limits
    retry_s: float
    headers: list[tuple[str, str]]
    outcome: str  # "ok" or a fault kind
    draw: bytes  # b"" when nothing is drawn


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

    def __init__(
        self,
        teacher: SimulatedTeacher,
        latency_ms: float = 0.0,
        port: int = 0,
        model: str = "simulated",
        api_key: str | None = None,
        *,
        latency_sigma: float = 0.0,
        limits: Mapping[str, Any] | None = None,
        faults: Mapping[str, Any] | None = None,
        seed: int | None = None,
        hang_s: float = 30.0,
        batch_rows_per_s: float | None = None,
        limit_window_s: float = 60.0,
    ):
        self.teacher = teacher
        self.model = model
        self.latency_s = max(float(latency_ms), 0.0) / 1000.0
        self.latency_sigma = max(float(latency_sigma or 0.0), 0.0)
        self.seed = teacher.seed if seed is None else int(seed)
        self.hang_s = float(hang_s)
        self._seed_bytes = hashlib.sha256(f"simulated-server\0{self.seed}".encode()).digest()[:16]
        self.faults, self._fault_bounds = _fault_table(faults)
        self._draws = bool(self._fault_bounds) or self.latency_sigma > 0
        self.limits, self._limiter = _limits(limits, limit_window_s)

        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._attempts: dict[bytes, int] = {}
        self._seen = 0
        self._stats = dict.fromkeys(OUTCOMES, 0)
        self.constraint_forms: Counter = Counter()  # label constraints received, by form (protocol/choice.py)
        self.batches = BatchStore(
            self._batch_answer, self.seed, batch_rows_per_s, self._closing, failed=lambda: self._count("batch_error")
        )
        self.httpd = self._open_httpd(port, api_key)
        self._thread: threading.Thread | None = None

    def _open_httpd(self, port: int, api_key: str | None) -> HTTPServer:
        """The HTTP server, carrying what the handlers read (the owner's routes, the model name, the key)."""
        httpd = HTTPServer(("127.0.0.1", port), Handler)
        httpd.owner = self
        httpd.teacher = self.teacher
        httpd.latency_s = self.latency_s
        httpd.model = self.model
        httpd.api_key = api_key  # None accepts any bearer token
        httpd.lock = self._lock
        httpd.requests = 0  # billed
        httpd.completions = 0  # choices in billed answers
        return httpd

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

    def wait(self) -> None:
        """Block until another thread closes the server, or Ctrl-C (a KeyboardInterrupt)."""
        self._closing.wait()

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
        completion = respond(self.teacher, body, body.get("model") or self.model, counter)
        with self._lock:
            self.httpd.completions += len(completion["choices"])
        return completion

    def _chat(self, h: Handler, raw: bytes) -> None:
        request = self._parse_chat(h, raw)
        if request is not None:
            self._serve(h, request, raw)

    def _completions(self, h: Handler, raw: bytes) -> None:
        """/v1/completions: the prompt's last input answered as a chat request, written back as a
        `text_completion` (teacher.api: completions)."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            self._count("bad_request")
            h._write(400, error_body("prompt must be a string", "invalid_request_error", param="prompt"))
            return
        request = {
            **body,
            "messages": [{"role": "user", "content": input_of(body["prompt"])}],
            "logprobs": bool(body.get("logprobs")),
            "top_logprobs": int(body.get("logprobs") or 0),
            TEXT_COMPLETION: True,
        }
        self._serve(h, request, raw)

    def _serve(self, h: Handler, request: dict[str, Any], raw: bytes) -> None:
        constrained = labels_of(request)
        if constrained is not None:
            with self._lock:
                self.constraint_forms[constrained[0]] += 1
        limiter = self._limiter
        cost = (
            estimate_prompt_tokens(request["messages"]) + _max_tokens(request)
            if limiter is not None and limiter.tokens
            else 0
        )
        digest = hashlib.blake2b(raw, digest_size=16).digest() if self._draws else b""
        admitted = self._admit(cost, digest)
        headers = admitted.headers
        headers.append(("x-request-id", f"req_sim{admitted.counter:08d}"))
        if admitted.limited is not None:
            self._send_limited(h, admitted.limited, admitted.retry_s, cost, headers)
            return
        latency, v = self._latency_and_variate(admitted.draw)
        self._send_outcome(h, admitted.outcome, request, admitted.counter, latency, v, headers)

    def _parse_chat(self, h: Handler, raw: bytes) -> dict[str, Any] | None:
        """The request body, or None once a 400 is sent (not JSON, or no list of messages)."""
        try:
            request = json.loads(raw)
        except ValueError:
            self._count("bad_request")
            h._write(400, error_body("We could not parse the JSON body of your request.", "invalid_request_error"))
            return None
        messages = request.get("messages") if isinstance(request, dict) else None
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            self._count("bad_request")
            h._write(400, error_body("messages must be a non-empty list", "invalid_request_error", param="messages"))
            return None
        return request

    def _admit(self, cost: int, digest: bytes) -> _Admission:
        """Number the request, then (all under the lock, so counts and draws stay in order) either
        refuse it over the limits or draw its outcome and count it."""
        limited, retry_s, headers, outcome, draw = None, 0.0, [], "ok", b""
        with self._lock:
            self._seen += 1
            counter = self._seen
            if self._limiter is not None:
                limited, retry_s, headers = self._limiter.admit(time.monotonic(), cost)
            if limited is not None:
                self._stats["limited_" + limited] += 1
            else:
                if self._draws:
                    draw = self._draw(digest)
                    outcome = _fault_of(draw, self._fault_bounds)
                self._stats[outcome] += 1
                if outcome in BILLED:
                    self.httpd.requests += 1
        return _Admission(counter, limited, retry_s, headers, outcome, draw)

    def _draw(self, digest: bytes) -> bytes:
        """24 bytes from (seed, attempt number of this body, body digest). Call under the lock."""
        attempt = 0
        if self._fault_bounds:
            attempt = self._attempts.get(digest, 0)
            self._attempts[digest] = attempt + 1
        return hashlib.blake2b(self._seed_bytes + attempt.to_bytes(4, "big") + digest, digest_size=24).digest()

    def _latency_and_variate(self, draw: bytes) -> tuple[float, float]:
        """(seconds to wait, a uniform variate for the fault's details), from the draw's last 16 bytes."""
        latency = self.latency_s
        v = 0.0
        if self._draws:
            v = int.from_bytes(draw[8:16], "big") / _TWO64
            if self.latency_sigma > 0:
                w = min(max(int.from_bytes(draw[16:24], "big") / _TWO64, 1e-12), 1 - 1e-12)
                sigma = self.latency_sigma
                latency *= math.exp(sigma * _NORMAL.inv_cdf(w) - sigma * sigma / 2)
        return latency, v

    def _send_outcome(
        self,
        h: Handler,
        outcome: str,
        request: dict[str, Any],
        counter: int,
        latency: float,
        v: float,
        headers: list[tuple[str, str]],
    ) -> None:
        if outcome == "ok" or outcome == "truncated" or outcome == "malformed":
            self._send_completion(h, outcome, request, counter, latency, headers)
        elif outcome == "rate_limit":
            retry = 0.05 + 0.15 * v
            headers += _retry_headers(retry)
            h._write(
                429,
                error_body(
                    f"Rate limit reached for {self.model} (simulated overload). Please try again "
                    f"in {round(retry * 1000)}ms.",
                    "requests",
                    "rate_limit_exceeded",
                ),
                headers,
            )
        elif outcome == "server_error":
            status, message = _SERVER_ERRORS[min(int(v * 3), 2)]
            if latency > 0:
                time.sleep(latency)
            h._write(status, error_body(message, "server_error"), headers)
        elif outcome == "connection_reset":
            reset(h)
        else:  # timeout: hold the request, answer nothing, close
            self._closing.wait(self.hang_s)
            h.close_connection = True

    def _send_completion(
        self,
        h: Handler,
        outcome: str,
        request: dict[str, Any],
        counter: int,
        latency: float,
        headers: list[tuple[str, str]],
    ) -> None:
        """A 200 with the answer: whole ("ok"), cut short ("truncated"), or cut-off JSON ("malformed")."""
        body = respond(self.teacher, request, request.get("model") or self.model, counter)
        if outcome == "truncated":
            _truncate(body)
        if request.get(TEXT_COMPLETION):
            body = text_completion(body)
        payload = json.dumps(body).encode()
        if outcome == "malformed":
            payload = payload[: len(payload) // 2]  # cut-off JSON
        with self._lock:
            self.httpd.completions += len(body["choices"])
        if latency > 0:
            time.sleep(latency)
        headers.append(("openai-processing-ms", str(round(latency * 1000))))
        h._write(200, payload, headers)

    def _send_limited(self, h: Handler, kind: str, retry_s: float, cost: int, headers: list[tuple[str, str]]) -> None:
        window = self._limiter.requests if kind == "requests" else self._limiter.tokens
        unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
        requested = 1 if kind == "requests" else cost
        if math.isinf(retry_s):  # can never fit: a provider says so and the SDK should not retry
            message = (
                f"Request too large for {self.model} on {unit}: Limit {window.limit}, Requested {requested}. "
                f"The input or output tokens must be reduced in order to run successfully."
            )
            headers.append(("x-should-retry", "false"))
        else:
            message = (
                f"Rate limit reached for {self.model} on {unit}: Limit {window.limit}, Used {window.used}, "
                f"Requested {requested}. Please try again in {format_duration(retry_s)}."
            )
            headers += _retry_headers(retry_s)
        h._write(429, error_body(message, kind, "rate_limit_exceeded"), headers)


def _truncate(body: dict[str, Any]) -> None:
    """finish_reason "length" and the answer cut (to its first 3 characters, always shorter than the label)."""
    for choice in body["choices"]:
        label = choice["message"]["content"]
        cut = label[: max(1, min(3, len(label) - 1))]
        choice["message"]["content"], choice["finish_reason"] = cut, "length"
        if choice["logprobs"]:
            entry = choice["logprobs"]["content"][0]
            entry["token"], entry["bytes"] = cut, list(cut.encode())
