"""PII masking for production text before a teacher or the repository sees it.

The spec's own `patterns` (name and regular expression) go first, so its identifiers are never
half-taken for phone numbers; then the built-in rules (each on unless `data.scrub` turns it
off), in this order so a card number is never half-taken for a phone number:

- `card`: 13 to 19 digits, in groups separated by spaces or dashes, that pass the Luhn check
  (an order or tracking number that merely has many digits stays), also with a CVV, an expiry or
  a quantity written beside it;
- `email`: an address `local@domain.tld`;
- `phone`: a number of 7 to 15 digits written the way phone numbers are (an optional `+` and
  country code, groups separated by spaces, dots or dashes, an optional area code in brackets,
  or 10 to 15 digits in one piece), dates, year ranges, IP addresses and time ranges aside.

A match becomes `[NAME]` (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[TICKET_REF]`). What was masked is
counted per rule; the report never holds an original value.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from distillbuild.spec.model import Scrub

# A run of digit groups joined by single spaces or dashes: a card may sit inside it (a CVV or a
# quantity beside it), so the groups are tried as prefixes and suffixes too.
_CARD = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,8}(?:[\s.-]\d{2,8}){1,4}(?![\w-])"
    r"|(?<![\w+])(?:\+\d{1,3}[\s.-])?\+?\d{10,15}(?![\w-])"
)
# Numbers shaped like phone numbers that are not: dates, year ranges, IP addresses, time ranges.
_NOT_PHONE = re.compile(
    r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|(?:19|20)\d\d\s?[-/]\s?(?:19|20)\d\d"
    r"|\d{1,3}(?:\.\d{1,3}){3}|\d{1,2}[.:]\d{2}\s?-\s?\d{1,2}[.:]\d{2}"
)


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
    def from_spec(cls, section: Scrub | None) -> "Scrubber":
        """From the spec's data.scrub (None: every built-in rule)."""
        section = section or Scrub()
        patterns = [(p["name"].upper(), re.compile(p["regex"])) for p in section.patterns]
        return cls(email=section.email, phone=section.phone, card=section.card, patterns=patterns)

    def _card(self, match: re.Match) -> str:
        """The run whole, else its longest prefix or suffix of whole groups, that is a card."""
        text = match.group(0)
        groups = list(re.finditer(r"\d+", text))
        spans = sorted(
            ((i, j) for i in range(len(groups)) for j in range(i + 1, len(groups) + 1) if i == 0 or j == len(groups)),
            key=lambda ij: ij[0] - ij[1],
        )
        for i, j in spans:
            digits = "".join(g.group(0) for g in groups[i:j])
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                self.counts["CARD"] += 1
                start, end = groups[i].start(), groups[j - 1].end()
                return text[:start] + "[CARD]" + text[end:]
        return text

    def _phone(self, match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 7 <= len(digits) <= 15 and not _NOT_PHONE.match(match.group(0)):
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
        for name, pattern in self.patterns:  # the spec's own first: its identifiers are not phone numbers
            out = pattern.sub(self._named(name), out)
        if self.card:
            out = _CARD.sub(self._card, out)
        if self.email:
            out = _EMAIL.sub(self._named("EMAIL"), out)
        if self.phone:
            out = _PHONE.sub(self._phone, out)
        if out != text:
            self.rows_changed += 1
        return out

    def report(self) -> dict:
        rules = ["CARD"] * self.card + ["EMAIL"] * self.email + ["PHONE"] * self.phone + [n for n, _ in self.patterns]
        return {
            "rules": rules,
            "masked": {name: self.counts.get(name, 0) for name in rules},
            "rows_changed": self.rows_changed,
        }
