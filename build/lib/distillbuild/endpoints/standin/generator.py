"""The stand-in generator: a seed request (distillbuild.seed.requests) answered offline.

It writes the requested number of inputs by drawing, with a seed from the request (its prompt
and its `seed`), texts of
the requested category from its answer key (its pool), and now and then copies one of the
examples it was shown, as real generators do. Drawn with replacement across requests, so
duplicates arise the way they do with a real model asked many times. A stand-in: it writes
nothing new, and is labelled as such wherever its results are shown.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from distillbuild.endpoints.standin.teacher import SimulatedTeacher, chat_completion, estimate_prompt_tokens
from distillbuild.seed.requests import read_request

COPY_EXAMPLE_RATE = 0.1  # the share of written inputs that copy an example the request showed


def seed_completion(
    teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int
) -> dict[str, Any] | None:
    """The completion for a seed request; None for any other request."""
    messages = request.get("messages") or []
    asked = read_request(messages)
    if asked is None:
        return None
    digest = hashlib.sha256(json.dumps([teacher.seed, request.get("seed"), messages], sort_keys=True).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    pool = sorted(t for t, e in teacher.key.items() if asked.label is None or e.label == asked.label)
    written = []
    for _ in range(asked.count):
        if asked.examples and (not pool or rng.random() < COPY_EXAMPLE_RATE):
            written.append(rng.choice(asked.examples))
        elif pool:
            written.append(rng.choice(pool))
    content = written[0] if asked.count == 1 and written else json.dumps(written, ensure_ascii=False)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, "refusal": None},
        "finish_reason": "stop",
        "logprobs": None,
    }
    return chat_completion(
        "sim", counter, model, teacher.seed, [choice], estimate_prompt_tokens(messages), 1 + len(content) // 4
    )
