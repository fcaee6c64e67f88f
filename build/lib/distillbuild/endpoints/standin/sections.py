"""The stand-in of a spec section: its identity in cache keys and its server.

A teacher section (`teacher`, provider simulated) gets a `SimulatedTeacher`; a judge section
(`filters.judge`, `evaluation.judge`) a `SimulatedJudge`. Paths in a section's `simulated`
block are relative to `base_dir` (the spec's directory).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from distillbuild.endpoints.standin.judge import JUDGE_BEHAVIOUR_VERSION, SimulatedJudge
from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import BEHAVIOUR_VERSION, SimulatedTeacher, load_answer_key
from distillbuild.protocol.prompts import reasoning_instruction
from distillbuild.spec.model import Judge, Teacher


def _mapping(section: Any) -> dict[str, Any] | None:
    """A typed block (limits, faults) as the mapping the server takes; None stays None."""
    return asdict(section) if section is not None else None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _tokenizer_digest(tokenizer: str, base_dir: Path) -> str:
    """The tokenizer's files (a local directory), else its name: the stand-in's token ids are its."""
    path = (base_dir / tokenizer).resolve()
    files = sorted(path.glob("tokenizer*.json")) if path.is_dir() else []
    return _digest(b"".join(f.read_bytes() for f in files) or tokenizer.encode())


def teacher_endpoint_id(section: Teacher, base_dir: Path) -> str:
    """Stable across runs (the server's port is not): the key file's content and the stand-in's settings."""
    sim = section.simulated
    digest = _digest((base_dir / sim.answers).resolve().read_bytes())
    identity = f"simulated-v{BEHAVIOUR_VERSION}:{digest}:accuracy={sim.accuracy}:seed={sim.seed}"
    if sim.reasoning:  # a reasoning model's stand-in answers differently
        identity += ":reasoning"
    tokenizer = section.tokenizer
    if section.token_ids and tokenizer:
        identity += f":tokenizer={_tokenizer_digest(tokenizer, base_dir)}"
    return identity


def judge_endpoint_id(section: Judge, base_dir: Path) -> str:
    """Stable across runs (the server's port is not): the key file's content and the stand-in's settings."""
    sim = section.simulated
    digest = _digest((base_dir / sim.answers).resolve().read_bytes())
    return f"simulated-judge-v{JUDGE_BEHAVIOUR_VERSION}:{digest}:accuracy={sim.accuracy}:seed={sim.seed}"


def teacher_server(
    section: Teacher, base_dir: Path, labels: Sequence[str] = (), port: int = 0, **overrides: Any
) -> SimulatedTeacherServer:
    """The stand-in of a teacher section; `overrides` (hang_s, batch_rows_per_s, ...) win."""
    sim = section.simulated
    key = load_answer_key((base_dir / sim.answers).resolve())
    tokenizer = section.tokenizer
    if tokenizer and (base_dir / tokenizer).resolve().is_dir():  # a local tokenizer: by absolute path
        tokenizer = str((base_dir / tokenizer).resolve())
    reasoning = section.reasoning
    explain = reasoning_instruction(reasoning) if reasoning is not None and reasoning.mode == "explain" else None
    teacher = SimulatedTeacher(
        key,
        list(labels),
        sim.accuracy,
        sim.seed,
        tokenizer=tokenizer,
        reasoning=bool(sim.reasoning),
        explain_instruction=explain,
    )
    # The server takes its limits and faults as mappings.
    kwargs: dict[str, Any] = dict(
        latency_ms=sim.latency_ms or 0.0,
        port=port,
        model=section.model,
        latency_sigma=sim.latency_sigma or 0.0,
        limits=_mapping(sim.limits),
        faults=_mapping(sim.faults),
        seed=sim.seed,
    )
    kwargs.update(overrides)
    return SimulatedTeacherServer(teacher, **kwargs)


def judge_server_from_section(
    section: Judge, base_dir: Path, port: int = 0, **overrides: Any
) -> SimulatedTeacherServer:
    """The stand-in of a judge section (filters.judge or evaluation.judge with provider: simulated)."""
    sim = section.simulated
    judge = SimulatedJudge(load_answer_key((base_dir / sim.answers).resolve()), sim.accuracy, sim.seed)
    kwargs: dict[str, Any] = dict(
        latency_ms=sim.latency_ms or 0.0,
        port=port,
        model=section.model,
        latency_sigma=sim.latency_sigma or 0.0,
        seed=sim.seed,
    )
    kwargs.update(overrides)
    return SimulatedTeacherServer(judge, **kwargs)
