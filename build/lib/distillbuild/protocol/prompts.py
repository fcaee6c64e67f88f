"""The messages a teacher answers and a causal-LM student is trained on: one function, so both agree.

The teacher may also see few-shot examples (task.examples) as chat turns between the system
prompt and the input; the student never does: it is trained and evaluated on the bare prompt,
which is what it will be served with.
"""

from __future__ import annotations

from typing import Any, Sequence

from distillbuild.spec.inputs import Example
from distillbuild.spec.model import Reasoning, Task

DEFAULT_INSTRUCTIONS = {
    "prompt": "Think it through step by step: first write your reasoning in a few sentences.",
    "explain": "Explain in a few sentences why that is the answer.",
}


def reasoning_instruction(reasoning: Reasoning) -> str:
    """What the teacher is asked: teacher.reasoning.instruction, or its mode's default."""
    return (reasoning.instruction or DEFAULT_INSTRUCTIONS.get(reasoning.mode, "")).strip()


def system_prompt(task: Task, reasoning: Reasoning | None = None) -> str:
    """The task's instruction (and labels); with teacher.reasoning in prompt mode, the request for
    reasoning first and the answer on a last line after the marker (the teacher's prompt only)."""
    instruction = task.instruction.strip()
    if task.type == "classification":
        instruction = f"{instruction}\n\nCategories: {', '.join(task.labels)}"
    if reasoning is not None and reasoning.mode == "prompt":
        instruction += (
            f"\n\n{reasoning_instruction(reasoning)} Then write the answer alone on a last line that "
            f"starts with `{reasoning.marker}`."
        )
    return instruction


def example_answer(example: Example, reasoning: Reasoning | None = None) -> str:
    """An example's assistant turn; in prompt mode its rationale, then the answer line, which is
    what the teacher is asked to write (a model shown bare labels answers with a bare label)."""
    if reasoning is not None and reasoning.mode == "prompt":
        return f"{example.rationale}\n{reasoning.marker} {example.answer}"
    return example.answer


def messages_for(
    task: Task, text: str, examples: Sequence[Example] = (), reasoning: Reasoning | None = None
) -> list[dict[str, str]]:
    turns = [
        m
        for e in examples
        for m in ({"role": "user", "content": e.text}, {"role": "assistant", "content": example_answer(e, reasoning)})
    ]
    return [{"role": "system", "content": system_prompt(task, reasoning)}, *turns, {"role": "user", "content": text}]


def explain_messages(
    task: Task, text: str, answer: str, examples: Sequence[Example], reasoning: Reasoning
) -> list[dict[str, str]]:
    """teacher.reasoning in explain mode: the plain request's conversation continued, its answer
    given and the teacher asked why; each example shown the same way, its rationale the reply."""
    why = reasoning_instruction(reasoning)

    def asked(question: str, given: str) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": question},
            {"role": "assistant", "content": given},
            {"role": "user", "content": why},
        ]

    turns = [m for e in examples for m in (*asked(e.text, e.answer), {"role": "assistant", "content": e.rationale})]
    return [{"role": "system", "content": system_prompt(task)}, *turns, *asked(text, answer)]


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The input the teacher is asked about: the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


# "Distilling step-by-step" (Hsieh et al., 2023): one input, two tasks, told apart by a prefix.
STEP_PREFIXES = {"label": "[label] ", "rationale": "[rationale] "}


def student_messages(task: Task, text: str, reasoning: str = "answer") -> list[dict[str, str]]:
    """What a causal-LM student is asked, in training, evaluation and serving alike: the bare
    prompt; a step-by-step student is asked for its label task."""
    return messages_for(task, STEP_PREFIXES["label"] + text if reasoning == "step_by_step" else text)
