"""What a build was made of: content hashes of the spec, data, teacher answers, dataset, model
and metrics, plus the git revision. The gate records it; `promote` tags it; an auditor (or
`distill reproduce`) compares it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from distillbuild import io, layout
from distillbuild.spec import Spec


def file_sha256(path: Path) -> str | None:
    return io.file_sha256(path) if path.is_file() else None


def tree_sha256(path: Path) -> str | None:
    """One hash for a directory: its files' relative paths and contents, in sorted order."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + (file_sha256(file) or "").encode() + b"\n")
    return digest.hexdigest()


def git_revision(cwd: Path) -> tuple[str | None, bool]:
    """(HEAD's commit, whether tracked files differ from it)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip() != ""
        return rev, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, False


def lineage(spec: Spec) -> dict[str, Any]:
    base = spec.dir
    answers = base / layout.TEACHER_ANSWERS
    fingerprints = set()
    if answers.exists():  # from the answers, not the run report: a rerun from cache must not change lineage
        with answers.open(encoding="utf-8") as fh:
            fingerprints = {json.loads(line).get("system_fingerprint") for line in fh if line.strip()}
    rev, dirty = git_revision(base)
    teacher = spec.teacher
    data = {"inputs": spec.data_files.inputs, "heldout": spec.data_files.heldout}
    return {
        "spec": spec.path.name,
        "spec_sha256": spec.sha256,
        "git_revision": rev,
        "git_dirty": dirty,
        "data_sha256": {k: file_sha256(spec.resolve(v)) for k, v in data.items()},
        "teacher": {
            "provider": teacher.provider,
            "model": teacher.model,
            "base_url": teacher.base_url,
            "simulated": teacher.provider == "simulated",
            "system_fingerprints": sorted(f for f in fingerprints if f),
            "terms": teacher.terms,
            "answers_sha256": file_sha256(base / layout.TEACHER_ANSWERS),
            "heldout_answers_sha256": file_sha256(base / layout.TEACHER_HELDOUT),
        },
        "dataset_sha256": tree_sha256(base / layout.DATASET_DIR),
        "model_sha256": tree_sha256(base / layout.MODEL_DIR),
        "metrics_sha256": file_sha256(base / layout.METRICS),
    }
