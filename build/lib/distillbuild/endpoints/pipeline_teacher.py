"""Another pipeline's student as a teacher (teacher.provider: pipeline), for progressive
distillation: teacher -> mid-size student -> small student.

The teacher stage starts `distill serve` for that pipeline's spec (the student alone, without its
route) as a child process, asks it through the OpenAI SDK like any endpoint, and stops it. Its
identity in cache keys is the content of what it serves (the trained model, and the export when
there is one), so a rebuilt upstream student is a new teacher. A pinned version is checked
against the lineage `distill promote` recorded in the tag.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distillbuild import git, layout
from distillbuild.endpoints.child import ChildServer, free_port
from distillbuild.errors import StageError
from distillbuild.io import tree_sha256


def served_dirs(upstream_dir: Path) -> list[Path]:
    """What `distill serve` loads for that pipeline: its model and, when built, its export."""
    return [d for d in (upstream_dir / layout.MODEL_DIR, upstream_dir / layout.EXPORT_DIR) if d.is_dir()]


def endpoint_id(name: str, upstream_dir: Path) -> str:
    dirs = served_dirs(upstream_dir)
    if not dirs:
        raise StageError(
            f"the teacher pipeline {name} has no built student in {upstream_dir / layout.MODEL_DIR}: "
            f"run `dvc repro` there first"
        )
    return f"pipeline:{name}:" + "+".join((tree_sha256(d) or "")[:16] for d in dirs)


def check_version(upstream_dir: Path, version: str) -> str:
    """The model hash tag `version` recorded for that pipeline, which its built model must have."""
    top = git.toplevel(upstream_dir)
    if top is None:
        raise StageError(f"teacher.pipeline.version {version}: {upstream_dir} is not in a git repository")
    relative = (upstream_dir.resolve() / layout.DECISION).relative_to(top).as_posix()
    shown = git.call(upstream_dir, "show", f"{version}:{relative}")
    if shown.returncode != 0:
        raise StageError(
            f"teacher.pipeline.version {version}: no such promoted version of {upstream_dir} "
            f"({shown.stderr.strip().splitlines()[-1] if shown.stderr.strip() else 'git show failed'}); "
            "`git tag --list` shows the versions `distill promote` made"
        )
    recorded = (json.loads(shown.stdout).get("lineage") or {}).get("model_sha256")
    built = tree_sha256(upstream_dir / layout.MODEL_DIR)
    if recorded != built:
        raise StageError(
            f"teacher.pipeline.version {version}: the model built in {upstream_dir / layout.MODEL_DIR} "
            f"(sha256 {str(built)[:16]}) is not the one {version} recorded ({str(recorded)[:16]}); "
            f"check that version out there (`distill reproduce {version}`) or change the version"
        )
    return recorded


class PipelineServer(ChildServer):
    """`distill serve SPEC --no-route` on a free port of 127.0.0.1, until close()."""

    what = "the teacher pipeline's `distill serve`"
    timeout_hint = "teacher.pipeline.startup_timeout_s"

    def __init__(self, upstream_spec: Path, *, startup_timeout_s: float, endpoint_id: str):
        port = free_port()
        command = [sys.executable, "-m", "distillbuild", "serve", str(upstream_spec), "--port", str(port), "--no-route"]
        super().__init__(command, port, "/ready", startup_timeout_s, endpoint_id)  # ready: its model loaded
