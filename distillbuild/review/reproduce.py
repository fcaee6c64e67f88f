"""`distill reproduce REV|NAME@vX.Y.Z`: rebuild a recorded model and compare it with its record.

The revision is checked out into a temporary git worktree and rebuilt from scratch with
`dvc repro --force`. The teacher cache of this repository is shared, so a rebuild pays nothing
for answers the cache holds (and tells you what it would pay when it does not). The rebuilt
lineage is then compared, hash by hash, with the decision.json committed at that revision.
Timing metrics (latency, throughput) are machine facts, not build outputs (kept under
.distill/runs: distillbuild/measurements.py): the rebuild's are reported, never counted as a difference.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

from distillbuild import git, layout
from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache, cache_dir
from distillbuild.measurements import read_report
from distillbuild.metric_names import MEASURED_METRICS

# Measured metrics shown as figures (a record from before they left metrics.json may still hold them).
TIMING = tuple(name for name in MEASURED_METRICS if "." not in name and name != "latency")
COMPARED = (
    "spec_sha256",
    "data_sha256",
    "teacher.answers_sha256",
    "teacher.heldout_answers_sha256",
    "dataset_sha256",
    "model_sha256",
)


def _get(record: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        record = (record or {}).get(part)
    return record


def compare(
    recorded: dict[str, Any], rebuilt: dict[str, Any], metrics_then: dict[str, Any], metrics_now: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = [{"what": key, "recorded": _get(recorded, key), "rebuilt": _get(rebuilt, key)} for key in COMPARED]
    for name in sorted(set(metrics_then) | set(metrics_now)):
        if name in MEASURED_METRICS or isinstance(metrics_then.get(name), dict):
            continue
        rows.append({"what": f"metrics.{name}", "recorded": metrics_then.get(name), "rebuilt": metrics_now.get(name)})
    for row in rows:
        row["same"] = row["recorded"] == row["rebuilt"]
    return rows


def seed_teacher_cache(repo_root: Path, spec_dir_rel: str, commit: str, log: Callable[[str], None]) -> int:
    """The teacher's (and a seed stage's generator's) answers the revision's build recorded
    (build/teacher/responses.jsonl, build/seed/responses.jsonl, from the DVC cache or remote) put
    in this repository's teacher cache where it lacks them: a fresh clone that pulled the build
    rebuilds it without asking the teacher again. Returns how many."""
    import dvc.api  # lazy: seconds to import

    added = 0
    for recorded, what in ((layout.TEACHER_RESPONSES, "teacher"), (layout.SEED_RESPONSES, "generator")):
        path = Path(spec_dir_rel, recorded).as_posix()
        try:
            with dvc.api.open(path, repo=str(repo_root), rev=commit, encoding="utf-8") as fh:
                entries = [json.loads(line) for line in fh if line.strip()]
        except Exception as exc:  # not recorded at that revision (no seed stage), or neither pulled nor on a remote
            if what == "teacher":
                log(
                    f"reproduce: no recorded teacher answers for {commit[:10]} ({type(exc).__name__}); the rebuild "
                    "asks the teacher for whatever the cache lacks"
                )
            continue
        cache = TeacherCache.for_repo(repo_root)
        try:
            wanted = set(cache.missing([e["key"] for e in entries]))
            for entry in entries:
                if entry["key"] in wanted:
                    cache.put(entry["key"], entry["endpoint"], entry["model"], entry["response"])
        finally:
            cache.close()
        log(f"reproduce: {len(wanted)} of {len(entries)} recorded {what} answers added to the cache from {path}")
        added += len(wanted)
    return added


def reproduce(repo_root: Path, spec_rel: str, rev: str, log: Callable[[str], None]) -> dict[str, Any]:
    commit = git.out(repo_root, "rev-parse", "--verify", f"{rev}^{{commit}}")
    spec_dir_rel = str(Path(spec_rel).parent)
    try:
        recorded_decision = json.loads(
            git.out(repo_root, "show", f"{commit}:{Path(spec_dir_rel, layout.DECISION).as_posix()}")
        )
        metrics_then = json.loads(
            git.out(repo_root, "show", f"{commit}:{Path(spec_dir_rel, layout.METRICS).as_posix()}")
        )
    except (StageError, ValueError):
        raise StageError(
            f"{rev} has no committed build record ({layout.DECISION}, {layout.METRICS}): nothing to compare with"
        ) from None
    seed_teacher_cache(repo_root, spec_dir_rel, commit, log)
    workdir = Path(tempfile.mkdtemp(prefix="distill-reproduce-"))
    tree = workdir / "tree"
    env = dict(os.environ, DISTILL_CACHE_DIR=str(cache_dir(repo_root)), DVC_NO_ANALYTICS="1")
    try:
        git.out(repo_root, "worktree", "add", "--detach", str(tree), commit)
        spec_dir = tree / spec_dir_rel
        log(f"reproduce: rebuilding {rev} ({commit[:10]}) in {tree}")
        done = subprocess.run(["dvc", "repro", "--force"], cwd=spec_dir, env=env, capture_output=True, text=True)
        gate_only = "failed to reproduce 'gate'" in done.stderr and (spec_dir / layout.DECISION).exists()
        if done.returncode != 0 and not gate_only:  # a failing gate is a result to compare, not an error
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise StageError(f"the rebuild of {rev} failed:\n{tail}")
        rebuilt_decision = json.loads((spec_dir / layout.DECISION).read_text())
        metrics_now = read_report(spec_dir / layout.METRICS)
        teacher = read_report(spec_dir / layout.TEACHER_REPORT)
    finally:
        git.call(repo_root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(workdir, ignore_errors=True)
    rows = compare(
        recorded_decision.get("lineage") or {}, rebuilt_decision.get("lineage") or {}, metrics_then, metrics_now
    )
    return {
        "rev": rev,
        "commit": commit,
        "identical": all(r["same"] for r in rows),
        "rows": rows,
        "teacher_calls_billed": teacher["calls"]["billed"],
        "teacher_calls_from_cache": teacher["calls"]["from_cache"],
        "timing": {name: {"recorded": metrics_then.get(name), "rebuilt": metrics_now.get(name)} for name in TIMING},
        "verdict_recorded": recorded_decision.get("verdict"),
        "verdict_rebuilt": rebuilt_decision.get("verdict"),
    }


def render(report: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        return (
            (v[:16] + "…") if isinstance(v, str) and len(v) > 17 else json.dumps(v) if isinstance(v, dict) else str(v)
        )

    lines = [
        f"reproduce {report['rev']} ({report['commit'][:10]}): "
        + ("IDENTICAL to the record" if report["identical"] else "DIFFERS from the record"),
        f"  teacher: {report['teacher_calls_from_cache']} answers from the cache, "
        f"{report['teacher_calls_billed']} billed",
    ]
    for row in report["rows"]:
        if not row["same"]:
            lines.append(
                f"  differs  {row['what']}: recorded {short(row['recorded'])}, rebuilt {short(row['rebuilt'])}"
            )
    same = sum(r["same"] for r in report["rows"])
    lines.append(f"  {same} of {len(report['rows'])} hashes and metrics match")
    timing = ", ".join(
        f"{k} {v['recorded']} -> {v['rebuilt']}" for k, v in report["timing"].items() if v["recorded"] is not None
    )
    lines.append(f"  timing (machine facts, not compared): {timing}")
    return "\n".join(lines)
