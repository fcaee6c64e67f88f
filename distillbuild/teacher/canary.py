"""The canary: are the teacher's first answers usable at all, before the whole run is paid for?

A teacher that ignores the task (a small model asked zero-shot to "answer with the category
name only" answers "This is a ..." or "I'm sorry ...") would otherwise be asked about every
input, minutes or dollars later to have every answer dropped by the filter. The check reads the
first answers as the filter would read them: usable means a label (classification), a JSON
object (extraction), or a complete, non-empty text (generation).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from distillbuild.curate.normalize import normalize_label
from distillbuild.errors import StageError
from distillbuild.spec.model import Reasoning, Task
from distillbuild.teacher.answers import answer_row
from distillbuild.teacher.results import CallResult

SHOWN = 3  # example answers in the message


def unusable_reason(row: dict[str, Any], task: Task) -> str | None:
    """Why an answered row is no use to the student ("cut off", "no label", ...); None when usable."""
    answer = row.get("answer")
    if row.get("refusal") or not (answer or "").strip():
        return "empty or refused"
    if row.get("finish_reason") == "length":
        return "cut off"
    if task.type == "classification" and normalize_label(answer, task.labels) is None:
        return "no label"
    if task.type == "extraction" and not isinstance(row.get("parsed"), dict):
        return "not a JSON object"
    return None


def likely_cause(reasons: Counter, task: Task, max_tokens: int) -> str:
    top = reasons.most_common(1)[0][0]
    if top == "cut off":
        return f"answers stop at teacher.max_tokens ({max_tokens}) before they end: raise it"
    if top == "no label":
        return ("the answers are not one of task.labels: the teacher ignores the instruction to answer with "
                "a label only; show it how with task.examples (few-shot turns), or use a stronger model")
    if top == "not a JSON object":
        return "the answers are not JSON objects: use a model with structured output, or show it with task.examples"
    return "the teacher answers nothing usable: check teacher.model and the endpoint"


def canary_check(task: Task, max_tokens: int, min_usable: float, log: Callable[[str], None],
                 reasoning: Reasoning | None = None) -> Callable[[list[dict[str, Any] | None]], None]:
    """The check `answer_all` runs on the first responses; raises StageError (exit 3) to stop.
    With teacher.reasoning, an answer is the one extracted after the rationale."""

    def check(responses: list[dict[str, Any] | None]) -> None:
        rows = [answer_row({"id": i, "text": ""}, CallResult(r, False), task, reasoning)
                for i, r in enumerate(responses) if r]
        if not rows:
            return  # every call failed: the run's own error handling says why
        reasons = Counter(reason for row in rows if (reason := unusable_reason(row, task)) is not None)
        usable = len(rows) - sum(reasons.values())
        log(f"teacher: canary: {usable} of {len(rows)} first answers usable (needs {min_usable:.0%})")
        if usable >= min_usable * len(rows):
            return
        shown = [repr((row.get("answer") or "")[:60]) for row in rows if unusable_reason(row, task)][:SHOWN]
        raise StageError(
            f"teacher canary: only {usable} of the first {len(rows)} answers are usable (needs {min_usable:.0%}); "
            f"{', '.join(f'{k} {v}' for k, v in reasons.most_common())}. Answers: {'; '.join(shown)}. "
            f"Likely cause: {likely_cause(reasons, task, max_tokens)}. Nothing more was asked; these answers are "
            f"cached. Fix the spec and rerun, or lower teacher.canary.min_usable.")

    return check
