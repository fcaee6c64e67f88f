"""teacher.reasoning in explain mode: rationales asked for after the answers (rationalization).

The teacher first answers as a plain teacher does (the same requests, so a plain run's answers
come from the cache). Then each training input whose answer is a label is asked again: the same
conversation, its answer given, and "why?"; the reply is the row's rationale. It is for a teacher
whose answers are better than its reasoning: SmolLM2-135M, asked to reason first, answered
`spam` to 87% of legitimate e-mails; its plain answers were right 61% of the time on the same rows.
Held-out rows are not explained: they measure the teacher's answers, and no student trains on them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from distillbuild.llm.results import CallResult
from distillbuild.llm.settings import TeacherSettings
from distillbuild.protocol.normalize import normalize_label
from distillbuild.protocol.prompts import explain_messages
from distillbuild.spec.inputs import Example
from distillbuild.spec.model import Reasoning, Task


def in_reply(reasoning: Reasoning | None) -> Reasoning | None:
    """The reasoning to split each reply by: explain mode's answers are plain ones."""
    return reasoning if reasoning is not None and reasoning.mode != "explain" else None


def explain_settings(settings: TeacherSettings, reasoning: Reasoning, spent_usd: float) -> TeacherSettings:
    """The teacher's settings for the explanations: one sample, no logprobs (a rationale's
    probabilities are not used, and llama.cpp is several times slower returning them), the
    rationale's own length limit, and what is left of the budget."""
    budget = None if settings.budget_usd is None else max(settings.budget_usd - spent_usd, 0.0)
    return replace(
        settings,
        max_tokens=reasoning.max_tokens,
        top_logprobs=0,
        token_ids=False,
        samples=1,
        budget_usd=budget,
        constraint=None,
    )  # an explanation is free text


def explain_requests(
    task: Task, rows: Sequence[dict[str, Any]], examples: Sequence[Example], reasoning: Reasoning
) -> list[tuple[int, list[dict[str, str]]]]:
    """(row index, messages) for each row whose answer is one of the task's labels."""
    asked = []
    for i, row in enumerate(rows):
        label = normalize_label(row.get("answer"), task.labels) if row.get("error") is None else None
        if label is not None:
            asked.append((i, explain_messages(task, row["text"], label, examples, reasoning)))
    return asked


def attach_rationales(rows: list[dict[str, Any]], asked: Sequence[int], results: Sequence[CallResult | None]) -> None:
    """Each explained row gets `rationale` (empty when the call failed, with `rationale_error`)
    and `rationale_truncated` when the explanation hit reasoning.max_tokens."""
    for i, result in zip(asked, results):
        row = rows[i]
        if result is None or result.response is None:
            row.update(
                rationale="", rationale_error=result.error if result else "not asked: the budget stopped the run"
            )
            continue
        choice = (result.response.get("choices") or [{}])[0] or {}
        row["rationale"] = str((choice.get("message") or {}).get("content") or "").strip()
        if choice.get("finish_reason") == "length":
            row["rationale_truncated"] = True
