"""The near-duplicate and contamination checks of curate/neardup.py, spread over a Ray cluster,
with the same answers.

The costly part, shingling and MinHash signatures, runs in Ray tasks over chunks of the texts.
LSH banding then runs one task per band: rows whose band slice is equal share a bucket (what
datasketch's index does, with the bands its optimiser picks), each pair in a bucket is checked
against the MinHash estimate, and the verified pairs come back. The driver joins them into
clusters (connected components, the earliest text representing each): the same edges give the
same components whatever order they arrive in, so the representatives are the local engine's.
Decontamination is per training text: each task indexes the held-out signatures and answers for
its chunk exactly as the local loop does.
"""

from __future__ import annotations

import numpy as np

from distillbuild.curate import neardup
from distillbuild.protocol.normalize import normalize_text

CHUNK = 4096  # texts per signature task


def _remote(fn, num_cpus: float):
    import ray

    return ray.remote(num_cpus=num_cpus)(fn)


def _sign(items: list[tuple[int, str]], num_perm: int, shingle_size: int, seed: int) -> tuple[list[int], np.ndarray]:
    """(the indices whose text has shingles, their signatures as a (n, num_perm) matrix)."""
    owners, sets = [], []
    for i, text in items:
        grams = neardup.shingles(text, shingle_size)
        if grams:
            owners.append(i)
            sets.append(grams)
    _, matrix = neardup._signatures(sets, num_perm, seed)
    return owners, matrix


def _band_pairs(matrix: np.ndarray, start: int, stop: int, threshold: float) -> np.ndarray:
    """Verified pairs (a, b), a < b, of rows of `matrix` equal on columns [start, stop)."""
    keys = np.ascontiguousarray(matrix[:, start:stop]).view(np.dtype((np.void, (stop - start) * 4))).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    pairs = []
    for bucket in np.split(order, bounds):
        if len(bucket) < 2:
            continue
        bucket = np.sort(bucket)
        for k in range(len(bucket) - 1):
            a, rest = bucket[k], bucket[k + 1 :]
            estimates = np.count_nonzero(matrix[rest] == matrix[a], axis=1) / float(matrix.shape[1])
            for b in rest[estimates >= threshold]:
                pairs.append((a, b))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def near_duplicate_representatives(
    texts: list[str], threshold: float, *, workers: int, num_cpus: float = 1, num_perm: int = 128,
    shingle_size: int = 3, seed: int = 1,
) -> list[int]:  # fmt: skip
    """neardup.near_duplicate_representatives, on Ray."""
    import ray

    neardup._check(threshold, num_perm)
    parent = list(range(len(texts)))
    first_of_text: dict[str, int] = {}
    distinct_texts: list[tuple[int, str]] = []
    for i, text in enumerate(texts):  # exact duplicates: a dict lookup per text, on the driver
        key = normalize_text(text)
        if key in first_of_text:
            neardup._union(parent, first_of_text[key], i)
        else:
            first_of_text[key] = i
            distinct_texts.append((i, text))
    sign = _remote(_sign, num_cpus)
    chunk = max(1, min(CHUNK, -(-len(distinct_texts) // max(1, workers))))
    parts = ray.get(
        [sign.remote(distinct_texts[s : s + chunk], num_perm, shingle_size, seed)
         for s in range(0, len(distinct_texts), chunk)]
    )  # fmt: skip
    owners = [i for part_owners, _ in parts for i in part_owners]
    matrix = np.concatenate([m for _, m in parts]) if parts else np.empty((0, num_perm), np.uint32)
    distinct = neardup._join_identical_signatures(parent, owners, matrix)
    if len(distinct) > 1:
        bands, rows = neardup._bands(threshold, num_perm)
        shared = ray.put(matrix[distinct])
        band = _remote(_band_pairs, num_cpus)
        found = ray.get([band.remote(shared, b * rows, (b + 1) * rows, threshold) for b in range(bands)])
        distinct_owners = [owners[p] for p in distinct]
        for pairs in found:
            for a, b in pairs.tolist():
                neardup._union(parent, distinct_owners[a], distinct_owners[b])
    return [neardup._find(parent, i) for i in range(len(texts))]


def _contaminated_chunk(
    texts: list[str], exact: dict[str, int], held_owners: list[int], held_sketches, held_matrix: np.ndarray,
    threshold: float, num_perm: int, shingle_size: int, seed: int,
) -> list[int | None]:  # fmt: skip
    """The local loop of neardup._contaminated, for one chunk of training texts."""
    result: list[int | None] = [exact.get(normalize_text(text)) for text in texts]
    if not held_owners:
        return result
    lsh = neardup._index(held_sketches, threshold, num_perm)
    todo = [i for i, hit in enumerate(result) if hit is None]
    todo_sets = [neardup.shingles(texts[i], shingle_size) for i in todo]
    todo = [i for i, grams in zip(todo, todo_sets) if grams]
    sketches, matrix = neardup._signatures([g for g in todo_sets if g], num_perm, seed)
    for i, sketch, row in zip(todo, sketches, matrix):
        best = min(
            ((-est, held_owners[k]) for k, est in neardup._verified(lsh, sketch, row, held_matrix, threshold)),
            default=None,
        )
        if best is not None:
            result[i] = best[1]
    return result


def contaminated_by(
    train_texts: list[str], heldout_texts: list[str], threshold: float, *, workers: int, num_cpus: float = 1,
    num_perm: int = 128, shingle_size: int = 3, seed: int = 1,
) -> list[int | None]:  # fmt: skip
    """neardup.contaminated_by, on Ray: the held-out index built once here, each task answering a chunk."""
    import ray

    neardup._check(threshold, num_perm)
    exact: dict[str, int] = {}
    for j, text in enumerate(heldout_texts):
        exact.setdefault(normalize_text(text), j)
    held_owners, held_sets = [], []
    for j, text in enumerate(heldout_texts):
        grams = neardup.shingles(text, shingle_size)
        if grams:
            held_owners.append(j)
            held_sets.append(grams)
    held_sketches, held_matrix = neardup._signatures(held_sets, num_perm, seed)
    refs = [ray.put(x) for x in (exact, held_owners, held_sketches, held_matrix)]
    task = _remote(_contaminated_chunk, num_cpus)
    chunk = max(1, min(CHUNK, -(-len(train_texts) // max(1, workers))))
    parts = ray.get(
        [task.remote(train_texts[s : s + chunk], *refs, threshold, num_perm, shingle_size, seed)
         for s in range(0, len(train_texts), chunk)]
    )  # fmt: skip
    return [hit for part in parts for hit in part]
