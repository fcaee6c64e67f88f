"""`distill reproduce REV|NAME@vX.Y.Z`: rebuild a recorded model and compare it with its record.

The revision is checked out into a temporary git worktree and rebuilt from scratch with
`dvc repro --force`. The teacher cache of this repository is shared, so a rebuild pays nothing
for answers the cache holds (and tells you what it would pay when it does not). The rebuilt
lineage is then compared, hash by hash, with the decision.json committed at that revision, the
two dvc.locks stage by stage, and the held-out predictions row by row: the verdict is
IDENTICAL, EQUIVALENT or DIFFERENT (review/equivalence.py).
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
from distillbuild.review.equivalence import (
    DEFAULT_MIN_AGREEMENT,
    first_divergence,
    gated_metrics,
    prediction_agreement,
    verdict,
)

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


def _recorded(repo_root: Path, commit: str, spec_dir_rel: str, name: str) -> Any:
    """A build file as committed at `commit` (JSON, or YAML for dvc.lock); None when absent."""
    import yaml

    try:
        text = git.out(repo_root, "show", f"{commit}:{Path(spec_dir_rel, name).as_posix()}")
    except StageError:
        return None
    return yaml.safe_load(text) if name.endswith(".lock") else json.loads(text)


def _the_record(repo_root: Path, rev: str, commit: str, spec_dir_rel: str) -> dict[str, Any]:
    """What the build at `commit` recorded: its decision, metrics, dvc.lock and predictions."""
    try:
        record = {
            "decision": _recorded(repo_root, commit, spec_dir_rel, layout.DECISION),
            "metrics": _recorded(repo_root, commit, spec_dir_rel, layout.METRICS),
        }
    except ValueError:
        record = {}
    if record.get("decision") is None or record.get("metrics") is None:
        raise StageError(
            f"{rev} has no committed build record ({layout.DECISION}, {layout.METRICS}): nothing to compare with"
        )
    record["lock"] = _recorded(repo_root, commit, spec_dir_rel, "dvc.lock") or {}
    record["predictions"] = _recorded(repo_root, commit, spec_dir_rel, layout.PREDICTIONS) or []
    return record


def _rebuild(repo_root: Path, rev: str, commit: str, spec_dir_rel: str, log: Callable[[str], None]) -> dict[str, Any]:
    """`dvc repro --force` of `commit` in a temporary worktree; the same files as `_the_record`,
    rebuilt, and the teacher's run report."""
    import yaml

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
        return {
            "decision": json.loads((spec_dir / layout.DECISION).read_text()),
            "metrics": read_report(spec_dir / layout.METRICS),
            "teacher": read_report(spec_dir / layout.TEACHER_REPORT),
            "lock": yaml.safe_load((spec_dir / "dvc.lock").read_text()) or {},
            "predictions": json.loads((spec_dir / layout.PREDICTIONS).read_text()),
        }
    finally:
        git.call(repo_root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(workdir, ignore_errors=True)


def reproduce(
    repo_root: Path,
    spec_rel: str,
    rev: str,
    log: Callable[[str], None],
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> dict[str, Any]:
    commit = git.out(repo_root, "rev-parse", "--verify", f"{rev}^{{commit}}")
    spec_dir_rel = str(Path(spec_rel).parent)
    then = _the_record(repo_root, rev, commit, spec_dir_rel)
    seed_teacher_cache(repo_root, spec_dir_rel, commit, log)
    now = _rebuild(repo_root, rev, commit, spec_dir_rel, log)
    rows = compare(
        then["decision"].get("lineage") or {}, now["decision"].get("lineage") or {}, then["metrics"], now["metrics"]
    )
    divergence = first_divergence(then["lock"], now["lock"], (layout.DECISION, layout.MODEL_CARD))
    agreement = prediction_agreement(then["predictions"], now["predictions"])
    gates = gated_metrics(
        then["decision"].get("gates") or [], now["decision"].get("gates") or [], then["metrics"], now["metrics"]
    )
    identical = all(r["same"] for r in rows) and divergence is None
    return {
        "rev": rev,
        "commit": commit,
        "verdict": verdict(identical, divergence, agreement, gates, min_agreement),
        "identical": identical,
        "first_difference": divergence,
        "agreement": {**agreement, "required": min_agreement},
        "gated_metrics": gates,
        "rows": rows,
        "teacher_calls_billed": now["teacher"]["calls"]["billed"],
        "teacher_calls_from_cache": now["teacher"]["calls"]["from_cache"],
        "timing": {n: {"recorded": then["metrics"].get(n), "rebuilt": now["metrics"].get(n)} for n in TIMING},
        "verdict_recorded": then["decision"].get("verdict"),
        "verdict_rebuilt": now["decision"].get("verdict"),
    }


_PROMISE = {
    "IDENTICAL": "every recorded hash and metric matches",
    "EQUIVALENT": (
        "some outputs' bytes differ, from the same inputs; the held-out predictions and the gated metrics "
        "agree with the record within tolerance"
    ),
    "DIFFERENT": "the rebuild is not the recorded build",
}


def _short(v: Any) -> str:
    if isinstance(v, str) and len(v) > 17:
        return v[:16] + "…"
    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def render(report: dict[str, Any]) -> str:
    """The report as Markdown: the verdict and what it rests on, then every comparison made."""
    verdict_name = report.get("verdict") or ("IDENTICAL" if report["identical"] else "DIFFERENT")
    lines = [
        f"## reproduce {report['rev']} ({report['commit'][:10]}): {verdict_name} "
        + ("from" if verdict_name == "DIFFERENT" else "to")
        + " the record",
        "",
        f"{_PROMISE[verdict_name]}.",
        "",
        f"- teacher: {report['teacher_calls_from_cache']} answers from the cache, "
        f"{report['teacher_calls_billed']} billed",
    ]
    first = report.get("first_difference")
    if first:
        lines.append(f"- first difference: stage `{first['stage']}`: {first['cause']}")
    agreement = report.get("agreement")
    if agreement and agreement.get("rows"):
        lines.append(
            f"- held-out predictions: {agreement['same']} of {agreement['rows']} rows as recorded "
            f"({agreement['share']:.1%}; at least {agreement['required']:.1%} for EQUIVALENT)"
        )
    for gate in report.get("gated_metrics") or []:
        figures = (
            f": {gate['rebuilt']} against the recorded {gate['recorded']} "
            f"(95% interval {gate['interval'][0]}-{gate['interval'][1]})"
            if "interval" in gate
            else ""
        )
        lines.append(
            f"- gate `{gate['gate']}`: {'pass' if gate['pass_then'] else 'fail'} then, "
            f"{'pass' if gate['pass_now'] else 'fail'} now{figures}{'' if gate['holds'] else ' (does not hold)'}"
        )
    lines += ["", "| compared | recorded | rebuilt | same |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {row['what']} | {_short(row['recorded'])} | {_short(row['rebuilt'])} | {'yes' if row['same'] else 'NO'} |"
        for row in report["rows"]
    ]
    timing = ", ".join(
        f"{k} {v['rebuilt']}" + (f" (recorded {v['recorded']})" if v["recorded"] is not None else "")
        for k, v in report["timing"].items()
        if v["rebuilt"] is not None or v["recorded"] is not None
    )
    if timing:
        lines += ["", f"Measured on this machine, not compared: {timing}."]
    return "\n".join(lines)
