"""A local teacher: a GGUF model served by llama.cpp (`llama-cpp-python[server]`) on 127.0.0.1.

The teacher stage starts it, waits until it answers `/v1/models`, talks to it through the same
OpenAI SDK client as any endpoint, and stops it. Its identity in cache keys is the model file's
content hash and the llama-cpp-python version (a new build may answer differently), never the
port. The model file is resolved by distillbuild.spec.model_files (a path, or a file inside a package).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from distillbuild.endpoints.child import ChildServer, free_port
from distillbuild.errors import StageError
from distillbuild.io import file_sha256

INSTALL_HINT = (
    "install the server with `pip install 'llama-cpp-python[server]==0.3.36'` (it compiles llama.cpp: "
    "about 20 minutes on 2 cores, once per machine; set CMAKE_ARGS=-DGGML_NATIVE=OFF for a portable wheel)"
)


def server_version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def endpoint_id(model_file: Path, chat_format: str | None = None) -> str:
    """Stable across runs and ports: the model's bytes, the server's version and the chat format
    it is served with (another format is another prompt)."""
    digest = file_sha256(model_file)[:16]
    return f"llamacpp-{server_version() or 'unknown'}:{digest}" + (f":{chat_format}" if chat_format else "")


def has_chat_template(model_file: Path) -> bool | None:
    """Does the GGUF carry `tokenizer.chat_template`? None when it cannot be read here (the
    `gguf` package, which `make install-llm` installs, is missing, or the file is not a GGUF).
    Without one, llama-cpp-python's server falls back to the Llama-2 `[INST] <<SYS>>` format."""
    try:
        from gguf import GGUFReader  # lazy: only a llama.cpp teacher needs it
    except ImportError:
        return None
    try:
        return "tokenizer.chat_template" in GGUFReader(str(model_file)).fields
    except (OSError, ValueError):
        return None


class LlamaCppServer(ChildServer):
    """`python -m llama_cpp.server` for one model, on a free port of 127.0.0.1, until close()."""

    what = "the llama.cpp server"
    timeout_hint = "teacher.llamacpp.startup_timeout_s"

    def __init__(
        self,
        model_file: Path,
        alias: str,
        *,
        n_ctx: int,
        threads: int,
        startup_timeout_s: float,
        endpoint_id: str,
        timeout_hint: str = "teacher.llamacpp.startup_timeout_s",
        chat_format: str | None = None,
    ):
        self.timeout_hint = timeout_hint
        if server_version() is None or importlib.util.find_spec("llama_cpp") is None:
            raise StageError(f"a llama.cpp server needs llama-cpp-python in this environment: {INSTALL_HINT}")
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_file),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(threads),
        ]
        if chat_format:
            command += ["--chat_format", chat_format]
        super().__init__(command, port, "/v1/models", startup_timeout_s, endpoint_id)
