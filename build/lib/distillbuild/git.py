"""git, as every part of distillbuild calls it: one subprocess wrapper (no terminal prompt, the C
locale, a timeout), failures as StageError naming the command, and where a repository's root is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from distillbuild.errors import StageError

TIMEOUT_S = 120


def call(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    """`git ARGS` in `cwd`, whatever its exit status (text, or bytes with `binary`); StageError
    when git is missing or hangs."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary, timeout=TIMEOUT_S, env=env)
    except FileNotFoundError:
        raise StageError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise StageError(f"`git {args[0]}` took more than {TIMEOUT_S} s") from None


def out(cwd: Path, *args: str) -> str:
    """The stripped output of `git ARGS`; StageError with git's own message when it fails."""
    done = call(cwd, *args)
    if done.returncode != 0:
        raise StageError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def out_or_none(cwd: Path, *args: str) -> str | None:
    """The stripped output of `git ARGS`, or None when it fails."""
    done = call(cwd, *args)
    return done.stdout.strip() if done.returncode == 0 else None


def toplevel(start: Path) -> Path | None:
    """The work tree holding `start`: its nearest ancestor with a `.git` (a directory, or the
    file of a worktree or submodule); None outside git."""
    start = start.resolve()
    return next((d for d in (start, *start.parents) if (d / ".git").exists()), None)


def repo_root(start: Path) -> Path:
    """The repository a spec belongs to: git's work tree, else the nearest directory with `.dvc`,
    else `start` itself (a spec checked outside any repository)."""
    start = start.resolve()
    return toplevel(start) or next((d for d in (start, *start.parents) if (d / ".dvc").exists()), start)


def revision(cwd: Path, apart_from: tuple[str, ...] = ()) -> tuple[str | None, bool]:
    """(HEAD's commit, whether tracked files differ from it, paths `apart_from` aside: relative
    to `cwd`); (None, False) outside git."""
    try:
        rev = out_or_none(cwd, "rev-parse", "HEAD")
        pathspecs = [":/", *(f":(exclude){p}" for p in apart_from)] if apart_from else []
        status = out_or_none(cwd, "status", "--porcelain", "--untracked-files=no", "--", *pathspecs)
    except StageError:
        return None, False
    return (rev, bool(status)) if rev is not None and status is not None else (None, False)
