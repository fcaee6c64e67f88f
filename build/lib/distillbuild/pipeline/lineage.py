"""What a build was made of: content hashes of the spec, data, teacher answers, dataset, model
and metrics, plus the git revision. The gate records it; `promote` tags it; an auditor (or
`distill reproduce`) compares it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from distillbuild import git, io, layout
from distillbuild.io import tree_sha256
from distillbuild.spec import Spec


def file_sha256(path: Path) -> str | None:
    return io.file_sha256(path) if path.is_file() else None


def spec_params(spec: Spec, keys: tuple[str, ...]) -> dict[str, Any]:
    """The spec as the stages see it: each declared key's value (defaults filled in)."""
    return {key: spec.get(key) for key in keys}


def params_sha256(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def lineage(spec: Spec, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """`keys`: the spec keys the pipeline's stages declare (the gate's params). Their values are
    what `distill promote` compares: an edit that no stage reads leaves the record current, as
    it leaves `dvc status` clean."""
    base = spec.dir
    answers = base / layout.TEACHER_ANSWERS
    fingerprints = set()
    if answers.exists():  # from the answers, not the run report: a rerun from cache must not change lineage
        with answers.open(encoding="utf-8") as fh:
            fingerprints = {json.loads(line).get("system_fingerprint") for line in fh if line.strip()}
    # Uncommitted changes to what the build is made from: the build's own records (dvc.lock, the
    # files under build/, which DVC rewrites or removes while it runs) are not among them.
    rev, dirty = git.revision(base, apart_from=("dvc.lock", layout.BUILD))
    teacher = spec.teacher
    data = {"inputs": spec.data_files.inputs, "heldout": spec.data_files.heldout}
    return {
        "spec": spec.path.name,
        "spec_sha256": spec.sha256,
        "spec_params_sha256": params_sha256(spec_params(spec, keys)),
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
            **({"pipeline": pipeline_teacher(spec)} if teacher.pipeline is not None else {}),
        },
        "dataset_sha256": tree_sha256(base / layout.DATASET_DIR),
        "model_sha256": tree_sha256(base / layout.MODEL_DIR),
        "metrics_sha256": file_sha256(base / layout.METRICS),
    }


def pipeline_teacher(spec: Spec) -> dict[str, Any]:
    """The teacher pipeline (progressive distillation): which student taught this one, and, from
    its own gate's record, who taught it (the chain, nested)."""
    from distillbuild.endpoints.open import upstream_spec  # lazy: opens nothing, but imports the servers

    upstream = upstream_spec(spec.teacher, spec.dir)
    decision = upstream.dir / layout.DECISION
    recorded = (io.read_json(decision).get("lineage") or {}) if decision.is_file() else {}
    return {
        "name": upstream.registry_name,
        "spec": Path(os.path.relpath(upstream.path, spec.dir)).as_posix(),
        "version": spec.teacher.pipeline.version,
        "student_kind": upstream.student.kind,
        "base_model": upstream.student.base_model,
        "model_sha256": tree_sha256(upstream.dir / layout.MODEL_DIR),
        "teacher": recorded.get("teacher"),
    }


def teacher_chain(teacher: dict[str, Any]) -> list[str]:
    """The teachers from the first to this build's, as `provider:model` or a pipeline's name."""
    chain: list[str] = []
    while teacher:
        upstream = teacher.get("pipeline")
        if not upstream:
            chain.append(f"{teacher.get('provider')}:{teacher.get('model')}")
            break
        chain.append(
            f"{upstream['name']}"
            + (f"@{upstream['version'].split('@')[-1]}" if upstream.get("version") else "")
            + f" ({upstream.get('student_kind')} {upstream.get('base_model')})"
        )
        teacher = upstream.get("teacher")
    return list(reversed(chain))
