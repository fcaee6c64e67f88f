"""What a stage declares about itself, in its own module, so that dvc.yaml, the CLI and
`distill diff` all read one description of it.

A stage module defines, near its top:

    READS = ("task.type", "teacher")      # the spec keys it reads (declared as DVC params)
    def deps(spec) -> list[str]: ...      # files it reads (relative to the spec's directory)
    def outs(spec) -> list[Out]: ...      # files it writes (DVC caches them)

and, where they apply:

    READS_WHEN = {"teacher.temperature": condition}  # keys read only when condition(spec) holds
    def metrics(spec) -> list[Out]: ...   # DVC metrics files
    def plots(spec) -> list[Out]: ...     # DVC plots files written by the stage
    def views(spec) -> list[dict]: ...    # how `dvc plots show` draws them (dvc.yaml's top-level plots)
    def applies(spec) -> bool: ...        # a stage the spec asks for (export): absent from dvc.yaml otherwise
    def spend(spec) -> dict[str, Estimate]: ...  # what it will pay endpoints, before it runs (Spend's fields)
    def report_html(spec) -> str: ...     # its section of `distill report`'s page
    def headline_html(spec) -> str: ...   # its part of the page's first screen (verdict, metrics, warnings)
    def summary_lines(spec) -> list[str]: ...  # its lines in `distill summary`, read from what it wrote

and `run(spec) -> int | None`, called with the spec's directory as the working directory.
`Stage.of(module)` reads these; distillbuild/pipeline/stage_list.py lists the stages in pipeline order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Union

from distillbuild.spec import Spec
from distillbuild.spec.loader import has_path

# Keys any stage may read that decide where and how fast its work runs, never what it makes: no
# DVC param, so a local build and a Ray build of the same spec share their outputs.
RUN_ONLY_KEYS = ("execution",)

# An output as dvc.yaml writes it: a path, or {path: {"cache": False, ...}}.
Out = Union[str, dict[str, dict[str, Any]]]
Condition = Callable[[Spec], bool]


def uncached(path: str) -> dict[str, dict[str, Any]]:
    """An output DVC tracks but does not cache: small JSON a reviewer reads in git."""
    return {path: {"cache": False}}


def _nothing(spec: Spec) -> list[Any]:
    return []


def _always(spec: Spec) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]
    run: Callable[[Spec], int | None]
    deps: Callable[[Spec], list[str]] = _nothing
    outs: Callable[[Spec], list[Out]] = _nothing
    metrics: Callable[[Spec], list[Out]] = _nothing
    plots: Callable[[Spec], list[Out]] = _nothing
    views: Callable[[Spec], list[dict[str, Any]]] = _nothing
    summary_lines: Callable[[Spec], list[str]] = _nothing
    report_html: Callable[[Spec], str] = lambda spec: ""
    headline_html: Callable[[Spec], str] = lambda spec: ""
    spend: Callable[[Spec], dict[str, Any]] | None = None  # None: it pays no endpoint
    reads_when: Mapping[str, Condition] = field(default_factory=dict)
    applies: Condition = _always
    records_every_key: bool = False  # READS_EVERY_STAGE: also reads what every other stage declares

    @classmethod
    def of(cls, module: ModuleType) -> "Stage":
        """The stage a module declares; its name is the module's."""
        declared = {
            k: getattr(module, k)
            for k in (
                *("deps", "outs", "metrics", "plots", "views", "applies"),
                *("summary_lines", "report_html", "headline_html", "spend"),
            )
            if hasattr(module, k)
        }
        return cls(
            name=module.__name__.rpartition(".")[2],
            reads=tuple(module.READS),
            run=module.run,
            reads_when=dict(getattr(module, "READS_WHEN", {})),
            records_every_key=getattr(module, "READS_EVERY_STAGE", False),
            **declared,
        )

    def params(self, spec: Spec) -> tuple[str, ...]:
        """The spec keys this stage reads for this spec, as DVC params: conditional keys only when
        their condition holds, only keys the spec file has (DVC refuses a missing params key;
        the stage then uses the schema default), and no key inside another one listed."""
        keys = [k for k in self.keys_read(spec) if has_path(spec.raw, k)]
        return tuple(k for k in keys if not any(k.startswith(other + ".") for other in keys))

    def keys_read(self, spec: Spec) -> tuple[str, ...]:
        return tuple(k for k in self.reads if self.reads_when.get(k, _always)(spec))

    def reading_every_key(self, stages: list["Stage"]) -> "Stage":
        """This stage, declaring as well every key the other stages declare, each when one of them
        reads it, and run with those keys: `run(spec, keys)`. The gate is such a stage: its
        lineage records the spec as the stages see it, so it reruns when any of that changes."""
        others = [s for s in stages if s.name != self.name]
        keys = tuple(dict.fromkeys([*self.reads, *(k for s in others for k in s.reads)]))

        def condition(key: str) -> Condition:
            readers = [s for s in (self, *others) if key in s.reads]
            return lambda spec: any(s.applies(spec) and s.reads_when.get(key, _always)(spec) for s in readers)

        wide = replace(self, reads=keys, reads_when={k: condition(k) for k in keys}, records_every_key=False)
        return replace(wide, run=lambda spec: self.run(spec, wide.params(spec)))


def trace_reads_teacher_max_tokens(spec) -> bool:
    """A trace student is given room for a rationale as long as the teacher's: teacher.max_tokens
    in prompt and field modes (explain mode's is teacher.reasoning.max_tokens, read with it)."""
    reasoning = spec.teacher.reasoning
    return spec.student.reasoning == "trace" and reasoning is not None and reasoning.mode != "explain"


def posix(path: str) -> str:
    """A data path from the spec as DVC wants it: relative to dvc.yaml, POSIX separators."""
    return Path(path).as_posix()
