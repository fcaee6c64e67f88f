"""A reasoning teacher's reply split into its rationale and its answer (teacher.reasoning).

prompt mode: the content is reasoning, then a last line opening with the marker ("Answer:");
the answer is what follows the marker's last occurrence (its first line), and its logprobs are
the tokens from there on, so label probabilities and confidence are read at the answer, not over
the whole rationale. field mode: a reasoning model returns its reasoning apart
(`reasoning_content`, as DeepSeek and vLLM do, or `reasoning`, as OpenRouter and Ollama do) and
the content is the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from distillbuild.spec.model import Reasoning


@dataclass(frozen=True)
class Split:
    rationale: str  # "" when there is none
    answer: str | None  # None: no answer line (prompt mode), or no content
    logprobs: dict[str, Any] | None  # the answer's tokens only


def _last_marker(text: str, marker: str) -> re.Match | None:
    """The marker's last occurrence in `text`, case aside (matched on the text itself: casefolding
    first would move offsets, `ß` becoming `ss`)."""
    found = None
    for found in re.finditer(re.escape(marker), text, re.IGNORECASE):
        pass
    return found


def split_reply(message: dict[str, Any], logprobs: dict[str, Any] | None, reasoning: Reasoning) -> Split:
    content = message.get("content")
    if reasoning.mode == "field":
        rationale = message.get("reasoning_content") or message.get("reasoning") or ""
        return Split(str(rationale).strip(), content, logprobs)
    content = content or ""
    at = _last_marker(content, reasoning.marker)
    if at is None:
        return Split(content.strip(), None, None)
    lines = content[at.end() :].strip().splitlines()
    answer = lines[0].strip() if lines else ""
    return Split(content[: at.start()].strip(), answer or None, _answer_tokens(logprobs, reasoning.marker))


def _answer_tokens(logprobs: dict[str, Any] | None, marker: str) -> dict[str, Any] | None:
    """The logprobs of the tokens after the marker's last occurrence, found in the tokens' own
    text (which may differ from the reply's: stripped, or spaces a tokenizer drops), leading
    blanks skipped; a token that straddles the marker's end is not the answer's."""
    tokens = (logprobs or {}).get("content")
    if not tokens:
        return None
    pieces = [str(t.get("token", "")) for t in tokens]
    at = _last_marker("".join(pieces), marker)
    if at is None:
        return None
    position = 0
    for i, piece in enumerate(pieces):
        if position >= at.end():
            rest = list(tokens[i:])
            while rest and not str(rest[0].get("token", "")).strip():
                rest = rest[1:]
            return {**logprobs, "content": rest} if rest else None
        position += len(piece)
    return None
