"""The messages a teacher answers and a causal-LM student is trained on: one function, so both agree."""

from __future__ import annotations

from typing import Any

from distillbuild.spec.model import Task


def system_prompt(task: Task) -> str:
    instruction = task.instruction.strip()
    if task.type == "classification":
        return f"{instruction}\n\nCategories: {', '.join(task.labels)}"
    return instruction


def messages_for(task: Task, text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(task)}, {"role": "user", "content": text}]


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The input the teacher is asked about: the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""
