"""The metrics diff when both sides are built (`dvc metrics diff BASE_REV`)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from distillbuild.pipeline.compile import pipeline
from distillbuild.review.diff.markdown import code

DVC_TIMEOUT_S = 300


def _dvc_executable() -> str | None:
    beside = Path(sys.executable).parent / "dvc"
    return shutil.which("dvc") or (str(beside) if beside.exists() else None)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _declared_metrics(spec: Any) -> set[str]:
    """This pipeline's metrics files (a repository may hold several pipelines)."""
    return {
        os.path.normpath(p)
        for body in pipeline(spec)["stages"].values()
        for p in (e if isinstance(e, str) else next(iter(e)) for e in body.get("metrics") or [])
    }


def _dvc_metrics_diff(spec: Any, commit: str, base_rev: str) -> tuple[dict[str, Any] | None, str | None]:
    """`dvc metrics diff COMMIT --all --json` as data, or None and the reason it is not there."""
    dvc = _dvc_executable()
    if dvc is None:
        return None, "dvc is not installed here"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        done = subprocess.run(
            [dvc, "metrics", "diff", commit, "--all", "--json"],
            cwd=spec.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=DVC_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`dvc metrics diff` did not finish ({type(exc).__name__})"
    if done.returncode != 0:
        last = next((ln for ln in reversed(done.stderr.splitlines()) if ln.strip()), "")
        what = code(f"dvc metrics diff {base_rev}")
        return None, (
            f"{what} failed: {code(last.strip()[:200])}" if last else f"{what} failed (exit {done.returncode})"
        )
    try:
        return json.loads(done.stdout or "{}") or {}, None
    except ValueError:
        return None, "`dvc metrics diff` printed no JSON"


def metrics_diff(spec: Any, commit: str, base_rev: str) -> dict[str, Any]:
    out: dict[str, Any] = {"available": False, "rows": [], "unchanged": [], "reason": None}
    data, out["reason"] = _dvc_metrics_diff(spec, commit, base_rev)
    if data is None:
        return out
    declared = _declared_metrics(spec)
    olds = news = 0
    for file, metrics in sorted(data.items()):
        if declared and os.path.normpath(file) not in declared:
            continue  # another pipeline's metrics
        for name, v in sorted((metrics or {}).items(), key=lambda kv: (kv[0].count("."), kv[0])):
            old, new = (v or {}).get("old"), (v or {}).get("new")
            olds += old is not None
            news += new is not None
            if not (_is_number(old) or _is_number(new)):
                continue  # text metrics are left out
            if _is_number(old) and _is_number(new) and old == new:
                out["unchanged"].append(name)
                continue
            change = round(new - old, 10) if _is_number(old) and _is_number(new) else None
            out["rows"].append(
                {
                    "file": file,
                    "metric": name,
                    "old": old if _is_number(old) else None,
                    "new": new if _is_number(new) else None,
                    "change": change,
                }
            )
    out["available"] = any(r["change"] is not None for r in out["rows"]) or bool(out["unchanged"])
    if not out["available"]:
        out["reason"] = _why_no_metrics(olds, news, base_rev)
    return out


def _why_no_metrics(olds: int, news: int, base_rev: str) -> str:
    if not olds and not news:
        return "no metrics on either side"
    if not olds:
        return f"no metrics committed at {code(base_rev)}"
    if not news:
        return "no metrics in the working tree"
    return "no numeric metric on both sides"
