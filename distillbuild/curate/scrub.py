"""PII masking for production text before a teacher or the repository sees it.

Built-in rules (each on unless the spec's `data.scrub` turns it off), applied in this order so a
card number is never half-taken for a phone number:

- `card`: 13 to 19 digits, in groups separated by spaces or dashes, that pass the Luhn check
  (an order or tracking number that merely has many digits stays);
- `email`: an address `local@domain.tld`;
- `phone`: a number of 7 to 15 digits written the way phone numbers are (an optional `+` and
  country code, groups separated by spaces, dots or dashes, an optional area code in brackets),
  dates aside;
- the spec's own `patterns` (name and regular expression), after the built-ins.

A match becomes `[NAME]` (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[TICKET_REF]`). What was masked is
counted per rule; the report never holds an original value.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w-])"
                    r"|(?<![\w+])\+\d{7,15}\b")

_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")  # dates look like phones


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass
class Scrubber:
    email: bool = True
    phone: bool = True
    card: bool = True
    patterns: list[tuple[str, re.Pattern]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    rows_changed: int = 0

    @classmethod
    def from_spec(cls, section: Any) -> "Scrubber":
        """From the spec's data.scrub (a Scrub, a mapping as written, or None: every built-in rule)."""
        get = (lambda k, d: getattr(section, k, d)) if not isinstance(section, dict) else section.get
        patterns = [(p["name"].upper(), re.compile(p["regex"])) for p in get("patterns", ()) or ()]
        return cls(email=get("email", True), phone=get("phone", True), card=get("card", True), patterns=patterns)

    def _card(self, match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            self.counts["CARD"] += 1
            return "[CARD]"
        return match.group(0)

    def _phone(self, match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 7 <= len(digits) <= 15 and not _DATE.fullmatch(match.group(0)):
            self.counts["PHONE"] += 1
            return "[PHONE]"
        return match.group(0)

    def _named(self, name: str):
        def replace(match: re.Match) -> str:
            self.counts[name] += 1
            return f"[{name}]"
        return replace

    def __call__(self, text: str) -> str:
        out = text
        if self.card:
            out = _CARD.sub(self._card, out)
        if self.email:
            out = _EMAIL.sub(self._named("EMAIL"), out)
        if self.phone:
            out = _PHONE.sub(self._phone, out)
        for name, pattern in self.patterns:
            out = pattern.sub(self._named(name), out)
        if out != text:
            self.rows_changed += 1
        return out

    def report(self) -> dict:
        rules = ["CARD"] * self.card + ["EMAIL"] * self.email + ["PHONE"] * self.phone + [n for n, _ in self.patterns]
        return {"rules": rules, "masked": {name: self.counts.get(name, 0) for name in rules},
                "rows_changed": self.rows_changed}
