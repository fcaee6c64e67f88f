"""What a change costs in teacher calls and dollars, net of the teacher cache."""

from __future__ import annotations

from typing import Any

from distillbuild.errors import StageError
from distillbuild.pipeline.spend import spend_for


def teacher_cost(spec: Any, rebuilds: bool, seed_rebuilds: bool = False) -> dict[str, Any]:
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
