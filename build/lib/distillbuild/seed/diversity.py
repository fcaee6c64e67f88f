"""How varied a set of inputs is: the figures the seed report gives for generated inputs beside
the existing ones (equal-sized samples, since distinct-n falls as a corpus grows).

- distinct-n: distinct word n-grams / all word n-grams (Li et al., 2016), n = 1 and 2;
- embedding spread: the mean cosine distance between pairs (1 - cosine similarity) of
  normalised sentence embeddings; 0 when every input says the same thing;
- novelty: the median cosine similarity of each generated input to its nearest existing input
  (1: a paraphrase of something the pipeline had already).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    grams, total = set(), 0
    for text in texts:
        words = _WORD.findall(text.lower())
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i : i + n]))
            total += 1
    return round(len(grams) / total, 6) if total else None


def spread(vectors: np.ndarray) -> float | None:
    """Mean pairwise cosine distance of normalised rows."""
    k = len(vectors)
    if k < 2:
        return None
    sims = vectors @ vectors.T
    mean_off_diagonal = (sims.sum() - np.trace(sims)) / (k * (k - 1))
    return round(float(1.0 - mean_off_diagonal), 6)


def sample(texts: Sequence[str], k: int, seed: int = 0) -> list[str]:
    texts = list(texts)
    return texts if len(texts) <= k else random.Random(seed).sample(texts, k)


def diversity(
    generated: Sequence[str],
    existing: Sequence[str],
    embed: Callable[[list[str]], np.ndarray] | None,
    max_rows: int = 500,
) -> dict:
    """The figures for the generated inputs and, on a sample of the same size, the existing ones."""
    size = min(len(generated), len(existing) or len(generated), max_rows)
    gen, old = sample(generated, size, 1), sample(existing, size, 2)
    out: dict = {
        "sample_rows": {"generated": len(gen), "existing": len(old)},
        "distinct_1": {"generated": distinct_n(gen, 1), "existing": distinct_n(old, 1)},
        "distinct_2": {"generated": distinct_n(gen, 2), "existing": distinct_n(old, 2)},
    }
    if embed is not None and gen:
        gen_v = embed(gen)
        old_v = embed(old) if old else np.zeros((0, gen_v.shape[1]))
        out["embedding_spread"] = {"generated": spread(gen_v), "existing": spread(old_v)}
        if len(old_v):
            out["novelty_nearest_similarity_median"] = round(float(np.median((gen_v @ old_v.T).max(axis=1))), 6)
    return out
