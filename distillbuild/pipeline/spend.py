"""What a build will pay its endpoints before it runs, net of the cache: the teacher's answers,
its explanations (teacher.reasoning explain mode) and the seed generator's first round. Read by
`distill estimate` and by `distill diff`, so a pull request sees the same calls the run makes."""

from __future__ import annotations

from dataclasses import dataclass

from distillbuild.llm.estimate import Estimate
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


def spend_for(spec: Spec, teacher: bool = True, seed: bool = True) -> Spend:
    """The estimates of the stages asked for (`teacher`, `seed`) that the spec has."""
    from distillbuild.pipeline.stages import seed as seed_stage
    from distillbuild.pipeline.stages.teacher import estimate_for, explanations_estimate_for

    answers = estimate_for(spec) if teacher else None
    explains = teacher and spec.teacher.reasoning is not None and spec.teacher.reasoning.mode == "explain"
    return Spend(
        answers=answers,
        explanations=explanations_estimate_for(spec, answers.cost_usd_max) if explains else None,
        seed=seed_stage.estimate_for(spec) if seed and spec.seed is not None else None,
    )
