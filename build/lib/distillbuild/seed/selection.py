"""Which generated inputs are kept, and why each other one is not.

Before these, a failed call is dropped whole (generator_error), and so is a reply that cannot be
read (unparsable_reply); of a reply cut off at seed.max_tokens, its unfinished input (cut_off).
Checked in this order, a candidate getting the first reason that applies: empty, too_short,
too_long, echoes_prompt (holds the opening words of a line of its request's own wording),
copies_example (equal to an example its request showed), duplicate_of_input (equal
to an existing input), duplicate (equal to a generated input kept in an earlier round),
contaminated (near-duplicates a held-out input), duplicate (equal to one earlier in the same
round), near_duplicate_of_input, near_duplicate (MinHash over word 3-grams, as the filter's
dedup). Equality is after normalize_text (NFKC, case, whitespace).
The state carries over rounds: a later round's inputs are checked against the earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from distillbuild.text import normalize_text

REASONS = (
    "generator_error",
    "unparsable_reply",
    "cut_off",
    "empty",
    "too_short",
    "too_long",
    "echoes_prompt",
    "copies_example",
    "duplicate_of_input",
    "duplicate",
    "contaminated",
    "near_duplicate_of_input",
    "near_duplicate",
    "over_quota",
)


ECHO_CHARS = 24  # a candidate holding the opening of one of its request's lines echoes the request


def _opening(line: str) -> str:
    return normalize_text(line).rstrip(".:!?")[:ECHO_CHARS]


@dataclass(frozen=True)
class Candidate:
    text: str
    cell: Any  # requests.Cell
    examples: tuple[str, ...]
    meta: dict[str, Any]  # what the output row records of its request (topic, round, ...)
    prompt_lines: tuple[str, ...] = ()  # its request's own wording (requests.instruction_lines)


@dataclass
class Selection:
    """Kept candidates so far, and what they are compared with."""

    existing: list[str]  # data.inputs and data.human texts
    heldout: list[str]  # every held-out set's texts
    min_chars: int
    max_chars: int
    near_threshold: float
    decontaminate_threshold: float | None  # None: no decontamination
    kept: list[Candidate] = field(default_factory=list)
    dropped: list[tuple[Candidate, str, str]] = field(default_factory=list)  # (candidate, reason, detail)

    def __post_init__(self) -> None:
        self._existing_keys = {normalize_text(t) for t in self.existing}
        self._kept_keys: dict[str, int] = {}

    def add(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Check a round's candidates; those kept are appended to `kept` and returned."""
        survivors = [c for c in candidates if not self._row_reason(c)]
        survivors = self._decontaminated(survivors)  # before repeats: a leak's twin is a leak too
        survivors = self._first_of_round(survivors)
        survivors = self._not_near_duplicates(survivors)
        for c in survivors:
            self._kept_keys[normalize_text(c.text)] = len(self.kept)
            self.kept.append(c)
        return survivors

    def drop(self, candidate: Candidate, reason: str, detail: str) -> None:
        self.dropped.append((candidate, reason, detail))

    def _first_of_round(self, rows: list[Candidate]) -> list[Candidate]:
        """Each text once within the round: a later equal one is a duplicate."""
        seen: set[str] = set()
        first = []
        for c in rows:
            key = normalize_text(c.text)
            if key in seen:
                self.drop(c, "duplicate", "equals an input generated earlier in this round")
            else:
                seen.add(key)
                first.append(c)
        return first

    def _row_reason(self, c: Candidate) -> bool:
        """Drop `c` for the first row-level reason that applies; True if dropped."""
        key = normalize_text(c.text)
        examples = {normalize_text(e) for e in c.examples}
        echoed = next((line for line in c.prompt_lines if _opening(line) in key), None)
        reason = (
            ("empty", "no text")
            if not key
            else ("too_short", f"{len(c.text)} < {self.min_chars} characters")
            if len(c.text) < self.min_chars
            else ("too_long", f"{len(c.text)} > {self.max_chars} characters")
            if len(c.text) > self.max_chars
            else ("echoes_prompt", f"repeats the request's line {echoed[:60]!r}")
            if echoed
            else ("copies_example", "equals an example its request showed")
            if key in examples
            else ("duplicate_of_input", "equals an existing input")
            if key in self._existing_keys
            else ("duplicate", f"equals generated input #{self._kept_keys[key]}")
            if key in self._kept_keys
            else None
        )
        if reason is None:
            return False
        self.drop(c, *reason)
        return True

    def _decontaminated(self, rows: list[Candidate]) -> list[Candidate]:
        if self.decontaminate_threshold is None or not self.heldout or not rows:
            return rows
        from distillbuild.curate.neardup import contaminated_by  # datasketch: loaded only when used

        hits = contaminated_by([c.text for c in rows], self.heldout, self.decontaminate_threshold)
        clean = []
        for c, hit in zip(rows, hits):
            if hit is None:
                clean.append(c)
            else:
                self.drop(c, "contaminated", f"near-duplicates held-out input #{hit}: {self.heldout[hit][:60]!r}")
        return clean

    def _not_near_duplicates(self, rows: list[Candidate]) -> list[Candidate]:
        if not rows:
            return rows
        from distillbuild.curate.neardup import near_duplicate_representatives

        before = self.existing + [c.text for c in self.kept]
        reps = near_duplicate_representatives(before + [c.text for c in rows], self.near_threshold)
        clean = []
        for i, c in enumerate(rows):
            rep = reps[len(before) + i]
            if rep == len(before) + i:
                clean.append(c)
            elif rep < len(self.existing):
                self.drop(c, "near_duplicate_of_input", f"near-duplicates existing input {self.existing[rep][:60]!r}")
            else:
                other = before[rep] if rep < len(before) else rows[rep - len(before)].text
                self.drop(c, "near_duplicate", f"near-duplicates generated input {other[:60]!r}")
        return clean
