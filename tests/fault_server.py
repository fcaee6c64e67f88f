"""An OpenAI-compatible Chat Completions server that misbehaves on purpose, written apart from the
project's stand-in so that a test of the teacher does not grade itself.

Each request draws one outcome from a seeded generator: a 429 (with retry-after-ms), a 5xx, a
200 whose body is not JSON, a 200 cut off mid-body (its Content-Length promises more than is
sent before the connection closes), a dropped connection (closed before any response), or a
good answer. The server counts every outcome, in total and per prompt, so a test can check the
client's report against what was actually served and paid for.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAID = ("ok", "malformed", "truncated")  # 200s: a provider charges for them whatever the client makes of them


class FaultServer:
    def __init__(self, labels: list[str], faults: dict[str, float], seed: int = 0):
        self.labels, self.faults = labels, faults
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.by_prompt: dict[str, Counter[str]] = defaultdict(Counter)
        self.usage = Counter()  # tokens of the good answers

    def outcome(self) -> str:
        with self.lock:
            draw = self.random.random()
        for kind, share in self.faults.items():
            if draw < share:
                return kind
            draw -= share
        return "ok"

    def answer(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        prompt = body["messages"][-1]["content"]
        label = self.labels[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(self.labels)]
        usage = {"prompt_tokens": len(prompt) // 4 + 10, "completion_tokens": 2, "total_tokens": len(prompt) // 4 + 12}
        return prompt, {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fault"),
            "system_fingerprint": "fp_fault",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": label}, "finish_reason": "stop"}],
            "usage": usage,
        }

    def record(self, prompt: str, kind: str, usage: dict[str, int] | None = None) -> None:
        with self.lock:
            self.served[kind] += 1
            self.by_prompt[prompt][kind] += 1
            if usage:
                self.usage.update({k: usage[k] for k in ("prompt_tokens", "completion_tokens")})

    def __enter__(self) -> "FaultServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt, answer = server.answer(body)
                kind = server.outcome()
                server.record(prompt, kind, answer["usage"] if kind == "ok" else None)
                if kind == "dropped":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if kind == "rate_limit":
                    refusal = {"error": {"message": "slow down", "type": "rate_limit"}}
                    self.send_json(429, refusal, {"retry-after-ms": "20"})
                elif kind == "server_error":
                    self.send_json(503, {"error": {"message": "overloaded", "type": "server_error"}})
                elif kind == "malformed":
                    self.send_bytes(200, b"<html>upstream proxy error</html>")
                elif kind == "truncated":
                    payload = json.dumps(answer).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                else:
                    self.send_json(200, answer)

            def send_json(self, status: int, doc: dict, headers: dict[str, str] | None = None) -> None:
                self.send_bytes(status, json.dumps(doc).encode(), headers, "application/json")

            def send_bytes(
                self, status: int, payload: bytes, headers: dict[str, str] | None = None, kind: str = "text/html"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
