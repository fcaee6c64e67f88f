"""What a change costs in teacher calls and dollars, net of the teacher cache."""

from __future__ import annotations

from typing import Any, Collection

from distillbuild.errors import StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.spend import spend_for

# The stage whose answers the section is about (the report's `teacher` key, `new_calls`, `error`).
ANSWERING = ("teacher",)


def teacher_cost(spec: Any, rebuilding: Collection[str]) -> dict[str, Any]:
    """The calls the rebuilt stages will make, net of the cache: the teacher's answers and, in
    explain mode, its explanations (`new_calls` counts both); the seed generator's first round.
    Each stage that pays an endpoint is estimated apart: one that cannot be does not hide the
    others (its error is `error` for the stage that answers, `<stage>_error` for the others)."""
    simulated = spec.teacher.provider == "simulated"
    out: dict[str, Any] = {
        "rebuilds": any(s in rebuilding for s in ANSWERING),
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
    paying = [s.name for s in stage_list.of_spec(spec) if s.spend is not None and s.name in rebuilding]
    for name in paying:
        error_key = "error" if name in ANSWERING else f"{name}_error"
        try:
            spend = spend_for(spec, [name])
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
