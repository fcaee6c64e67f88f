"""What a build will pay its endpoints before it runs, net of the cache, as each stage that pays
one says (its `spend`): the teacher's answers, its explanations (teacher.reasoning explain mode)
and the seed generator's first round. Read by `distill estimate` and by `distill diff`, so a pull
request sees the same calls the run makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from distillbuild.llm.estimate import Estimate
from distillbuild.pipeline import stage_list
from distillbuild.spec import Spec


@dataclass(frozen=True)
class Spend:
    answers: Estimate | None  # the teacher stage's answers (None: not asked for)
    explanations: Estimate | None = None  # explain mode: at most one per training input with a label
    seed: Estimate | None = None  # the seed generator's first round (later ones ask only for what dropped)

    @property
    def teacher_calls(self) -> int:
        """Calls the teacher stage makes: its answers, then its explanations."""
        return sum(e.to_call for e in (self.answers, self.explanations) if e is not None)

    def as_dict(self) -> dict:
        """The answers' figures, with `explanations` and `seed` beside them where they are asked for."""
        body = self.answers.as_dict() if self.answers is not None else {}
        if self.explanations is not None:
            body["explanations"] = self.explanations.as_dict()
        if self.seed is not None:
            body["seed"] = self.seed.as_dict()
        return body


def spend_for(spec: Spec, stages: Collection[str] | None = None) -> Spend:
    """The estimates of the spec's stages that pay an endpoint (their `spend`), of those named
    in `stages` (None: all of them)."""
    parts: dict[str, Estimate | None] = {"answers": None}
    for stage in stage_list.of_spec(spec):
        if stage.spend is not None and (stages is None or stage.name in stages):
            parts.update(stage.spend(spec))
    return Spend(**parts)
