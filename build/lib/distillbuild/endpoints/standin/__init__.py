"""Local stand-in servers: OpenAI-compatible endpoints that run offline (tests, the quickstart).

Callers outside this package start one only through `start_endpoint`, which returns an
`Endpoint`: the base URL to send requests to and the endpoint's stable identity in cache keys
(never its port, which changes from run to run). `endpoint_id` gives that identity without
starting anything (`distill estimate`). A `kind` names what the section describes: "teacher"
(a teacher section) or "judge" (filters.judge, evaluation.judge); other local servers (a
llama.cpp teacher, a student server) are further kinds behind the same two functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from distillbuild.endpoints.standin.sections import (
    judge_endpoint_id,
    judge_server_from_section,
    teacher_endpoint_id,
    teacher_server,
)
from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.spec.model import Judge, Teacher

KINDS = ("teacher", "judge")


class Endpoint:
    """A running local server: `with start_endpoint(...) as ep: ... ep.base_url ...`."""

    def __init__(self, server: SimulatedTeacherServer, endpoint_id: str):
        self.server = server  # the server itself, for its request counts
        self.endpoint_id = endpoint_id
        self.base_url = server.base_url

    def wait(self) -> None:
        """Serve in the foreground until interrupted (Ctrl-C): `distill serve-teacher`."""
        self.server.wait()

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> "Endpoint":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown stand-in kind {kind!r}; known: {', '.join(KINDS)}")


def endpoint_id(section: Teacher | Judge, base_dir: Path, *, kind: str = "teacher") -> str:
    """The identity in cache keys of the stand-in `start_endpoint` would start for this section."""
    _check(kind)
    return teacher_endpoint_id(section, base_dir) if kind == "teacher" else judge_endpoint_id(section, base_dir)


def start_endpoint(
    section: Teacher | Judge,
    base_dir: Path,
    *,
    kind: str = "teacher",
    labels: Sequence[str] = (),
    port: int = 0,
    **overrides: Any,
) -> Endpoint:
    """Start the stand-in of a spec section (provider: simulated) on 127.0.0.1.

    section: the teacher or judge section, with the spec's defaults; base_dir: the directory its
    paths are relative to; labels: the task's labels (a teacher's); port 0: any free port;
    overrides: server settings that win over the section's (latency_ms, limits, faults, api_key,
    hang_s, batch_rows_per_s, ...). OSError when the port is taken."""
    identity = endpoint_id(section, base_dir, kind=kind)
    if kind == "teacher":
        server = teacher_server(section, base_dir, labels, port, **overrides)
    else:
        server = judge_server_from_section(section, base_dir, port, **overrides)
    return Endpoint(server.start(), identity)
