"""What a run measured, kept apart from what it built.

A stage's report mixes two kinds of fact: what follows from its inputs (rows kept, accuracy, the
model's bytes) and what this machine measured at this moment (seconds, latency, calls paid and
answers taken from the cache, the CPU). DVC hashes every output, so the second kind would make
each rebuild of unchanged inputs rewrite `dvc.lock`, and a reviewer could not tell a real change
from noise. `write_report` writes the first kind to the report, a DVC output, and the second
under `.distill/runs/` (beside the teacher cache: this machine's state, never committed, never
hashed), at the report's path in the repository. `read_report`, for what shows a build to a
person, gives both; what decides reads the measured figures it needs (`read_measured`), knowing
they are this machine's. A run file records the hash of the report it measured, so figures of
an older run are never shown beside a newer report (after `git checkout`, say).

Measured keys are dotted paths into the report (`judge.calls`); `read_report` merges them back.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Iterable

from distillbuild import git, layout
from distillbuild.io import read_json_or_none, write_json


def run_path(report: Path) -> Path:
    """Where a report's measured facts go: <repo>/.distill/runs/<the report's path in the repo>."""
    absolute = report.absolute()
    root = git.repo_root(absolute.parent if absolute.parent.exists() else Path.cwd())
    inside = absolute.relative_to(root) if absolute.is_relative_to(root) else Path(*absolute.parts[1:])
    return root / layout.RUNS_DIR / inside


def split(report: dict[str, Any], measured: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what was built, what was measured): the measured dotted keys moved out of a copy."""
    built, found = copy.deepcopy(report), {}
    for dotted in measured:
        *parents, name = dotted.split(".")
        node = built
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            into = found
            for part in parents:
                into = into.setdefault(part, {})
            into[name] = node.pop(name)
    return built, found


def write_report(path: Path, report: dict[str, Any], measured: Iterable[str]) -> dict[str, Any]:
    """Write `report` to `path` without its measured keys, and those to `run_path(path)`.
    Returns what went to `path`."""
    built, found = split(report, measured)
    write_json(path, built)
    write_json(run_path(path), {"report_sha256": _sha256(path), "measured": found})
    return built


def read_measured(path: Path) -> dict[str, Any]:
    """The measured facts of a report: {} when this machine has not run the stage that wrote it,
    or when the report is not the one they were measured with."""
    run = read_json_or_none(run_path(path)) or {}
    return run.get("measured") or {} if path.is_file() and run.get("report_sha256") == _sha256(path) else {}


def read_report(path: Path) -> dict[str, Any] | None:
    """A report with its measured facts merged back (None when the report is not there)."""
    report = read_json_or_none(path)
    return None if report is None else merged(report, read_measured(path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def merged(report: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    out = dict(report)
    for key, value in measured.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
