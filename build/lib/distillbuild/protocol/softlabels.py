"""From a teacher's logprobs to a probability over the task's labels, for labels of any length.

Method (sequence walk): a label's probability is that of its full token sequence. Walking the
generated tokens, each position's top_logprobs alternatives are read after the text generated so
far. An alternative that completes a label (equal to it as normalize_label compares: quotes and
case aside, spaces, dashes and underscores alike) adds P(path so far) x P(alternative) to it:
exact. An alternative that begins exactly one label but leaves the generated path adds the same
product as an upper bound (its continuation was never observed): bounded. An alternative that
begins several labels is ambiguous: its mass goes to none, and the row is counted as ambiguous.
The generated token itself is followed to the next position. These events are disjoint, so the
masses sum to at most 1; `spam` generated as `sp` + `am` gets P(sp) x P(am | sp). For
single-token labels this is the first position's distribution, as before.

`label_distribution` renormalises the masses over the labels they cover (the soft labels a
student learns from); `label_masses` gives them raw (a label's probability, which the filter
uses as the answer's confidence).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence


def fold(token: str) -> str:
    """A token or label as labels compare: no case, and spaces, dashes and underscores alike
    (`feature request` spells the label feature_request), quotes aside."""
    return re.sub(r"[\s_\-]+", "_", token.strip().strip("\"'`").casefold()).strip("_")


def answer_confidence(logprobs: dict[str, Any] | None) -> float | None:
    """Probability of the whole answer: exp of the sum of its tokens' logprobs."""
    content = (logprobs or {}).get("content") or []
    if not content:
        return None
    return math.exp(sum(tok.get("logprob", 0.0) for tok in content))


@dataclass
class _Walk:
    """What one pass over the generated tokens found."""

    events: list[tuple[int, int, str, float]] = field(default_factory=list)  # (position, rank, label, mass)
    path_label: str | None = None  # the label the generated text spells (the longest one on its way)
    path_at: int = -1  # the position where it is complete
    path_logprob: float = 0.0
    ambiguous: bool = False
    bounded: bool = False


def _match(text: str, folded: dict[str, str]) -> tuple[list[str], bool]:
    exact = [l for l, f in folded.items() if f == text]
    return (exact, True) if exact else ([l for l, f in folded.items() if f.startswith(text)], False)


def _walk(content: list[dict[str, Any]], folded: dict[str, str]) -> _Walk:
    walk, path_logprob, prefix = _Walk(), 0.0, ""
    for i, position in enumerate(content):
        generated, last = position.get("token", ""), i == len(content) - 1
        for rank, alt in enumerate(position.get("top_logprobs") or []):
            token = alt.get("token", "")
            text = fold(prefix + token)
            if token == generated or not text:
                continue  # the generated path is counted once, below
            matches, exact = _match(text, folded)
            if len(matches) == 1:
                walk.events.append((i, rank, matches[0], math.exp(path_logprob + alt.get("logprob", -math.inf))))
                walk.bounded |= not exact
            elif len(matches) > 1:
                walk.ambiguous = True
        prefix += generated
        path_logprob += position.get("logprob", -math.inf)
        matches, exact = _match(fold(prefix), folded)
        if exact or (last and len(matches) == 1 and walk.path_label is None):
            walk.path_label, walk.path_at, walk.path_logprob = matches[0], i, path_logprob
            walk.bounded |= not exact
        elif last and len(matches) > 1 and walk.path_label is None:
            walk.ambiguous = True  # the generated text stops where several labels begin
        if not matches:
            break  # the generated text left every label
    return walk


def label_masses(logprobs: dict[str, Any] | None, labels: Sequence[str]) -> tuple[dict[str, float], bool, bool]:
    """(probability of each label's full token sequence, ambiguous?, bounded?); the masses sum to at most 1."""
    content = (logprobs or {}).get("content") or []
    walk = _walk(content, {label: fold(label) for label in labels})
    events = list(walk.events)
    if walk.path_label is not None:
        # The path's mass holds every continuation; those counted for other labels come off it.
        later = [m for i, _, _, m in events if i > walk.path_at]
        path_mass = math.exp(walk.path_logprob)
        if later:
            path_mass = max(path_mass - sum(later), 0.0)
        rank = _rank_of(content[walk.path_at])
        events.append((walk.path_at, rank, walk.path_label, path_mass))
        events.sort(key=lambda e: (e[0], e[1]))
    mass: dict[str, float] = {}
    for _, _, label, m in events:
        mass[label] = mass.get(label, 0.0) + m
    return mass, walk.ambiguous, walk.bounded


def _rank_of(position: dict[str, Any]) -> int:
    """Where the generated token stands among its position's alternatives (for a stable order)."""
    tokens = [alt.get("token") for alt in position.get("top_logprobs") or []]
    return tokens.index(position.get("token")) if position.get("token") in tokens else -1


def label_distribution(logprobs: dict[str, Any] | None, labels: Sequence[str]) -> tuple[dict[str, float] | None, bool]:
    """(probability per label, renormalised over the labels covered; ambiguous?)."""
    mass, ambiguous, _bounded = label_masses(logprobs, labels)
    total = sum(mass.values())
    if total <= 0:
        return None, ambiguous
    return {label: p / total for label, p in sorted(mass.items(), key=lambda kv: -kv[1])}, ambiguous
