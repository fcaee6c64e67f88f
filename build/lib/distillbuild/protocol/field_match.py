"""Whether an answer's field counts as the gold value (pure: neither deepeval nor torch).

Strings are compared after Unicode NFKC, case folding and collapsing whitespace; numbers within
1e-6; ``null`` matches only ``null``; a value of the wrong type never matches; a required field
that is absent is wrong. An answer that is not a JSON object gets every field wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from distillbuild.spec.output_schema import FieldSpec
from distillbuild.text import normalize_text

MISSING = object()  # the value of a field an answer does not give


def values_match(predicted: Any, gold: Any) -> bool:
    """Whether one field's predicted value counts as the gold value (see the module docstring)."""
    if predicted is MISSING:
        return False
    if gold is None or predicted is None:
        return gold is None and predicted is None
    if isinstance(gold, bool) or isinstance(predicted, bool):
        return isinstance(gold, bool) and isinstance(predicted, bool) and gold == predicted
    if isinstance(gold, (int, float)) and isinstance(predicted, (int, float)):
        return math.isclose(float(predicted), float(gold), rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(gold, str) and isinstance(predicted, str):
        return normalize_text(predicted) == normalize_text(gold)
    return False


def parse_answer(text: Any) -> tuple[bool, dict[str, Any] | None]:
    """(is it JSON at all, the object or None when it is not a JSON object)."""
    if not isinstance(text, str):
        return False, None
    try:
        value = json.loads(text)
    except ValueError:
        return False, None
    return True, value if isinstance(value, dict) else None


def field_value(obj: dict[str, Any] | None, f: FieldSpec) -> Any:
    """The answer's value for a field; MISSING when it gives none (None for an absent optional field)."""
    if obj is None:
        return MISSING
    if f.name in obj:
        return obj[f.name]
    return MISSING if f.required else None


def field_matches(f: FieldSpec, answer: Any, gold: dict[str, Any]) -> bool:
    _, obj = parse_answer(answer)
    return values_match(field_value(obj, f), gold.get(f.name))


@dataclass(frozen=True)
class RowScore:
    """One answer's verdicts: JSON validity, schema validity and each field's match."""

    json_valid: bool
    schema_valid: bool
    fields: dict[str, bool]

    @property
    def exact(self) -> bool:
        return all(self.fields.values())

    @property
    def field_fraction(self) -> float:
        return sum(self.fields.values()) / len(self.fields) if self.fields else float("nan")
