"""A local teacher: a GGUF model served by llama.cpp (`llama-cpp-python[server]`) on 127.0.0.1.

The teacher stage starts it, waits until it answers `/v1/models`, talks to it through the same
OpenAI SDK client as any endpoint, and stops it. Its identity in cache keys is the model file's
content hash and the llama-cpp-python version (a new build may answer differently), never the
port. The model file is resolved by distillbuild.spec.model_files (a path, or a file inside a package).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from distillbuild.errors import StageError
from distillbuild.io import file_sha256

INSTALL_HINT = ("install the server with `pip install 'llama-cpp-python[server]==0.3.36'` (it compiles llama.cpp: "
                "about 20 minutes on 2 cores, once per machine; set CMAKE_ARGS=-DGGML_NATIVE=OFF for a portable wheel)")


def server_version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def endpoint_id(model_file: Path) -> str:
    """Stable across runs and ports: the model's bytes and the server's version."""
    digest = file_sha256(model_file)[:16]
    return f"llamacpp-{server_version() or 'unknown'}:{digest}"


def _die_with_parent() -> None:
    """In the server's process, before it starts: on Linux, ask for SIGTERM when the stage dies,
    so a stage killed with -9 leaves no server behind (elsewhere close() is the only stop)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """`python -m llama_cpp.server` for one model, on a free port of 127.0.0.1, until close()."""

    def __init__(self, model_file: Path, alias: str, *, n_ctx: int, threads: int, startup_timeout_s: float,
                 endpoint_id: str):
        if server_version() is None or importlib.util.find_spec("llama_cpp") is None:
            raise StageError(f"a llama.cpp server needs llama-cpp-python in this environment: {INSTALL_HINT}")
        self.endpoint_id, self.port = endpoint_id, _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._log = tempfile.TemporaryFile(mode="w+")  # the server's own output, shown if it fails
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file), "--model_alias", alias,
                   "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent)
        try:
            self._wait_until_up(startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_until_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StageError(f"the llama.cpp server exited with code {self.process.returncode} while starting: "
                                 f"{self.output_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    json.loads(response.read())
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                time.sleep(0.25)
        raise StageError(f"the llama.cpp server did not answer within {timeout_s:.0f} s "
                         f"(teacher.llamacpp.startup_timeout_s): {self.output_tail()}")

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

    def __enter__(self) -> "LlamaCppServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
