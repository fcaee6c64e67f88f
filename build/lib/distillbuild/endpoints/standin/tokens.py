"""The stand-in teacher's per-token logprobs with token ids, as vLLM returns them with
`return_tokens_as_token_ids: true`: the answer tokenized with the teacher's tokenizer, then the
end-of-turn token, each position with its top-k alternatives.

At the first position the alternatives are the first tokens of the labels the stand-in weighed
(its soft label); later positions are near-certain, with the rest of the mass on other ids.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

from distillbuild.protocol.token_logprobs import PREFIX


@lru_cache(maxsize=4)
def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _entry(token_id: int, prob: float) -> dict[str, Any]:
    return {"token": f"{PREFIX}{token_id}", "logprob": math.log(max(prob, 1e-12)), "bytes": None}


def token_logprobs(
    tokenizer, answer: str, top: tuple[tuple[str, float], ...], k: int, rng: random.Random
) -> list[dict[str, Any]]:
    ids = list(tokenizer.encode(answer, add_special_tokens=False))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    vocab = len(tokenizer)
    k = max(k, 1)
    positions = []
    for n, token_id in enumerate(ids):
        if n == 0 and top:
            # Mass of each competing label goes to its first token.
            mass: dict[int, float] = {}
            for label, prob in top:
                first = tokenizer.encode(label, add_special_tokens=False)[:1]
                if first:
                    mass[first[0]] = mass.get(first[0], 0.0) + prob
            mass.setdefault(token_id, 1e-6)
        else:
            p = 0.97 + 0.029 * rng.random()
            mass = {token_id: p}
        chosen_p = mass[token_id]
        others = sorted(((i, q) for i, q in mass.items() if i != token_id), key=lambda kv: -kv[1])
        alts = [(token_id, chosen_p)] + others
        rest = max(1.0 - sum(q for _, q in alts), 1e-6)
        while len(alts) < k and len(alts) < vocab:
            filler = rng.randrange(vocab)
            if all(filler != i for i, _ in alts):
                alts.append((filler, rest / (2 ** len(alts))))
        alts = sorted(alts[:k], key=lambda kv: -kv[1])  # as a server lists them, most likely first
        entry = _entry(token_id, chosen_p)
        entry["top_logprobs"] = [_entry(i, q) for i, q in alts[:k]]
        positions.append(entry)
    return positions
