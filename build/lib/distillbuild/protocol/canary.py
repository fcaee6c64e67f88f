"""The canary: are the teacher's first answers usable at all, before the whole run is paid for?

A teacher that ignores the task (a small model asked zero-shot to "answer with the category
name only" answers "This is a ..." or "I'm sorry ...") would otherwise be asked about every
input, minutes or dollars later to have every answer dropped by the filter. The check reads the
first answers as the filter would read them: usable means a label (classification: the answer
is one, starts with one, or names none while its label probabilities hold a label), a JSON
object (extraction), or a complete, non-empty text (generation).

Usable is not enough: a model held to the labels by a grammar always answers a label, even
when it does not read its input. So the canary also checks the spread of the labels against the
one a reader of the inputs would expect (the held-out set's), and stops on a label collapse.

When it stops, it names the cause it sees (no chat template, a label followed by rambling, words
outside the label set, a label cut off, a collapse) and the setting that addresses it, never
advice that would not help.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from distillbuild.errors import StageError
from distillbuild.llm.results import CallResult
from distillbuild.protocol.answers import answer_row
from distillbuild.protocol.softlabels import fold
from distillbuild.spec.model import Reasoning, Task

SHOWN = 3  # example answers in the message
MIN_LABEL_MASS = 0.1  # a label read from probabilities counts as usable when labels hold this much of them
COLLAPSE_SHARE = 0.9  # one label for at least this share of the usable answers ...
COLLAPSE_P = 1e-3  # ... and that unlikely under the label spread a reader of the inputs expects
COLLAPSE_MIN_ANSWERS = 10
TEMPLATE_MARKS = ("<<SYS", "[INST]", "[/INST]", "<</SYS", "<|im_", "<start_of_turn>", "</s>")


@dataclass(frozen=True)
class CanaryContext:
    """What the canary knows beyond the answers."""

    expected: Mapping[str, float] = field(default_factory=dict)  # label -> share a reader of the inputs expects
    no_chat_template: bool = False  # a llama.cpp GGUF served without a template of its own or a chat_format


def unusable_reason(row: dict[str, Any], task: Task) -> str | None:
    """Why an answered row is no use to the student ("cut off", "no label", ...); None when usable."""
    answer = row.get("answer")
    if row.get("refusal") or not (answer or "").strip():
        return "empty or refused"
    if task.type == "classification":
        source = row.get("label_from")
        if row.get("finish_reason") == "length" and source != "prefix":
            return "cut off"
        if source is None or source == "probabilities" and (row.get("label_mass") or 0.0) < MIN_LABEL_MASS:
            return "no label"
        return None
    if row.get("finish_reason") == "length":
        return "cut off"
    if task.type == "extraction" and not isinstance(row.get("parsed"), dict):
        return "not a JSON object"
    return None


def likely_cause(
    reasons: Counter,
    rows: list[dict[str, Any]],
    task: Task,
    max_tokens: int,
    context: CanaryContext = CanaryContext(),
    choice: str | None = None,
) -> str:
    answers = [str(r.get("answer") or "") for r in rows]
    if any(mark in a for a in answers for mark in TEMPLATE_MARKS) or (
        context.no_chat_template and reasons.get("empty or refused", 0) >= sum(reasons.values()) / 2
    ):
        return (
            "the model file carries no chat template, so llama.cpp's server wrapped the messages in the Llama-2 "
            "`[INST] <<SYS>>` format, which this model was not trained on: set teacher.llamacpp.chat_format to "
            "its family's format (chatml, gemma, ...), or ask it without chat turns with teacher.api: completions"
        )
    top = reasons.most_common(1)[0][0]
    if top == "cut off":
        cut = [a for r, a in zip(rows, answers) if r.get("finish_reason") == "length"]
        if task.labels and any(_starts_a_label(a, task.labels) for a in cut):
            return f"answers stop at teacher.max_tokens ({max_tokens}) in the middle of a label: raise it"
        if choice is None and task.type == "classification":
            return (
                "the teacher writes on past where a label would end, and the answers do not start with a label: "
                "hold it to the labels with teacher.answer_format: choice (a llama.cpp grammar, vLLM guided choice "
                "or OpenAI structured outputs; teacher.choice_constraint), or show it bare labels in task.examples"
            )
        return f"answers stop at teacher.max_tokens ({max_tokens}) before they end: raise it"
    if top == "no label":
        words = [a for a in answers if a.strip() and len(a.split()) <= 3]
        if task.type == "classification" and choice is None and len(words) >= len(answers) / 2:
            return (
                "the teacher answers with its own words for the categories, not task.labels: hold it to the labels "
                "with teacher.answer_format: choice (teacher.choice_constraint names the form your endpoint takes), "
                "or ask for logprobs (teacher.top_logprobs) so the filter can take the most probable label"
            )
        return (
            "the answers are not one of task.labels: the teacher ignores the instruction to answer with "
            "a label only; show it how with task.examples (few-shot turns), or use a stronger model"
        )
    if top == "not a JSON object":
        return "the answers are not JSON objects: use a model with structured output, or show it with task.examples"
    return "the teacher answers nothing usable: check teacher.model and the endpoint"


def _starts_a_label(answer: str, labels: tuple[str, ...]) -> bool:
    """An answer cut inside a label: a proper beginning of one (`feature_re` of feature_request)."""
    text = fold(answer)
    return bool(text) and any(fold(l).startswith(text) and fold(l) != text for l in labels)


def collapse(rows: list[dict[str, Any]], expected: Mapping[str, float], n_labels: int) -> tuple[str, int, float] | None:
    """(label, count, expected share) when one label takes at least COLLAPSE_SHARE of the usable
    answers and a binomial test at the expected share calls that all but impossible."""
    labels = [r["label"] for r in rows if r.get("label") is not None]
    if len(labels) < COLLAPSE_MIN_ANSWERS:
        return None
    label, count = Counter(labels).most_common(1)[0]
    if count < COLLAPSE_SHARE * len(labels):
        return None
    share = expected.get(label, 1.0 / n_labels) if expected else 1.0 / n_labels
    if _binomial_tail(count, len(labels), share) >= COLLAPSE_P:
        return None
    return label, count, share


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if p >= 1:
        return 1.0
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def canary_check(
    task: Task,
    max_tokens: int,
    min_usable: float,
    log: Callable[[str], None],
    reasoning: Reasoning | None = None,
    *,
    choice: str | None = None,
    context: CanaryContext = CanaryContext(),
) -> Callable[[list[dict[str, Any] | None]], None]:
    """The check `answer_all` runs on the first responses; raises StageError (exit 3) to stop.
    With teacher.reasoning, an answer is the one extracted after the rationale."""

    def check(responses: list[dict[str, Any] | None]) -> None:
        rows = [
            answer_row({"id": i, "text": ""}, CallResult(r, False), task, reasoning, choice)
            for i, r in enumerate(responses)
            if r
        ]
        if not rows:
            return  # every call failed: the run's own error handling says why
        reasons = Counter(reason for row in rows if (reason := unusable_reason(row, task)) is not None)
        usable = len(rows) - sum(reasons.values())
        log(f"teacher: canary: {usable} of {len(rows)} first answers usable (needs {min_usable:.0%})")
        stop = "the canary's answers are cached. Fix the spec and rerun, or lower teacher.canary.min_usable."
        if usable < min_usable * len(rows):
            shown = [repr((row.get("answer") or "")[:60]) for row in rows if unusable_reason(row, task)][:SHOWN]
            raise StageError(
                f"teacher canary: only {usable} of the first {len(rows)} answers are usable (needs {min_usable:.0%}); "
                f"{', '.join(f'{k} {v}' for k, v in reasons.most_common())}. Answers: {'; '.join(shown)}. "
                f"Likely cause: {likely_cause(reasons, rows, task, max_tokens, context, choice)}. Nothing more was "
                f"asked; {stop}"
            )
        if task.type == "classification" and task.labels:
            _check_spread([r for r in rows if unusable_reason(r, task) is None], task, context, choice, stop)

    return check


def _check_spread(
    usable: list[dict[str, Any]], task: Task, context: CanaryContext, choice: str | None, stop: str
) -> None:
    found = collapse(usable, context.expected, len(task.labels))
    if found is None:
        return
    label, count, share = found
    prefixed = sum(1 for r in usable if r.get("label_from") == "prefix")
    why = (
        "it is held to the labels (teacher.answer_format: choice), so it answers one whatever the input says; "
        "a base model without instruction tuning often does this"
        if choice
        else "each answer starts with that label and rambles on"
        if prefixed >= len(usable) / 2
        else "it answers the same category whatever the input says"
    )
    raise StageError(
        f"teacher canary: label collapse: {count} of the first {len(usable)} usable answers are {label!r}, where "
        f"a reader of the inputs would expect about {share:.0%} (the gold labels' share): the teacher does not read "
        f"its input; {why}. A student trained on these answers would learn one label. Try an instruction-tuned model, "
        f"more varied task.examples (one per label, in varied order), or teacher.llamacpp.chat_format for a model "
        f"served without its template. Nothing more was asked; {stop}"
    )


def canary_context(labels: tuple[str, ...] | None, heldout_labels: list[str], no_chat_template: bool) -> CanaryContext:
    """The spread a reader of the inputs expects (the held-out set's labels), and what the stage
    knows of the model file."""
    counts = Counter(l for l in heldout_labels if labels and l in labels)
    total = sum(counts.values())
    return CanaryContext(
        expected={l: c / total for l, c in counts.items()} if total else {}, no_chat_template=no_chat_template
    )
