"""The diff report: the parts put together, JSON-able."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillbuild import git
from distillbuild.errors import SpecError, StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.compile import dvc_yaml_path, render
from distillbuild.review.diff.cost import teacher_cost
from distillbuild.review.diff.git_side import blob, blob_at, repo_root, resolve_rev
from distillbuild.review.diff.markdown import code
from distillbuild.review.diff.metrics import metrics_diff
from distillbuild.review.diff.spec_changes import change_record, semantic_diff
from distillbuild.review.diff.stages import reads, stage_analysis
from distillbuild.spec import load_spec
from distillbuild.spec.loader import MAX_SPEC_BYTES, load_yaml_text


def diff_report(spec_path: Path, base_rev: str = "HEAD") -> dict[str, Any]:
    """What the change from `base_rev` to the working tree does to the pipeline of `spec_path`.

    Raises StageError for a path outside git, an unknown revision; SpecError when the working
    tree's spec is invalid. A spec absent at `base_rev` is a new pipeline: every stage builds.
    """
    spec_path = Path(spec_path)
    if not spec_path.exists():
        raise StageError(f"{spec_path}: no such spec in the working tree")
    root = repo_root(spec_path.resolve().parent)
    commit = resolve_rev(root, base_rev)
    spec = load_spec(spec_path)
    try:
        rel = spec.path.relative_to(root).as_posix()
    except ValueError:
        raise StageError(f"{spec.path} is outside the git repository at {root}") from None

    base_raw, notes = _base_spec(root, commit, rel, base_rev)
    new_pipeline = base_raw is None
    changes = [change_record(k, o, n) for k, o, n in semantic_diff(base_raw or {}, spec.raw)]
    records, files = stage_analysis(spec, changes, root, commit, new_pipeline)
    if not new_pipeline:
        notes += _unread_keys_note(changes)
    return {
        "spec": rel,
        "name": spec.name,
        "base": {"rev": base_rev, "commit": commit, "spec_present": not new_pipeline},
        "new_pipeline": new_pipeline,
        "changes": changes,
        "data_files": files,
        "stages": records,
        "dvc_yaml": _dvc_yaml_state(spec, root),
        "teacher": teacher_cost(spec, {s["stage"] for s in records if s["rebuilds"]}),
        "metrics": metrics_diff(spec, commit, base_rev),
        "notes": notes,
    }


def _base_spec(root: Path, commit: str, rel: str, base_rev: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The spec as written at the base (None: a new pipeline), and notes on why it is absent."""
    if blob_at(root, commit, rel) is None:
        return None, [f"{code(rel)} does not exist at {code(base_rev)}: a new pipeline, every stage builds."]
    size = int(git.out_or_none(root, "cat-file", "-s", f"{commit}:{rel}") or 0)
    if size > MAX_SPEC_BYTES:
        return None, [
            f"{code(rel)} at {code(base_rev)} is over {MAX_SPEC_BYTES:,} bytes and was not read: "
            "treated as a new pipeline."
        ]
    written = blob(root, commit, rel)
    try:
        base_raw = load_yaml_text(written.decode("utf-8"), f"{rel}@{base_rev}").data
        if not isinstance(base_raw, dict):
            raise ValueError("its top level is not a mapping")
    except (SpecError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, [
            f"{code(rel)} at {code(base_rev)} could not be read ({code(first[:160])}): treated as a new pipeline."
        ]
    return base_raw, []


def _unread_keys_note(changes: list[dict[str, Any]]) -> list[str]:
    unread = [c["key"] for c in changes if not any(reads(c["key"], k) for st in stage_list.PIPELINE for k in st.reads)]
    if not unread:
        return []
    one = len(unread) == 1
    return [
        ", ".join(code(k) for k in unread)
        + (" is" if one else " are")
        + f" read by no stage: nothing rebuilds for {'it' if one else 'them'}."
    ]


def _dvc_yaml_state(spec: Any, root: Path) -> dict[str, Any]:
    target = dvc_yaml_path(spec)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    return {"path": target.relative_to(root).as_posix(), "stale": current != render(spec), "missing": current is None}
