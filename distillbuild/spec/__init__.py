"""The spec: `distill.yaml` loaded with line marks, validated, with defaults applied.

spec = load_spec(Path("distill.yaml"))   # raises SpecError listing every issue
spec.teacher.concurrency                 # typed sections (spec/model.py), defaults filled in
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillbuild.console import log
from distillbuild.errors import SpecError, SpecIssue
from distillbuild.metric_names import GATE_FIGURE_KEY, GATE_FIGURE_OLD_KEY
from distillbuild.spec.loader import LoadedYaml, get_path, load_yaml_file
from distillbuild.spec.model import SpecModel, section_values
from distillbuild.spec.schema import apply_defaults, schema_issues
from distillbuild.spec.semantic import find_repo_root, semantic_issues

DEFAULT_SPEC = "distill.yaml"


@dataclass(frozen=True)
class Spec(SpecModel):
    """The typed sections (`spec.task`, `spec.teacher`, ... see SpecModel), plus where the spec
    was loaded from and the mappings it was built from."""

    path: Path  # absolute path of the spec file
    raw: dict[str, Any]  # as written
    data: dict[str, Any]  # with defaults
    repo_root: Path
    lines: dict[str, int] = field(default_factory=dict, repr=False)  # key path -> line, for messages

    # The untyped fallback, for readers not yet moved to the typed sections: prefer
    # `spec.student.kd.alpha` to `spec["student"]["kd"]["alpha"]` or `spec.get("student.kd.alpha")`,
    # so a key's readers can be found by its name.
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, dotted: str, default: Any = None) -> Any:
        return get_path(self.data, dotted, default)

    @property
    def dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the spec, resolved against the spec's directory."""
        return (self.dir / relative).resolve()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def display_name(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    absolute = path.absolute()
    cwd = Path.cwd()
    return str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(absolute)


def validate_document(doc: LoadedYaml, spec_path: Path, to_be_written: tuple[str, ...] = ()) -> None:
    """Raise SpecError with every schema and semantic issue of an already-parsed spec."""
    if not isinstance(doc.data, dict):
        kind = (
            "a list"
            if isinstance(doc.data, list)
            else f"a single value ({'null' if doc.data is None else repr(doc.data)[:40]})"
        )
        raise SpecError(
            [SpecIssue(doc.file, doc.line_of(""), "", f"the top level must be a mapping of sections, not {kind}")]
        )
    issues = schema_issues(doc)
    issues += semantic_issues(doc, spec_path.parent, find_repo_root(spec_path.parent), to_be_written)
    if issues:
        raise SpecError(issues)


def load_spec(path: Path | str = DEFAULT_SPEC, to_be_written: tuple[str, ...] = ()) -> Spec:
    """The validated spec; `to_be_written`: file keys (or sections, "data"; "*": all) whose files
    the caller is about to write or never reads, so they need not exist (a served image holds no data)."""
    path = Path(path)
    doc = load_yaml_file(path, display_name(path))
    abs_path = path.resolve()
    validate_document(doc, abs_path, to_be_written)
    _warn_deprecated(doc, display_name(path))
    data = apply_defaults(doc.data)
    return Spec(
        path=abs_path,
        raw=doc.data,
        data=data,
        repo_root=find_repo_root(abs_path.parent),
        lines=doc.lines,
        **section_values(SpecModel, data),
    )


_warned: set[tuple[str, str]] = set()


def _warn_deprecated(doc, name: str) -> None:
    """Keys still read under an old name, said once per file and key in a process (stderr)."""
    for gate, bound in (doc.data.get("gates") or {}).items():
        if isinstance(bound, dict) and GATE_FIGURE_OLD_KEY in bound:
            key = f"gates.{gate}.{GATE_FIGURE_OLD_KEY}"
            if (name, key) not in _warned:
                _warned.add((name, key))
                log(
                    f"{name}:{doc.lines.get(key, '?')}: {key} is deprecated (YAML 1.1 tools such as PyYAML read the "
                    f"key `on` as true): write `{GATE_FIGURE_KEY}: {bound[GATE_FIGURE_OLD_KEY]}`; `on` will be "
                    "refused in a later release"
                )
