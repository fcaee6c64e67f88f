"""`distill diff [BASE_REV]`: what a change to a spec does, relative to a git revision.

Computed from git, the spec and the compiler; no stage runs and no teacher is called:

1. the spec's semantic diff: both sides parsed and compared as data (comments and key order
   do not count), one row per changed, added or removed key path (`task.labels[3]`);
2. the stages that rebuild, and why: a spec key the stage reads changed (each stage's READS;
   a key path equal to, under or above a listed key), a data file it depends on changed (git
   blob at BASE_REV, or the md5 in a `.dvc` file there, against the working tree), or a stage
   upstream rebuilds ("after `teacher`": then only if that stage's outputs change, since DVC
   skips a stage whose dependencies hash the same); plus whether dvc.yaml is stale;
3. the teacher calls and dollars the change costs: `spend_for(spec)` when `teacher` rebuilds
   (its answers, and its explanations in explain mode) or `seed` does (the generator's first
   round), net of the teacher cache on this machine; else none;
4. the metrics diff when both sides are built (`dvc metrics diff BASE_REV`).

    report = diff_report(Path("distill.yaml"), "origin/main")   # JSON-able
    print(render_markdown(report))                             # a pull-request comment
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from distillbuild.errors import SpecError, StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.compile import dvc_yaml_path, pipeline, render
from distillbuild.pipeline.spend import spend_for
from distillbuild.secrets import SECRET_KEY_NAMES, looks_like_secret
from distillbuild.spec import load_spec
from distillbuild.spec.loader import MAX_SPEC_BYTES, join_path, load_yaml_text

GIT_TIMEOUT_S = 120
DVC_TIMEOUT_S = 300
CELL_CHARS = 60  # a table cell's value is cut after this many characters
MAX_CHANGE_ROWS = 50
MAX_METRIC_ROWS = 40
DATA_KEYS = ("data.inputs", "data.heldout", "teacher.simulated.answers")


class _Absent:
    """A key that one side of the diff does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


# ----------------------------------------------------------------------------------------
# git


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, env=env)
    except FileNotFoundError:
        raise StageError("git is not installed: distill diff compares the spec with a git revision") from None
    except subprocess.TimeoutExpired:
        raise StageError(f"`git {args[0]}` took more than {GIT_TIMEOUT_S} s") from None


def _git_out(args: list[str], cwd: Path) -> str | None:
    done = _git(args, cwd)
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else None


def _repo_root(start: Path) -> Path:
    top = _git_out(["rev-parse", "--show-toplevel"], start)
    if not top:
        raise StageError(f"{start} is not in a git repository: distill diff compares the spec with a git revision")
    return Path(top).resolve()


def _resolve_rev(root: Path, rev: str) -> str:
    if not rev.strip() or rev.startswith("-") or any(c in rev for c in "\n\r\0"):
        raise StageError(f"{rev!r} is not a git revision")
    commit = _git_out(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root)
    if not commit:
        hint = ""
        if _git_out(["rev-parse", "--is-shallow-repository"], root) == "true":
            hint = " (this clone is shallow: fetch the history, e.g. actions/checkout with fetch-depth: 0)"
        elif "/" in rev:
            hint = f" (fetch it first: git fetch {rev.split('/', 1)[0]})"
        raise StageError(f"unknown revision {rev!r}: no such commit, branch or tag in {root}{hint}")
    return commit


def _blob_at(root: Path, commit: str, rel: str) -> str | None:
    """The object id of `rel` (repository-relative, POSIX) at `commit`, or None where absent."""
    return _git_out(["rev-parse", "--verify", "--quiet", f"{commit}:{rel}"], root) or None


# ----------------------------------------------------------------------------------------
# 1. the spec's semantic diff


def _equal(a: Any, b: Any) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def semantic_diff(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(key path, old, new) for every changed, added (old is ABSENT) and removed (new is ABSENT) key.

    Mappings are compared key by key, lists element-wise when both have the same length and
    as a whole value otherwise. Key order does not count; the new side's order is kept.
    """
    out: list[tuple[str, Any, Any]] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in b:
                walk(a[key] if key in a else ABSENT, b[key], join_path(path, key))
            for key in a:
                if key not in b:
                    out.append((join_path(path, key), a[key], ABSENT))
            return
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, join_path(path, i))
            return
        if not _equal(a, b):
            out.append((path, a, b))

    walk(old, new, "")
    return out


def _safe(value: Any, key: str = "") -> Any:
    """JSON-able, with anything that looks like a secret replaced (an old spec may predate the checks)."""
    last = re.split(r"[.\[]", key)[-1] if key else ""
    if value is ABSENT:
        return None
    if last and SECRET_KEY_NAMES.match(last) and value is not None:
        return "***"
    if isinstance(value, dict):
        return {str(k): _safe(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    if isinstance(value, str):
        if looks_like_secret(value):
            return "***"
        return re.sub(r"(://)[^/@\s]+@", r"\1***@", value)  # credentials inside a URL
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return str(value)


def _change_record(key: str, old: Any, new: Any) -> dict[str, Any]:
    status = "added" if old is ABSENT else "removed" if new is ABSENT else "changed"
    return {"key": key, "status": status, "old": _safe(old, key), "new": _safe(new, key)}


# ----------------------------------------------------------------------------------------
# 2. stages


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
    if not _blob_at(root, commit, rel + ".dvc"):
        return None
    done = _git(["cat-file", "blob", f"{commit}:{rel}.dvc"], root)
    try:
        doc = yaml.safe_load(done.stdout.decode("utf-8"))
        return str(doc["outs"][0]["md5"])
    except Exception:  # noqa: BLE001 - an unreadable .dvc file: treated as unknown
        return None


def _file_status(root: Path, commit: str, rel: str) -> tuple[str, str]:
    """(status, how) of a data file: unchanged | modified | added | deleted, against `commit`."""
    path = root / rel
    base = _blob_at(root, commit, rel)
    if path.is_dir():
        if base is None:
            return "added", "not in git at the base"
        done = _git(["diff", "--quiet", commit, "--", rel], root)
        return ("unchanged" if done.returncode == 0 else "modified"), "git diff of the directory"
    if not path.is_file():
        return ("deleted" if base else "missing"), "not in the working tree"
    if base is not None:
        work = _git_out(["hash-object", "--", rel], root)
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


def _stage_analysis(
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
            reasons.append(f"{_code(f['path'])} {f['status']}" + (f" ({_code(f['key'])})" if f["key"] else ""))
        if roots:
            reasons.append("after " + ", ".join(_code(r) for r in roots))
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
    shown = ", ".join(f"{_code(k)} {status.get(k, 'changed')}" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more keys" if len(keys) > 4 else "")


# ----------------------------------------------------------------------------------------
# 3. teacher cost


def _teacher_cost(spec: Any, rebuilds: bool, seed_rebuilds: bool = False) -> dict[str, Any]:
    """The calls the rebuilt stages will make, net of the cache: the teacher's answers and, in
    explain mode, its explanations (`new_calls` counts both); the seed generator's first round.
    Each is estimated apart: one that cannot be does not hide the other."""
    simulated = spec.teacher.provider == "simulated"
    out: dict[str, Any] = {
        "rebuilds": rebuilds,
        "provider": spec.teacher.provider,
        "model": spec.teacher.model,
        "simulated": simulated,
        "new_calls": 0,
        "estimate": None,
        "explanations": None,
        "seed": None,
        "error": None,
        "seed_error": None,
    }
    for wanted, error_key in ((rebuilds, "error"), (seed_rebuilds, "seed_error")):
        if not wanted:
            continue
        try:
            spend = spend_for(spec, teacher=error_key == "error", seed=error_key == "seed_error")
        except (StageError, OSError, ValueError) as exc:
            out[error_key] = " ".join(str(exc).split())[:300]
            continue
        for key, est in (("estimate", spend.answers), ("explanations", spend.explanations), ("seed", spend.seed)):
            if est is not None:
                out[key] = est.as_dict()
        out["new_calls"] += spend.teacher_calls
    if out["error"] is not None:
        out["new_calls"] = None
    return out


# ----------------------------------------------------------------------------------------
# 4. metrics


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
        what = _code(f"dvc metrics diff {base_rev}")
        return None, (
            f"{what} failed: {_code(last.strip()[:200])}" if last else f"{what} failed (exit {done.returncode})"
        )
    try:
        return json.loads(done.stdout or "{}") or {}, None
    except ValueError:
        return None, "`dvc metrics diff` printed no JSON"


def _metrics_diff(spec: Any, commit: str, base_rev: str) -> dict[str, Any]:
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
        return f"no metrics committed at {_code(base_rev)}"
    if not news:
        return "no metrics in the working tree"
    return "no numeric metric on both sides"


# ----------------------------------------------------------------------------------------
# the report


def diff_report(spec_path: Path, base_rev: str = "HEAD") -> dict[str, Any]:
    """What the change from `base_rev` to the working tree does to the pipeline of `spec_path`.

    Raises StageError for a path outside git, an unknown revision; SpecError when the working
    tree's spec is invalid. A spec absent at `base_rev` is a new pipeline: every stage builds.
    """
    spec_path = Path(spec_path)
    if not spec_path.exists():
        raise StageError(f"{spec_path}: no such spec in the working tree")
    root = _repo_root(spec_path.resolve().parent)
    commit = _resolve_rev(root, base_rev)
    spec = load_spec(spec_path)
    try:
        rel = spec.path.relative_to(root).as_posix()
    except ValueError:
        raise StageError(f"{spec.path} is outside the git repository at {root}") from None

    base_raw, notes = _base_spec(root, commit, rel, base_rev)
    new_pipeline = base_raw is None
    changes = [_change_record(k, o, n) for k, o, n in semantic_diff(base_raw or {}, spec.raw)]
    records, files = _stage_analysis(spec, changes, root, commit, new_pipeline)
    if not new_pipeline:
        notes += _unread_keys_note(changes)
    teacher_rec = next(s for s in records if s["stage"] == "teacher")
    return {
        "spec": rel,
        "name": spec.name,
        "base": {"rev": base_rev, "commit": commit, "spec_present": not new_pipeline},
        "new_pipeline": new_pipeline,
        "changes": changes,
        "data_files": files,
        "stages": records,
        "dvc_yaml": _dvc_yaml_state(spec, root),
        "teacher": _teacher_cost(
            spec, teacher_rec["rebuilds"], any(s["rebuilds"] for s in records if s["stage"] == "seed")
        ),
        "metrics": _metrics_diff(spec, commit, base_rev),
        "notes": notes,
    }


def _base_spec(root: Path, commit: str, rel: str, base_rev: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The spec as written at the base (None: a new pipeline), and notes on why it is absent."""
    if _blob_at(root, commit, rel) is None:
        return None, [f"{_code(rel)} does not exist at {_code(base_rev)}: a new pipeline, every stage builds."]
    size = int(_git_out(["cat-file", "-s", f"{commit}:{rel}"], root) or 0)
    if size > MAX_SPEC_BYTES:
        return None, [
            f"{_code(rel)} at {_code(base_rev)} is over {MAX_SPEC_BYTES:,} bytes and was not read: "
            "treated as a new pipeline."
        ]
    blob = _git(["cat-file", "blob", f"{commit}:{rel}"], root).stdout
    try:
        base_raw = load_yaml_text(blob.decode("utf-8"), f"{rel}@{base_rev}").data
        if not isinstance(base_raw, dict):
            raise ValueError("its top level is not a mapping")
    except (SpecError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, [
            f"{_code(rel)} at {_code(base_rev)} could not be read ({_code(first[:160])}): treated as a new pipeline."
        ]
    return base_raw, []


def _unread_keys_note(changes: list[dict[str, Any]]) -> list[str]:
    unread = [c["key"] for c in changes if not any(reads(c["key"], k) for st in stage_list.PIPELINE for k in st.reads)]
    if not unread:
        return []
    one = len(unread) == 1
    return [
        ", ".join(_code(k) for k in unread)
        + (" is" if one else " are")
        + f" read by no stage: nothing rebuilds for {'it' if one else 'them'}."
    ]


def _dvc_yaml_state(spec: Any, root: Path) -> dict[str, Any]:
    target = dvc_yaml_path(spec)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    return {"path": target.relative_to(root).as_posix(), "stale": current != render(spec), "missing": current is None}


# ----------------------------------------------------------------------------------------
# Markdown


def _code(text: str) -> str:
    """`text` as an inline code span, whatever backticks it holds."""
    text = " ".join(text.split("\n"))
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _value(value: Any, present: bool = True) -> str:
    if not present:
        return "*(absent)*"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    if len(text) <= CELL_CHARS:
        return _code(text)
    if isinstance(value, list):
        size = f" ({len(value)} items)"
    elif isinstance(value, dict):
        size = f" ({len(value)} keys)"
    elif isinstance(value, str):
        size = f" ({len(value):,} characters)"
    else:
        size = ""
    return _code(text[: CELL_CHARS - 1] + "…") + size


def _row(*cells: str) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _signed(v: Any) -> str:
    if v is None:
        return "–"
    text = _num(v)
    return text if text == "0" or text.startswith("-") else "+" + text


def _money(v: Any) -> str:
    return "n/a (no `teacher.price`)" if v is None else f"${v:,.4f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown for a pull-request comment."""
    lines = (
        _md_header(report)
        + _md_changes(report["changes"])
        + _md_stages(report["stages"])
        + _md_teacher(report["teacher"])
        + _md_metrics(report["metrics"])
    )
    return "\n".join(lines).rstrip() + "\n"


def _md_header(report: dict[str, Any]) -> list[str]:
    base = report["base"]
    lines: list[str] = [
        f"### distill diff: {_code(str(report.get('name')))} against {_code(base['rev'])}",
        "",
        f"Spec {_code(report['spec'])}, compared with {_code(base['rev'])} ({_code(base['commit'][:10])}).",
        "",
    ]
    changes, stage_records = report["changes"], report["stages"]
    calls = report["teacher"]["new_calls"]
    summary = [
        f"{len(changes)} spec change{'s' if len(changes) != 1 else ''}",
        f"{sum(s['rebuilds'] for s in stage_records)} of {len(stage_records)} stages rebuild",
        ("teacher calls unknown" if calls is None else f"{calls:,} new teacher call{'s' if calls != 1 else ''}"),
        *(
            [f"{seeding['to_call']:,} seed generator call{'s' if seeding['to_call'] != 1 else ''}"]
            if (seeding := report["teacher"]["seed"]) is not None
            else []
        ),
        ("metrics compared" if report["metrics"]["available"] else "metrics not built on both sides"),
    ]
    lines += ["**" + " · ".join(summary) + "**", ""]
    for note in report["notes"]:
        lines += [f"> {note}", ""]
    if report["dvc_yaml"]["stale"]:
        what = "missing" if report["dvc_yaml"]["missing"] else "stale"
        lines += [
            f"> **Warning:** {_code(report['dvc_yaml']['path'])} is {what}: run "
            f"{_code('distill compile ' + report['spec'])} and commit it (`distill compile --check` fails). "
            "The stages below are those of the recompiled pipeline.",
            "",
        ]
    return lines


def _md_changes(changes: list[dict[str, Any]]) -> list[str]:
    lines = ["#### Spec changes", ""]
    if not changes:
        return lines + ["None: the two sides hold the same data (comments, formatting and key order do not count).", ""]
    lines += [_row("key", "old", "new"), _row("---", "---", "---")]
    for c in changes[:MAX_CHANGE_ROWS]:
        lines.append(
            _row(_code(c["key"]), _value(c["old"], c["status"] != "added"), _value(c["new"], c["status"] != "removed"))
        )
    if len(changes) > MAX_CHANGE_ROWS:
        lines.append(_row(f"… and {len(changes) - MAX_CHANGE_ROWS} more", "", ""))
    return lines + [""]


def _md_stages(stage_records: list[dict[str, Any]]) -> list[str]:
    lines = ["#### Stages", "", _row("stage", "rebuilds?", "why"), _row("---", "---", "---")]
    for s in stage_records:
        verdict = "no" if not s["rebuilds"] else ("yes †" if s["conditional"] else "**yes**")
        lines.append(_row(_code(s["stage"]), verdict, "; ".join(s["reasons"])))
    lines.append("")
    if any(s["conditional"] for s in stage_records):
        lines += [
            "† only if the outputs of the stages before it change: DVC skips a stage whose dependencies hash the same.",
            "",
        ]
    return lines


def _md_teacher(teacher: dict[str, Any]) -> list[str]:
    lines = ["#### Teacher", ""]
    who = f"{_code(str(teacher['provider']) + ':' + str(teacher['model']))}"
    sim = (
        (
            " The teacher is the **simulated stand-in**: nothing is billed; the dollars are what the same calls "
            "would cost at `teacher.price`."
        )
        if teacher["simulated"]
        else ""
    )
    if teacher["seed_error"] is not None:
        lines += [
            f"{_code('seed')} rebuilds, but its calls could not be estimated: {_code(teacher['seed_error'])}.",
            "",
        ]
    elif teacher["seed"] is not None:
        lines += [
            f"{_code('seed')} rebuilds: {_calls(teacher['seed'], 'generator call')} in its first round "
            "(later rounds ask only for what the filters dropped). The teacher's count below holds the "
            "generated inputs already on disk, not those the seed stage is about to write: it will also "
            "answer the ones it keeps.",
            "",
        ]
    if not teacher["rebuilds"]:
        return lines + [f"0 new teacher calls ($0): {_code('teacher')} does not rebuild.{sim}", ""]
    if teacher["error"] is not None:
        return lines + [
            f"{_code('teacher')} rebuilds, but its cost could not be estimated: {_code(str(teacher['error']))}.{sim}",
            "",
        ]
    e = teacher["estimate"]
    budget = f" (budget ${e['budget_usd']:,.2f})" if e.get("budget_usd") is not None else ""
    lines.append(f"{_code('teacher')} rebuilds ({who}): {_calls(e, 'new teacher call')}{budget}.{sim}")
    if teacher["explanations"] is not None:
        lines += [
            "",
            f"Then its explanations (`teacher.reasoning` explain mode): {_calls(teacher['explanations'], 'new call')}.",
        ]
    return lines + [""]


def _calls(e: dict[str, Any], what: str) -> str:
    """One estimate as a sentence: calls of requests, tokens, dollars."""
    return (
        f"**{e['to_call']:,} {what}{'s' if e['to_call'] != 1 else ''}** of {e['requests']:,} requests "
        f"({e['cached']:,} already in the teacher cache on this machine), {e['prompt_tokens']:,} prompt tokens, "
        f"~{e['completion_tokens_expected']:,} completion tokens; ~{_money(e['cost_usd_expected'])} expected, "
        f"at most {_money(e['cost_usd_max'])}"
    )


def _md_metrics(metrics: dict[str, Any]) -> list[str]:
    lines = ["#### Metrics", ""]
    if not metrics["available"]:
        return lines + [f"Metrics are not built on both sides ({metrics['reason']}).", ""]
    rows = metrics["rows"]
    if rows:
        lines += [_row("metric", "old", "new", "change"), _row("---", "---:", "---:", "---:")]
        for r in rows[:MAX_METRIC_ROWS]:
            lines.append(_row(_code(r["metric"]), _num(r["old"]), _num(r["new"]), _signed(r["change"])))
        if len(rows) > MAX_METRIC_ROWS:
            lines.append(_row(f"… and {len(rows) - MAX_METRIC_ROWS} more", "", "", ""))
        lines.append("")
    unchanged = metrics["unchanged"]
    if unchanged:
        names = ", ".join(_code(n) for n in unchanged[:8]) + (
            f" and {len(unchanged) - 8} more" if len(unchanged) > 8 else ""
        )
        lines += [f"Unchanged: {names}.", ""]
    if not rows:
        lines += ["No metric moved.", ""]
    lines += [
        "The charts (training curves, confusion matrix, per-class F1, route curve) of each side: "
        f"{_code('distill report')} writes one self-contained `build/report.html` to attach here.",
        "",
    ]
    return lines
