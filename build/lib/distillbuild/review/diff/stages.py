"""Which stages rebuild and why: a key a stage reads, a data file it depends on, a stage upstream."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from distillbuild import git
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.compile import pipeline
from distillbuild.review.diff.git_side import blob, blob_at
from distillbuild.review.diff.markdown import code

DATA_KEYS = ("data.inputs", "data.heldout", "teacher.simulated.answers")


def reads(changed: str, listed: str) -> bool:
    """Does a stage that lists `listed` read the changed key path? Equal, under, or above it."""
    return (
        changed == listed
        or changed.startswith((listed + ".", listed + "["))
        or listed.startswith((changed + ".", changed + "["))
    )


def _outputs(body: dict[str, Any]) -> list[str]:
    paths = []
    for field in ("outs", "metrics", "plots"):
        for entry in body.get(field) or []:
            paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DVC's content hash, not security
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dvc_md5_at(root: Path, commit: str, rel: str) -> str | None:
    """The md5 a `.dvc` file at `commit` records for `rel` (data tracked by DVC, not git)."""
    if not blob_at(root, commit, rel + ".dvc"):
        return None
    try:
        doc = yaml.safe_load(blob(root, commit, rel + ".dvc").decode("utf-8"))
        return str(doc["outs"][0]["md5"])
    except Exception:  # noqa: BLE001 - an unreadable .dvc file: treated as unknown
        return None


def _file_status(root: Path, commit: str, rel: str) -> tuple[str, str]:
    """(status, how) of a data file: unchanged | modified | added | deleted, against `commit`."""
    path = root / rel
    base = blob_at(root, commit, rel)
    if path.is_dir():
        if base is None:
            return "added", "not in git at the base"
        done = git.call(root, "diff", "--quiet", commit, "--", rel)
        return ("unchanged" if done.returncode == 0 else "modified"), "git diff of the directory"
    if not path.is_file():
        return ("deleted" if base else "missing"), "not in the working tree"
    if base is not None:
        work = git.out_or_none(root, "hash-object", "--", rel)
        return ("unchanged" if work == base else "modified"), "git blob hash"
    md5 = _dvc_md5_at(root, commit, rel)
    if md5 is not None:
        return ("unchanged" if _md5(path) == md5 else "modified"), f"md5 in {Path(rel).name}.dvc"
    return "added", "not in git (nor a .dvc file) at the base"


def _data_key_of(spec: Any) -> dict[str, str]:
    """Which spec key names each data file (for "`data/x.jsonl` modified (`data.inputs`)")."""
    key_of: dict[str, str] = {}
    for key in DATA_KEYS:
        value = spec.get(key)
        if isinstance(value, str):
            key_of.setdefault(Path(value).as_posix(), key)
    return key_of


class _DataFiles:
    """The status of each data file a stage depends on, looked up once per file."""

    def __init__(self, spec: Any, root: Path, commit: str, new_pipeline: bool):
        self.spec, self.root, self.commit, self.new_pipeline = spec, root, commit, new_pipeline
        self.key_of = _data_key_of(spec)
        self.records: dict[str, dict[str, Any]] = {}  # dep (relative to the spec's directory) -> status

    def record(self, dep: str) -> dict[str, Any]:
        if dep not in self.records:
            self.records[dep] = self._status(dep)
        return self.records[dep]

    def _status(self, dep: str) -> dict[str, Any]:
        rel = Path(os.path.normpath(self.spec.dir / dep))
        try:
            rel_s = rel.relative_to(self.root).as_posix()
        except ValueError:
            return {"path": dep, "key": self.key_of.get(dep), "status": "unknown", "how": "outside the repository"}
        status, how = ("added", "new pipeline") if self.new_pipeline else _file_status(self.root, self.commit, rel_s)
        return {"path": rel_s, "key": self.key_of.get(dep), "status": status, "how": how}


def stage_analysis(
    spec: Any, changes: list[dict[str, Any]], root: Path, commit: str, new_pipeline: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One record per stage, in pipeline order: does it rebuild, and why; and the data files seen."""
    order = [stage.name for stage in stage_list.of_spec(spec)]
    bodies = pipeline(spec)["stages"]
    producers = {out: name for name, body in bodies.items() for out in _outputs(body)}
    files = _DataFiles(spec, root, commit, new_pipeline)
    records: dict[str, dict[str, Any]] = {}
    for name in order:
        upstream, changed_files = _stage_inputs(name, bodies.get(name, {}), producers, files)
        keys = [c["key"] for c in changes if any(reads(c["key"], k) for k in stage_list.by_name(name).keys_read(spec))]
        roots = _rebuilding_roots(upstream, records, order)
        records[name] = _stage_record(name, keys, changed_files, upstream, roots, changes, new_pipeline)
    return [records[s] for s in order], list(files.records.values())


def _stage_inputs(
    name: str, body: dict[str, Any], producers: dict[str, str], files: _DataFiles
) -> tuple[list[str], list[dict[str, Any]]]:
    """The stages whose outputs `name` reads, and the data files it reads that changed."""
    upstream: list[str] = []
    changed_files: list[dict[str, Any]] = []
    for dep in body.get("deps") or []:
        made_by = [s for out, s in producers.items() if s != name and _overlaps(dep, out)]
        if made_by:
            upstream += [s for s in made_by if s not in upstream]
        else:
            rec = files.record(dep)
            if rec["status"] != "unchanged":
                changed_files.append(rec)
    return upstream, changed_files


def _rebuilding_roots(upstream: list[str], records: dict[str, dict[str, Any]], order: list[str]) -> list[str]:
    """The stages that rebuild for reasons of their own and that this one follows."""
    roots: list[str] = []
    for u in order:
        if u in upstream and records.get(u, {}).get("rebuilds"):
            for r in [u] if not records[u]["conditional"] else records[u]["after"]:
                if r not in roots:
                    roots.append(r)
    return sorted(roots, key=order.index)


def _stage_record(
    name: str,
    keys: list[str],
    changed_files: list[dict[str, Any]],
    upstream: list[str],
    roots: list[str],
    changes: list[dict[str, Any]],
    new_pipeline: bool,
) -> dict[str, Any]:
    own = bool(keys or changed_files or new_pipeline)
    reasons = []
    if new_pipeline:
        reasons.append("new pipeline: no spec at the base")
    else:
        if keys:
            reasons.append(_keys_reason(keys, changes))
        for f in changed_files:
            reasons.append(f"{code(f['path'])} {f['status']}" + (f" ({code(f['key'])})" if f["key"] else ""))
        if roots:
            reasons.append("after " + ", ".join(code(r) for r in roots))
    return {
        "stage": name,
        "rebuilds": own or bool(roots),
        "conditional": not own and bool(roots),
        "keys": keys,
        "files": [f["path"] for f in changed_files],
        "after": roots if not new_pipeline else [],
        "upstream": upstream,
        "reasons": reasons,
    }


def _keys_reason(keys: list[str], changes: list[dict[str, Any]]) -> str:
    status = {c["key"]: c["status"] for c in changes}
    shown = ", ".join(f"{code(k)} {status.get(k, 'changed')}" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more keys" if len(keys) > 4 else "")
