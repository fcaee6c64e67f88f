"""`distill promote`: tag a build that passed its gates, GTO-style (`NAME@vX.Y.Z`).

The tag is annotated with the build's lineage, so `git show NAME@v1.2.0` tells an auditor what
the model was made of. Refused unless the gate passed for the spec as it is now, and the build
record (dvc.lock, decision.json) is committed: a tag must point at a commit that rebuilds it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from distillbuild import git, layout
from distillbuild.errors import StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.lineage import params_sha256, spec_params
from distillbuild.spec import Spec

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class PromotionRefused(StageError):
    exit_code = 1


def existing_versions(cwd: Path, name: str) -> list[tuple[int, int, int]]:
    versions = []
    for tag in git.out(cwd, "tag", "--list", f"{name}@v*").split():
        m = _VERSION.match(tag.split("@", 1)[1])
        if m:
            versions.append(tuple(int(x) for x in m.groups()))
    return sorted(versions)


def next_version(versions: list[tuple[int, int, int]], bump: str) -> str:
    if not versions:
        return "v1.0.0"
    major, minor, patch = versions[-1]
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def _current(spec: Spec, lineage: dict) -> bool:
    """Whether the gate saw the spec as it is: the values of every key a stage declares (what
    `dvc status` compares), or, in a record from before those were kept, the file's bytes."""
    if "spec_params_sha256" not in lineage:
        return lineage.get("spec_sha256") == spec.sha256
    gate = stage_list.by_name("gate")
    return lineage["spec_params_sha256"] == params_sha256(spec_params(spec, gate.params(spec)))


def promote(spec: Spec, version: str | None = None, bump: str = "minor") -> str:
    """Create the tag; returns its name."""
    decision_path = spec.dir / layout.DECISION
    if not decision_path.exists():
        raise PromotionRefused("no gate decision yet: run `dvc repro` first")
    decision = json.loads(decision_path.read_text())
    if decision.get("verdict") != "pass":
        failed = ", ".join(g["gate"] for g in decision.get("gates", []) if not g.get("pass"))
        raise PromotionRefused(f"the gate failed ({failed}): nothing is promoted")
    lineage = decision.get("lineage") or {}
    if not _current(spec, lineage):
        raise PromotionRefused(f"{spec.path.name} changed since the gate ran: run `dvc repro`, then promote")
    record = [p for p in ("dvc.lock", layout.DECISION) if (spec.dir / p).exists()]
    pending = git.out(spec.dir, "status", "--porcelain", "--", *record)
    if pending:
        raise PromotionRefused(
            f"commit the build record first ({', '.join(record)}): a tag must point at a commit that rebuilds the model"
        )
    name = decision.get("model") or spec.name
    versions = existing_versions(spec.dir, name)
    if version is None:
        version = next_version(versions, bump)
    m = _VERSION.match(version)
    if not m:
        raise StageError(f"version {version!r} is not X.Y.Z")
    version = "v" + ".".join(m.groups())
    if tuple(int(x) for x in m.groups()) in versions:
        raise PromotionRefused(f"{name}@{version} exists already")
    tag = f"{name}@{version}"
    message = f"Promote {tag}\n\n" + json.dumps({"gates": decision["gates"], "lineage": lineage}, indent=2)
    git.out(spec.dir, "tag", "-a", tag, "-m", message)
    return tag
