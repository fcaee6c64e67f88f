"""The OpenAI wire protocol in front of a Router, on 127.0.0.1 (stdlib ThreadingHTTPServer).

POST /v1/chat/completions answers the last user message with a label: `model` names the model
that answered (the student, or the teacher the route sent it to), `logprobs` (when asked for)
are the student's over the labels, and `distill` says whether the request was routed and the
student's confidence. GET /health and GET /metrics (requests, answers by model, share routed,
latency) for whoever runs it; GET /v1/models lists the student. A request the teacher could not
answer gets 502 with the reason; one the student could not (its llama.cpp stopped), 500.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from distillbuild.protocol.prompts import prompt_text
from distillbuild.serve.router import Router, TeacherUnavailable


def completion(answer, want_logprobs: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": answer.content},
        "finish_reason": "stop",
        "logprobs": None,
    }
    # The student's own distribution over the labels; a teacher's answer, or words naming no label, have none here.
    if want_logprobs and not answer.routed and answer.label in answer.probabilities:
        top = [
            {"token": label, "logprob": math.log(p) if p > 0 else -1e9, "bytes": None}
            for label, p in sorted(answer.probabilities.items(), key=lambda kv: -kv[1])
        ]
        chosen = next(t for t in top if t["token"] == answer.label)
        choice["logprobs"] = {"content": [{**chosen, "top_logprobs": top}]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [choice],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "distill": {"routed": answer.routed, "student_confidence": round(answer.confidence, 6)},
    }


def make_handler(router: Router, health: dict[str, Any]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: /metrics counts what matters
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            path = self.path.rstrip("/")
            if path == "/health":
                self._send(200, {"status": "ok", **health})
            elif path == "/metrics":
                self._send(200, router.metrics())
            elif path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": router.student_name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}", "not_found")
                return
            started = time.perf_counter()
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                text = prompt_text(body.get("messages") or [])
            except (ValueError, AttributeError):
                self._error(400, "the body must be a chat completion request with messages", "invalid_request_error")
                return
            if not text.strip():
                self._error(400, "no user message to answer", "invalid_request_error")
                return
            try:
                answer = router.answer(text)
            except TeacherUnavailable as exc:
                self._error(502, str(exc), "teacher_unavailable")
                return
            except Exception as exc:  # noqa: BLE001 - the student failed (its llama.cpp died, its endpoint timed out)
                self._error(500, f"the student could not answer: {type(exc).__name__}: {exc}", "student_error")
                return
            finally:
                router.record((time.perf_counter() - started) * 1000)
            self._send(200, completion(answer, bool(body.get("logprobs"))))

    return Handler


class Server:
    """The endpoint on 127.0.0.1:port (0: a free one), in a background thread until close()."""

    def __init__(self, router: Router, health: dict[str, Any], port: int = 0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(router, health))
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
