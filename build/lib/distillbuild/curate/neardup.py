"""Near-duplicate detection: MinHash LSH (datasketch) over word shingles of normalised text.

Two texts are near-duplicates when the MinHash estimate of the Jaccard similarity of their word
shingle sets is at or above a threshold. LSH banding (datasketch's `MinHashLSH`, bands chosen by
its optimiser for the threshold and `num_perm`) only proposes candidate pairs; every candidate is
then checked against the MinHash estimate itself, exactly as `MinHash.jaccard` computes it.

Texts equal after `normalize_text` (exact duplicates) always match. A text with no words (empty,
or punctuation only) has no shingles: it matches only its exact duplicates.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH

from distillbuild.protocol.normalize import normalize_text

_PUNCT = re.compile(r"[^\w\s]+")


def shingles(text: str, size: int = 3) -> set[bytes]:
    """The word `size`-grams of `normalize_text(text)` with punctuation turned into spaces, as
    UTF-8 bytes. A text of fewer than `size` words gives one shingle of all its words; an empty
    text gives the empty set."""
    if size < 1:
        raise ValueError("shingle size must be at least 1")
    words = _PUNCT.sub(" ", normalize_text(text)).split()
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


# (false positive, false negative) weights for datasketch's band optimiser. Every LSH candidate is
# verified against the MinHash estimate, so a false positive costs one vectorised comparison while a
# false negative is a lost pair: weigh misses heavily. At 0.8 and 128 permutations this gives 16
# bands of 8 rows (P(candidate) 0.95 at J=0.8, 0.99 at 0.85) instead of the balanced 9 x 13
# (0.40 at J=0.8, 0.69 at 0.85).
_LSH_WEIGHTS = (0.05, 0.95)


@lru_cache(maxsize=64)
def _bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's optimiser picks for the threshold and num_perm."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_LSH_WEIGHTS)
    except ValueError:  # the optimum is one band (thresholds near 1), which MinHashLSH refuses
        return 2, num_perm // 2
    return lsh.b, lsh.r


def _check(threshold: float, num_perm: int) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be at least 2, got {num_perm}")


@contextmanager
def _gc_paused() -> Iterator[None]:
    # The LSH tables hold a set per bucket, about a million container objects for 100k texts,
    # none of them in a cycle. Without the pause, full collections rescanning that growing heap
    # made 100k texts take 12-14x the time of 10k (about 11x with it, see docs/benchmarks.md).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _signatures(shingle_sets: list[set[bytes]], num_perm: int, seed: int) -> tuple[list[MinHash], np.ndarray]:
    """One MinHash per (non-empty) set, and their hash values stacked as a (n, num_perm) matrix."""
    sketches = MinHash.bulk(shingle_sets, num_perm=num_perm, seed=seed)
    matrix = np.stack([m.hashvalues for m in sketches]) if sketches else np.empty((0, num_perm), np.uint32)
    return sketches, matrix


def _index(sketches: list[MinHash], threshold: float, num_perm: int) -> MinHashLSH:
    lsh = MinHashLSH(num_perm=num_perm, params=_bands(threshold, num_perm))
    with lsh.insertion_session() as session:
        for key, sketch in enumerate(sketches):
            session.insert(key, sketch, check_duplication=False)
    return lsh


def _verified(
    lsh: MinHashLSH, sketch: MinHash, row: np.ndarray, matrix: np.ndarray, threshold: float
) -> Iterator[tuple[int, float]]:
    """Indexed keys whose estimated Jaccard with `sketch` is >= threshold, with the estimate."""
    candidates = np.fromiter(lsh.query(sketch), dtype=np.int64)
    if candidates.size == 0:
        return
    # Same arithmetic as MinHash.jaccard: matching slots / num_perm, compared as floats.
    estimates = np.count_nonzero(matrix[candidates] == row, axis=1) / float(matrix.shape[1])
    keep = estimates >= threshold
    yield from zip(candidates[keep].tolist(), estimates[keep].tolist())


def near_duplicate_representatives(
    texts: list[str], threshold: float, num_perm: int = 128, shingle_size: int = 3, seed: int = 1
) -> list[int]:
    """For each text, the index of its cluster's representative, the earliest text of the cluster
    (a kept text maps to itself). Clusters are the connected components of the pairs whose
    MinHash-estimated Jaccard is >= threshold (LSH candidates, each verified) plus exact
    duplicates. Deterministic for given texts and parameters."""
    _check(threshold, num_perm)
    with _gc_paused():
        return _representatives(texts, threshold, num_perm, shingle_size, seed)


def _representatives(texts: list[str], threshold: float, num_perm: int, shingle_size: int, seed: int) -> list[int]:
    # Exact duplicates, then identical signatures, join without LSH; only distinct ones are indexed.
    parent = list(range(len(texts)))
    owners, sets = _join_exact_duplicates(parent, texts, shingle_size)
    sketches, matrix = _signatures(sets, num_perm, seed)
    del sets
    distinct = _join_identical_signatures(parent, owners, matrix)
    if len(distinct) > 1:
        _join_near_duplicates(
            parent,
            [owners[p] for p in distinct],
            [sketches[p] for p in distinct],
            matrix[distinct],
            threshold,
            num_perm,
        )
    return [_find(parent, i) for i in range(len(texts))]


def _find(parent: list[int], i: int) -> int:
    """The root of i in the union-find forest `parent` (with path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], i: int, j: int) -> None:
    ri, rj = _find(parent, i), _find(parent, j)
    if ri != rj:
        parent[max(ri, rj)] = min(ri, rj)  # the smaller index is the root: root == representative


def _join_exact_duplicates(
    parent: list[int], texts: list[str], shingle_size: int
) -> tuple[list[int], list[set[bytes]]]:
    """Join texts equal after normalize_text; the first text of each, if it has shingles, is returned
    as (its text index, its shingle set)."""
    first_of_text: dict[str, int] = {}
    owners: list[int] = []  # text index of each distinct non-empty shingle set
    sets: list[set[bytes]] = []
    for i, text in enumerate(texts):
        key = normalize_text(text)
        if key in first_of_text:
            _union(parent, first_of_text[key], i)
            continue
        first_of_text[key] = i
        grams = shingles(text, shingle_size)
        if grams:
            owners.append(i)
            sets.append(grams)
    return owners, sets


def _join_identical_signatures(parent: list[int], owners: list[int], matrix: np.ndarray) -> list[int]:
    """Join the texts whose MinHash signatures are equal; the rows (positions in `matrix`) of the
    first of each signature."""
    first_of_sig: dict[bytes, int] = {}
    distinct: list[int] = []
    for pos in range(len(matrix)):
        sig = matrix[pos].tobytes()
        if sig in first_of_sig:
            _union(parent, owners[first_of_sig[sig]], owners[pos])
        else:
            first_of_sig[sig] = pos
            distinct.append(pos)
    return distinct


def _join_near_duplicates(
    parent: list[int], owners: list[int], sketches: list[MinHash], matrix: np.ndarray, threshold: float, num_perm: int
) -> None:
    """Join each pair of sketches that LSH proposes and the MinHash estimate confirms."""
    lsh = _index(sketches, threshold, num_perm)
    for a, sketch in enumerate(sketches):
        for b, _ in _verified(lsh, sketch, matrix[a], matrix, threshold):
            if b > a:  # each unordered pair once
                _union(parent, owners[a], owners[b])


def contaminated_by(
    train_texts: list[str],
    heldout_texts: list[str],
    threshold: float,
    num_perm: int = 128,
    shingle_size: int = 3,
    seed: int = 1,
) -> list[int | None]:
    """For each training text, the index of a held-out text it near-duplicates (MinHash-estimated
    Jaccard >= threshold), else None. An exact duplicate (equal after `normalize_text`) comes
    first; otherwise, of several, the most similar, then the earliest."""
    _check(threshold, num_perm)
    with _gc_paused():
        return _contaminated(train_texts, heldout_texts, threshold, num_perm, shingle_size, seed)


def _contaminated(
    train_texts: list[str], heldout_texts: list[str], threshold: float, num_perm: int, shingle_size: int, seed: int
) -> list[int | None]:
    exact: dict[str, int] = {}
    for j, text in enumerate(heldout_texts):
        exact.setdefault(normalize_text(text), j)
    held_owners: list[int] = []
    held_sets: list[set[bytes]] = []
    for j, text in enumerate(heldout_texts):
        grams = shingles(text, shingle_size)
        if grams:
            held_owners.append(j)
            held_sets.append(grams)

    result: list[int | None] = [exact.get(normalize_text(text)) for text in train_texts]
    if not held_sets:
        return result
    held_sketches, held_matrix = _signatures(held_sets, num_perm, seed)
    lsh = _index(held_sketches, threshold, num_perm)

    todo = [i for i, hit in enumerate(result) if hit is None]
    todo_sets = [shingles(train_texts[i], shingle_size) for i in todo]
    todo = [i for i, grams in zip(todo, todo_sets) if grams]
    train_sketches, train_matrix = _signatures([g for g in todo_sets if g], num_perm, seed)
    for i, sketch, row in zip(todo, train_sketches, train_matrix):
        best = min(
            ((-est, held_owners[k]) for k, est in _verified(lsh, sketch, row, held_matrix, threshold)), default=None
        )
        if best is not None:
            result[i] = best[1]
    return result
