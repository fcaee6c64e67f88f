"""The stand-in servers' HTTP layer: routes, one-write responses, OpenAI's error bodies.

The handler parses and routes; what a route does is the owning server's (`server.owner`):
Chat Completions to `owner._chat`, Files and Batches to `owner.batches`.
"""

from __future__ import annotations

import json
import socket
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs

from distillbuild.endpoints.standin.batch import ApiError

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK expects
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each keep-alive request
    server: "HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _write(
        self, status: int, raw: bytes, headers: Iterable[tuple[str, str]] = (), content_type: str = "application/json"
    ) -> None:
        """Status line, headers and body in one write (one syscall, no Nagle/delayed-ACK stall)."""
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(raw)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + raw)

    def _send(
        self, status: int, body: Any, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    ) -> None:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        self._write(status, json.dumps(body).encode(), items)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._write(status, error_body(message, kind))

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
            self._write(401, error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
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
            self._send(
                200,
                {"object": "list", "data": [{"id": self.server.model, "object": "model", "owned_by": "distillbuild"}]},
            )
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
        if self.path.endswith("/v1/completions") and hasattr(self.server.owner, "_completions"):
            self.server.owner._completions(self, raw)
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


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def reset(h: Handler) -> None:
    """Close the connection with no response; SO_LINGER 0 makes it a real RST."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    h.connection.close()  # the real close (RST) happens as the handler's files close
