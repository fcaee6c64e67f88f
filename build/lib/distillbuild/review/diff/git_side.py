"""The git side of `distill diff`: the repository's root, the base revision, a file at it."""

from __future__ import annotations

from pathlib import Path

from distillbuild import git
from distillbuild.errors import StageError

WHY = "distill diff compares the spec with a git revision"


def repo_root(start: Path) -> Path:
    top = git.toplevel(start)
    if top is None:
        raise StageError(f"{start} is not in a git repository: {WHY}")
    return top


def resolve_rev(root: Path, rev: str) -> str:
    if not rev.strip() or rev.startswith("-") or any(c in rev for c in "\n\r\0"):
        raise StageError(f"{rev!r} is not a git revision")
    commit = git.out_or_none(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not commit:
        hint = ""
        if git.out_or_none(root, "rev-parse", "--is-shallow-repository") == "true":
            hint = " (this clone is shallow: fetch the history, e.g. actions/checkout with fetch-depth: 0)"
        elif "/" in rev:
            hint = f" (fetch it first: git fetch {rev.split('/', 1)[0]})"
        raise StageError(f"unknown revision {rev!r}: no such commit, branch or tag in {root}{hint}")
    return commit


def blob_at(root: Path, commit: str, rel: str) -> str | None:
    """The object id of `rel` (repository-relative, POSIX) at `commit`, or None where absent."""
    return git.out_or_none(root, "rev-parse", "--verify", "--quiet", f"{commit}:{rel}") or None


def blob(root: Path, commit: str, rel: str) -> bytes:
    """The bytes of `rel` at `commit`."""
    return git.call(root, "cat-file", "blob", f"{commit}:{rel}", binary=True).stdout
