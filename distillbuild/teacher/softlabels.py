"""From a teacher's logprobs to a probability over the task's labels.

Mapping (first-token disambiguation): the alternatives at the answer's first position are
matched to labels. A token equal to a label (after trimming spaces and quotes, case-folded)
is that label; a token that begins exactly one label is that label; a token that begins
several labels is ambiguous and its mass is left out (the row is counted as ambiguous);
other tokens are not a label. The result is renormalised over the labels it covers.
For labels that are single tokens this is exact; for multi-token labels it is the
standard first-token approximation.
"""

from __future__ import annotations

import math
from typing import Any


def _clean(token: str) -> str:
    return token.strip().strip("\"'`").casefold()


def answer_confidence(logprobs: dict[str, Any] | None) -> float | None:
    """Probability of the whole answer: exp of the sum of its tokens' logprobs."""
    content = (logprobs or {}).get("content") or []
    if not content:
        return None
    return math.exp(sum(tok.get("logprob", 0.0) for tok in content))


def label_distribution(logprobs: dict[str, Any] | None, labels: list[str]) -> tuple[dict[str, float] | None, bool]:
    """(probability per label, ambiguous?) from the first position's top_logprobs."""
    content = (logprobs or {}).get("content") or []
    if not content or not content[0].get("top_logprobs"):
        return None, False
    folded = {label: label.casefold() for label in labels}
    mass: dict[str, float] = {}
    ambiguous = False
    for alt in content[0]["top_logprobs"]:
        token = _clean(alt.get("token", ""))
        if not token:
            continue
        exact = [l for l, f in folded.items() if f == token]
        matches = exact or [l for l, f in folded.items() if f.startswith(token)]
        if len(matches) == 1:
            mass[matches[0]] = mass.get(matches[0], 0.0) + math.exp(alt.get("logprob", -math.inf))
        elif len(matches) > 1:
            ambiguous = True
    total = sum(mass.values())
    if total <= 0:
        return None, ambiguous
    return {label: p / total for label, p in sorted(mass.items(), key=lambda kv: -kv[1])}, ambiguous
