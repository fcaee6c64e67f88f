"""A server the stage starts as a child process on 127.0.0.1, waits for, and stops: llama.cpp
for a GGUF, or `distill serve` for another pipeline's student. The child dies with the stage
(PR_SET_PDEATHSIG on Linux), so a stage killed with -9 leaves no server behind."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from distillbuild.errors import StageError


def _die_with_parent() -> None:
    """In the child, before it starts: ask for SIGTERM when the parent dies (Linux; elsewhere
    close() is the only stop)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildServer:
    """`command` (which must listen on self.port) until close(); ready when GET `ready_path` answers JSON."""

    what = "the server"  # for messages: "the llama.cpp server"
    timeout_hint = ""  # the spec key that sets the startup timeout, if any

    def __init__(self, command: list[str], port: int, ready_path: str, startup_timeout_s: float, endpoint_id: str):
        self.endpoint_id, self.port = endpoint_id, port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._ready_url = f"http://127.0.0.1:{port}{ready_path}"
        self._log = tempfile.TemporaryFile(mode="w+")  # the child's own output, shown if it fails
        try:
            self.process = subprocess.Popen(
                command,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._log.close()
            raise StageError(f"{self.what} could not be started: {exc}") from None
        try:
            self._wait_until_up(startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_until_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StageError(
                    f"{self.what} exited with code {self.process.returncode} while starting: {self.output_tail()}"
                )
            try:
                with urllib.request.urlopen(self._ready_url, timeout=2) as response:
                    json.loads(response.read())
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                time.sleep(0.25)
        hint = f" ({self.timeout_hint})" if self.timeout_hint else ""
        raise StageError(f"{self.what} did not answer within {timeout_s:.0f} s{hint}: {self.output_tail()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def output_tail(self, lines: int = 6) -> str:
        self._log.seek(0)
        tail = [ln.strip() for ln in self._log.read().splitlines() if ln.strip()][-lines:]
        return " | ".join(tail) or "(no output)"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
