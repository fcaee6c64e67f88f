"""A reasoning teacher's reply split into its rationale and its answer (teacher.reasoning).

prompt mode: the content is reasoning, then a last line opening with the marker ("Answer:");
the answer is what follows the marker's last occurrence (its first line), and its logprobs are
the tokens from there on, so label probabilities and confidence are read at the answer, not over
the whole rationale. field mode: a reasoning model returns its reasoning apart
(`reasoning_content`, as DeepSeek and vLLM do, or `reasoning`, as OpenRouter and Ollama do) and
the content is the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distillbuild.spec.model import Reasoning


@dataclass(frozen=True)
class Split:
    rationale: str  # "" when there is none
    answer: str | None  # None: no answer line (prompt mode), or no content
    logprobs: dict[str, Any] | None  # the answer's tokens only


def split_reply(message: dict[str, Any], logprobs: dict[str, Any] | None, reasoning: Reasoning) -> Split:
    content = message.get("content")
    if reasoning.mode == "field":
        rationale = message.get("reasoning_content") or message.get("reasoning") or ""
        return Split(str(rationale).strip(), content, logprobs)
    content = content or ""
    at = content.casefold().rfind(reasoning.marker.casefold())
    if at < 0:
        return Split(content.strip(), None, None)
    end = at + len(reasoning.marker)
    lines = content[end:].strip().splitlines()
    answer = lines[0].strip() if lines else ""
    return Split(content[:at].strip(), answer or None, _tokens_from(logprobs, end))


def _tokens_from(logprobs: dict[str, Any] | None, offset: int) -> dict[str, Any] | None:
    """The logprobs of the tokens that begin at or after character `offset` (leading blanks skipped)."""
    tokens = (logprobs or {}).get("content")
    if not tokens:
        return None
    position = 0
    for i, token in enumerate(tokens):
        if position >= offset:
            rest = tokens[i:]
            while rest and not str(rest[0].get("token", "")).strip():
                rest = rest[1:]
            return {**logprobs, "content": rest} if rest else None
        position += len(token.get("token", ""))
    return None
