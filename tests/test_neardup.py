"""Near-duplicate detection (MinHash LSH over word shingles): shingles, clusters, decontamination."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from datasketch import MinHash

from distillbuild.curate.neardup import contaminated_by, near_duplicate_representatives, shingles

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CARD = (
    "I ordered a new card for my account two weeks ago and it still has not arrived at my home "
    "address, can you check where it is"
)
TOP_UP = "My top up from my credit card went through but the balance in the app has not changed since yesterday"
UNRELATED = [
    "How do I change my PIN?",
    "What are the fees for sending money abroad to a euro account?",
    "Why was my transfer to a friend declined twice this morning?",
    "Can I get a virtual card for online shopping?",
    "Which currencies can I hold in my account?",
    "The ATM kept my card, what should I do now?",
    "Is there a limit on how much cash I can withdraw each day?",
    "I think someone used my card without permission, please freeze it.",
]


def jaccard(a: str, b: str, size: int = 3) -> float:
    x, y = shingles(a, size), shingles(b, size)
    return len(x & y) / len(x | y)


def estimate(a: str, b: str, num_perm: int = 128, seed: int = 1) -> float:
    ma, mb = (MinHash(num_perm=num_perm, seed=seed) for _ in range(2))
    ma.update_batch(list(shingles(a)))
    mb.update_batch(list(shingles(b)))
    return ma.jaccard(mb)


def words(rng: random.Random, n: int) -> list[str]:
    return [f"w{rng.randrange(10**6)}" for _ in range(n)]


# ---------------------------------------------------------------- shingles


def test_shingles_are_word_trigrams_of_normalized_text_without_punctuation():
    assert shingles("Hello, World!  How are YOU?") == {b"hello world how", b"world how are", b"how are you"}
    assert shingles("Ｈｅｌｌｏ   WORLD, how are you") == shingles("hello world how are you")
    assert shingles("top-up isn't working") == {b"top up isn", b"up isn t", b"isn t working"}
    assert shingles("a b c d", size=2) == {b"a b", b"b c", b"c d"}
    assert shingles("straße café", size=1) == {b"strasse", "café".encode()}


def test_short_and_empty_texts():
    assert shingles("Hi there!") == {b"hi there"}
    assert shingles("one two three") == {b"one two three"}
    assert shingles("word") == {b"word"}
    assert shingles("") == set()
    assert shingles("  ?! ... ") == set()
    with pytest.raises(ValueError):
        shingles("a b c", size=0)


# ---------------------------------------------------------------- clusters


def test_planted_near_duplicates_cluster_under_the_earliest():
    copies = [CARD.upper() + "??", "Hi, " + CARD + " thanks", CARD.replace("arrived", "arived")]
    assert all(jaccard(CARD, c) >= 0.85 for c in copies[:2])
    texts = [UNRELATED[0], copies[0], UNRELATED[1], CARD, TOP_UP, copies[1], UNRELATED[2], TOP_UP.lower() + "."]
    reps = near_duplicate_representatives(texts, 0.8)
    assert reps == [0, 1, 2, 1, 4, 1, 6, 4]


def test_clearly_different_texts_are_not_clustered():
    texts = UNRELATED + [CARD, TOP_UP]
    assert near_duplicate_representatives(texts, 0.8) == list(range(len(texts)))
    assert near_duplicate_representatives(texts, 0.5) == list(range(len(texts)))


def test_exact_duplicates_cluster_and_wordless_texts_match_only_exactly():
    texts = ["Where is my card?", "", "  where IS my   card?", "?", "Ｗhere is my card?", "", "!!", "where is my card"]
    reps = near_duplicate_representatives(texts, 0.8)
    # "where is my card" has the same shingles (punctuation aside): a near-duplicate at any threshold.
    assert reps == [0, 1, 0, 3, 0, 1, 6, 0]
    assert near_duplicate_representatives([], 0.8) == []
    assert near_duplicate_representatives(["only one"], 0.8) == [0]


def test_clusters_are_connected_components():
    rng = random.Random(3)
    seq = words(rng, 112)
    a, b, c = (" ".join(seq[k : k + 102]) for k in (0, 5, 10))  # sliding windows of 100 shingles
    assert jaccard(a, b) == pytest.approx(95 / 105) and jaccard(a, c) == pytest.approx(90 / 110)
    assert estimate(a, b, 256) >= 0.86 and estimate(b, c, 256) >= 0.86 and estimate(a, c, 256) < 0.86
    texts = [UNRELATED[0], a, UNRELATED[1], c, b]
    assert near_duplicate_representatives(texts, 0.86, num_perm=256) == [0, 1, 2, 1, 1]


def test_threshold_is_respected():
    rng = random.Random(5)
    base = words(rng, 22)  # 20 shingles
    other = base[:16] + words(rng, 6)  # shares 14 of them: 14 / 26
    a, b = " ".join(base), " ".join(other)
    assert 0.4 <= jaccard(a, b) <= 0.6
    assert near_duplicate_representatives([a, b], 0.8) == [0, 1]
    assert near_duplicate_representatives([a, b], 0.3) == [0, 0]
    same = a.upper() + "!"  # same shingles as a
    assert near_duplicate_representatives([a, b, same], 1.0) == [0, 1, 0]
    with pytest.raises(ValueError):
        near_duplicate_representatives([a, b], 0.0)
    with pytest.raises(ValueError):
        near_duplicate_representatives([a, b], 1.5)


def _corpus(seed: int = 11) -> list[str]:
    """Texts with variants from near-identical to half-changed: many pairs close to 0.8."""
    rng = random.Random(seed)
    texts = []
    for _ in range(60):
        seq = words(rng, 20)
        texts.append(" ".join(seq))
        for edits in (1, 1, 2, 3, 5):
            variant = list(seq)
            for _ in range(edits):
                variant[rng.choice([0, 19, rng.randrange(20)])] = words(rng, 1)[0]
            texts.append(" ".join(variant))
    rng.shuffle(texts)
    return texts


def test_every_joined_pair_is_verified_by_the_minhash_estimate():
    texts = _corpus()
    t = 0.8
    reps = near_duplicate_representatives(texts, t)
    sketches = MinHash.bulk([list(shingles(x)) for x in texts], num_perm=128, seed=1)
    parent = list(range(len(texts)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    verified = 0
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if sketches[i].jaccard(sketches[j]) >= t:
                verified += 1
                parent[max(find(i), find(j))] = min(find(i), find(j))
    brute = [find(i) for i in range(len(texts))]
    near_misses = sum(
        0.6 <= sketches[i].jaccard(sketches[j]) < t for i in range(len(texts)) for j in range(i + 1, len(texts))
    )
    assert verified > 50 and near_misses > 50  # the corpus has both sides of the threshold
    # No cluster joins texts that the estimate keeps apart (LSH candidates alone never join)...
    assert all(brute[i] == brute[reps[i]] for i in range(len(texts)))
    # ...and LSH misses almost none of the verified pairs.
    assert sum(r != i for i, r in enumerate(reps)) >= 0.95 * sum(r != i for i, r in enumerate(brute))


def test_representatives_are_deterministic_across_processes_and_hash_seeds():
    texts = _corpus(seed=12)
    here = near_duplicate_representatives(texts, 0.8)
    assert here == near_duplicate_representatives(list(texts), 0.8)
    script = (
        "import json, sys; from distillbuild.curate.neardup import near_duplicate_representatives as f; "
        "print(json.dumps(f(json.load(sys.stdin), 0.8)))"
    )
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        ).stdout
        assert json.loads(out) == here
    assert sum(r != i for i, r in enumerate(here)) > 20


# ---------------------------------------------------------------- decontamination


def test_contaminated_by_finds_heldout_paraphrases_and_ignores_unrelated_rows():
    heldout = [UNRELATED[3], CARD, UNRELATED[5]]
    train = [
        UNRELATED[0],
        "hello, " + CARD.upper() + " thanks!",
        UNRELATED[1],
        "  can I get a VIRTUAL card for online shopping",
        TOP_UP,
        "",
        "The ATM kept my card",
    ]
    assert contaminated_by(train, heldout, 0.8) == [None, 1, None, 0, None, None, None]
    assert contaminated_by(train, [], 0.8) == [None] * len(train)
    assert contaminated_by([], heldout, 0.8) == []


def test_contaminated_by_names_the_most_similar_heldout_text():
    further = CARD + " please and thank you so much"
    assert 0.8 <= jaccard(CARD, further) < 1.0
    heldout = [UNRELATED[0], further, CARD.upper() + "!"]
    assert contaminated_by([CARD], heldout, 0.8) == [2]
    assert contaminated_by([CARD], heldout[:2], 0.8) == [1]


def test_contaminated_by_respects_the_threshold():
    rng = random.Random(8)
    base = words(rng, 22)
    half = " ".join(base[:16] + words(rng, 6))
    assert 0.4 <= jaccard(" ".join(base), half) <= 0.6
    assert contaminated_by([half], [" ".join(base)], 0.8) == [None]
    assert contaminated_by([half], [" ".join(base)], 0.3) == [0]
