"""The messages a teacher answers and a causal-LM student is trained on: one function, so both agree.

The teacher may also see few-shot examples (task.examples) as chat turns between the system
prompt and the input; the student never does: it is trained and evaluated on the bare prompt,
which is what it will be served with.
"""

from __future__ import annotations

from typing import Any, Sequence

from distillbuild.spec.inputs import Example
from distillbuild.spec.model import Task


def system_prompt(task: Task) -> str:
    instruction = task.instruction.strip()
    if task.type == "classification":
        return f"{instruction}\n\nCategories: {', '.join(task.labels)}"
    return instruction


def messages_for(task: Task, text: str, examples: Sequence[Example] = ()) -> list[dict[str, str]]:
    turns = [m for e in examples for m in ({"role": "user", "content": e.text}, {"role": "assistant", "content": e.answer})]
    return [{"role": "system", "content": system_prompt(task)}, *turns, {"role": "user", "content": text}]


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The input the teacher is asked about: the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""
