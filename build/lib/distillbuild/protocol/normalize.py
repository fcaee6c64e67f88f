"""Normalising teacher answers to labels, and texts for duplicate detection."""

from __future__ import annotations

import re

from distillbuild.text import normalize_text  # noqa: F401 - also this module's API

_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:category|label|class|intent|answer|classification)\s*(?:is)?\s*[:=\-]?\s*", re.I
)
_EDGE = re.compile(r"^[\s\"'`*_\[\(\{<]+|[\s\"'`*_\]\)\}>.,;:!?]+$")


def _label_key(text: str) -> str:
    # Labels compare without case, and with spaces, dashes and underscores alike.
    return re.sub(r"[\s_\-]+", "_", normalize_text(text)).strip("_")


def normalize_label(answer: str | None, labels: list[str]) -> str | None:
    """The label an answer names, or None. Accepts case, whitespace, quotes, markdown
    emphasis, a "Category: x" prefix and trailing punctuation around a label."""
    if not answer:
        return None
    by_key = {_label_key(label): label for label in labels}
    # Peel decorations one kind at a time ("Category:" prefixes, quotes, markdown, punctuation),
    # checking every layer, so labels that end in punctuation ("payment?") still match.
    frontier, seen = [answer.strip()], set()
    for _ in range(4):
        peeled = []
        for candidate in frontier:
            if candidate in seen:
                continue
            seen.add(candidate)
            hit = by_key.get(_label_key(candidate))
            if hit is not None:
                return hit
            peeled += [_PREFIX.sub("", candidate, count=1).strip(), _EDGE.sub("", candidate)]
        frontier = peeled
    return None
