"""What the generator is asked: quotas split into cells, requests that fill them, their prompts.

A cell is one label (classification; None otherwise) and one value of each attribute. Every
label's quota is dealt over the attribute combinations in turn, so each value of an attribute
gets an equal share. A request asks for `per_request` inputs of one cell and shows a few
example inputs, drawn with a seed from (seed, cell, round, request number), and its own sampling
seed (the request's `seed`), so that two requests with the same prompt are sampled apart and a
round that asks again for what dropped rows left short never gets a cached copy of an old reply.

The prompt's wording is read back by `read_request` (the stand-in generator uses it), so the
two live here together.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from distillbuild.spec.model import Seed, Task

SYSTEM_PROMPT = (
    "You write new, realistic inputs for a task, for training a model on it. Write inputs only, never their answers."
)
EXAMPLE_CHARS = 500  # an example longer than this is cut: prompts stay within small models' context
_SEPARATOR = "---"


@dataclass(frozen=True)
class Cell:
    label: str | None
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        parts = ([self.label] if self.label is not None else []) + [f"{k}={v}" for k, v in self.attributes]
        return ", ".join(parts) or "all"


@dataclass(frozen=True)
class SeedRequest:
    cell: Cell
    asked: int
    topic: str | None
    round: int
    examples: tuple[str, ...]
    sampling_seed: int  # sent as the request's `seed`: the same prompt, sampled anew, caches apart
    messages: list[dict[str, str]] = field(compare=False)


def quotas(task: Task, seed: Seed) -> dict[Cell, int]:
    """How many new inputs each cell keeps."""
    labels: Sequence[str | None] = list(task.labels or ()) if task.type == "classification" else [None]
    if seed.per_label is not None:
        per_label = {label: seed.per_label for label in labels}
    else:  # a total, spread evenly (the first labels take the remainder)
        base, extra = divmod(seed.count or 0, len(labels))
        per_label = {label: base + (i < extra) for i, label in enumerate(labels)}
    attributes = seed.attributes or {}
    combos = [tuple(zip(attributes, values)) for values in itertools.product(*attributes.values())] or [()]
    out: dict[Cell, int] = {}
    for label, total in per_label.items():
        for slot in range(total):
            cell = Cell(label, combos[slot % len(combos)])
            out[cell] = out.get(cell, 0) + 1
    return out


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def plan(
    task: Task,
    seed: Seed,
    shortfall: Mapping[Cell, int],
    round_no: int,
    pool: Sequence[tuple[str, str | None]],
    topic_offset: int = 0,
) -> list[SeedRequest]:
    """The requests of one round: for each cell short of its quota, enough requests to fill it.
    `pool`: (text, label or None) example inputs to show; a cell's own label first."""
    requests: list[SeedRequest] = []
    topics = list(seed.topics or ())
    for cell, missing in shortfall.items():
        for j in range(-(-missing // seed.per_request)):
            asked = min(seed.per_request, missing - j * seed.per_request)
            rng = _rng(seed.seed, cell.name, round_no, j)
            examples = _examples(pool, cell.label, seed.examples, rng)
            topic = topics[(topic_offset + len(requests)) % len(topics)] if topics else None
            messages = messages_for(task, seed, cell, asked, topic, examples)
            requests.append(SeedRequest(cell, asked, topic, round_no, examples, rng.randrange(2**31), messages))
    return requests


def _examples(pool: Sequence[tuple[str, str | None]], label: str | None, k: int, rng: random.Random) -> tuple[str, ...]:
    """k example inputs: of the cell's label where labelled ones exist (all but one of them, so
    that requests differ even when a label has only a few), then any others."""
    if k <= 0:
        return ()
    own = [t for t, l in pool if label is not None and l == label]
    rest = [t for t, l in pool if not (label is not None and l == label)]
    chosen = rng.sample(own, min(max(1, k - 1) if rest else k, len(own)))
    chosen += rng.sample(rest, max(0, min(k - len(chosen), len(rest))))
    return tuple(_cut(t) for t in chosen)


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS].rstrip() + " ..."


def messages_for(
    task: Task, seed: Seed, cell: Cell, asked: int, topic: str | None, examples: Sequence[str]
) -> list[dict[str, str]]:
    lines = [f"The task: {task.instruction.strip()}"]
    if task.type == "classification":
        lines.append(f"Its categories: {', '.join(task.labels or ())}")
    if examples:
        lines += ["", "Example inputs:", *[f"{_SEPARATOR}\n{e}" for e in examples], _SEPARATOR]
    what = "new input" if asked == 1 else "new inputs"
    ask = f"Write {asked} {what}"
    if cell.label is not None:
        ask += f' that {"belongs" if asked == 1 else "belong"} in the category "{cell.label}"'
    lines += ["", ask + "."]
    if topic:
        lines.append(f"Topic: {topic}")
    lines += [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in cell.attributes]
    if seed.instruction:
        lines.append(seed.instruction.strip())
    lines.append("Make each one different from the examples" + (" and from each other." if asked > 1 else "."))
    lines.append(
        "Reply with the new input only, nothing before or after it."
        if asked == 1
        else f"Reply with a JSON array of {asked} strings and nothing else."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


@dataclass(frozen=True)
class AskedFor:
    """A seed request read back from its messages (what a generator sees)."""

    label: str | None
    count: int
    examples: tuple[str, ...]


_ASK = re.compile(r'^Write (\d+) new inputs?(?: that belongs? in the category "(.*)")?\.$', re.M)


def read_request(messages: Sequence[Mapping[str, Any]]) -> AskedFor | None:
    """The request's label, count and examples; None when the messages are not a seed request."""
    if not messages or messages[0].get("content") != SYSTEM_PROMPT or len(messages) < 2:
        return None
    user = str(messages[-1].get("content") or "")
    ask = _ASK.search(user)
    if ask is None:
        return None
    examples: tuple[str, ...] = ()
    if "\nExample inputs:\n" in user:
        block = user.split("\nExample inputs:\n", 1)[1].split(f"\n{_SEPARATOR}\n\n", 1)[0]
        examples = tuple(e.strip() for e in block.split(_SEPARATOR) if e.strip())
    return AskedFor(ask.group(2), int(ask.group(1)), examples)


def instruction_lines(request: SeedRequest, min_chars: int = 20) -> tuple[str, ...]:
    """The lines of a request's prompt that are its own wording, not an example's: a reply that
    repeats one (or its opening words) echoes the request instead of writing an input (small
    models do)."""
    shown = {line.strip() for e in request.examples for line in e.splitlines()}
    lines = [m["content"] for m in request.messages]
    return tuple(
        line.strip()
        for text in lines
        for line in text.splitlines()
        if len(line.strip()) >= min_chars and line.strip() not in shown
    )
