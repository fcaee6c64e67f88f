"""The pipeline's stages, in order. Each module declares its own contract (pipeline/contract.py):
the spec keys it reads, its deps, outs, metrics and plots, and `run`. compile.py, the CLI's
`distill stage NAME` and `distill diff` all read this one list.

Adding a stage: one module in pipeline/stages/, and one entry below.
"""

from __future__ import annotations

from distillbuild.pipeline.contract import Stage
from distillbuild.pipeline.stages import (
    configure,
    dataset,
    evaluate,
    export,
    filter,
    gate,
    pairs,
    preference,
    route,
    seed,
    teacher,
    train,
)

_STAGES: list[Stage] = [
    Stage.of(seed),  # only when the spec has a `seed` section
    Stage.of(teacher),
    Stage.of(filter),
    Stage.of(dataset),
    Stage.of(configure),
    Stage.of(train),
    Stage.of(pairs),  # only when the spec has student.preference: DPO pairs from the SFT student
    Stage.of(preference),  # and DPO on them
    Stage.of(evaluate),
    Stage.of(route),  # only when the spec has a `route` section
    Stage.of(gate),
    Stage.of(export),  # only when the spec has an `export` section
]
# The gate records the spec as all of them see it (its lineage), so it declares their keys too.
PIPELINE: list[Stage] = [stage.reading_every_key(_STAGES) if stage.records_every_key else stage for stage in _STAGES]


def names() -> list[str]:
    return [stage.name for stage in PIPELINE]


def of_spec(spec) -> list[Stage]:
    """The stages this spec's pipeline has, in order (a stage may apply only when asked for)."""
    return [stage for stage in PIPELINE if stage.applies(spec)]


def by_name(name: str) -> Stage:
    for stage in PIPELINE:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage named {name!r}; the stages are {', '.join(names())}")
