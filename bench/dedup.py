"""Near-duplicate detection: speed, linearity and precision/recall of
`distillbuild.curate.neardup.near_duplicate_representatives` on real customer queries, in one run.

    .venv/bin/python bench/dedup.py [--quick] [--threshold 0.8] [--json PATH] [--data DIR]

Data: BANKING77 (13,083 real online-banking queries) read from ../shared/datasets/banking77 (never
copied into the repository). For each size n the bench builds n rows:

1. A pool of distinct rows: the real queries plus deterministic paraphrase-level rewrites of them
   (synonyms, filler words, contractions, typos, clause swaps; two interior edits per rewrite).
2. Cleaning: an exact set-similarity join (prefix filtering, no MinHash) finds every pair of pool
   rows whose exact shingle Jaccard is >= threshold - 0.1; walking the shuffled pool, a row is
   dropped when it has such a pair with a row already kept. The kept rows are the base rows: no
   two of them are closer than 0.1 below the threshold.
3. Planting: 5% of the n rows are light copies of base rows (case, punctuation, one filler word at
   an edge, a typo in the first or last word, or two of these), kept only when the copy's exact
   Jaccard with its original is >= threshold + 0.05 and it is not an exact duplicate (those are the
   exact-dedup pass's job). Copies go to random positions.
4. Ground truth: the exact join at 0.5 over the final n rows. Positives are all pairs with exact
   Jaccard >= threshold (the planted pairs, plus any other the join finds); everything else is a
   negative. Precision and recall count pairs: two rows are reported as a pair when they get the
   same representative.

The machine is shared and noisy: the time per size is the best of a few repeats, and only ratios
from this run mean anything. Progress goes to stderr; the table, the checks and a one-line JSON
blob to stdout. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import math
import os
import platform
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillbuild.curate.neardup import near_duplicate_representatives, shingles  # noqa: E402
from distillbuild.protocol.normalize import normalize_text  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"
PLANTED_FRACTION = 0.05
CLEAN_MARGIN = 0.1  # base rows: no pair at exact Jaccard >= threshold - CLEAN_MARGIN
PLANT_MARGIN = 0.05  # planted copies: exact Jaccard >= threshold + PLANT_MARGIN
SEED = 77

# ---------------------------------------------------------------- rewrites

SYNONYMS = {
    "want": ["need", "would like"],
    "need": ["want", "require"],
    "money": ["funds", "cash"],
    "funds": ["money"],
    "cash": ["money"],
    "card": ["bank card", "debit card"],
    "account": ["bank account"],
    "get": ["receive", "obtain"],
    "received": ["gotten", "got"],
    "receive": ["get"],
    "why": ["how come"],
    "can": ["could"],
    "could": ["can"],
    "help": ["assist"],
    "charged": ["billed"],
    "fee": ["charge"],
    "charge": ["fee"],
    "wrong": ["incorrect"],
    "check": ["verify"],
    "use": ["utilize"],
    "buy": ["purchase"],
    "cancel": ["stop"],
    "problem": ["issue"],
    "issue": ["problem"],
    "phone": ["mobile"],
    "app": ["application"],
    "tell": ["let me know"],
    "show": ["display"],
    "payment": ["transaction"],
    "transfer": ["transaction"],
    "how": ["in what way"],
    "where": ["in which place"],
    "is": ["seems"],
    "my": ["the"],
    "do": ["should"],
    "still": ["yet"],
    "arrived": ["come"],
    "arrive": ["come"],
    "change": ["update"],
    "find": ["locate"],
}
START = ["hi,", "hello,", "hey,", "good morning,", "excuse me,", "quick question:", "hi there,"]
END = ["please", "thanks", "thank you", "thanks in advance", "asap", "please help"]
MID = ["please", "actually", "really", "just", "exactly", "currently", "maybe"]
REMOVABLE = {"please", "just", "really", "still", "actually", "the", "a", "my", "so", "now"}
CONTRACTIONS = [
    ("i have", "i've"),
    ("do not", "don't"),
    ("cannot", "can't"),
    ("i am", "i'm"),
    ("it is", "it's"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("what is", "what's"),
]
SPLITS = [", ", " and ", " but ", " because ", " so ", "? "]


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap two letters
    if kind == 1:
        return word[:i] + word[i + 1 :]  # drop a letter
    return word[:i] + word[i] + word[i:]  # double a letter


def _interior(words: list[str], rng: random.Random) -> int:
    return rng.randrange(1, len(words) - 1) if len(words) > 2 else rng.randrange(len(words))


def op_synonym(text: str, rng: random.Random) -> str | None:
    words = text.split()
    spots = [i for i, w in enumerate(words) if w.lower().strip("?.,!") in SYNONYMS]
    if not spots:
        return None
    i = rng.choice(spots)
    core = words[i].lower().strip("?.,!")
    words[i] = words[i].lower().replace(core, rng.choice(SYNONYMS[core]), 1)
    return " ".join(words)


def op_mid_filler(text: str, rng: random.Random) -> str | None:
    words = text.split()
    words.insert(_interior(words, rng), rng.choice(MID))
    return " ".join(words)


def op_remove(text: str, rng: random.Random) -> str | None:
    words = text.split()
    spots = [i for i, w in enumerate(words) if w.lower() in REMOVABLE]
    if not spots or len(words) < 4:
        return None
    del words[rng.choice(spots)]
    return " ".join(words)


def op_typo(text: str, rng: random.Random) -> str | None:
    words = text.split()
    i = _interior(words, rng)
    words[i] = typo(words[i], rng)
    return " ".join(words)


def op_contraction(text: str, rng: random.Random) -> str | None:
    low = text.lower()
    pairs = [(a, b) for a, b in CONTRACTIONS if a in low] + [(b, a) for a, b in CONTRACTIONS if b in low]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    at = low.index(a)
    return text[:at] + b + text[at + len(a) :]


def op_reorder(text: str, rng: random.Random) -> str | None:
    for sep in rng.sample(SPLITS, len(SPLITS)):
        at = text.find(sep)
        if 0 < at < len(text) - len(sep):
            head, tail = text[:at].strip(), text[at + len(sep) :].strip().rstrip("?.!")
            return f"{tail}{sep.rstrip()} {head[0].lower()}{head[1:]}?"
    return None


def op_edges(text: str, rng: random.Random) -> str | None:
    return f"{rng.choice(START)} {text[0].lower()}{text[1:]} {rng.choice(END)}"


INTERIOR_OPS = [op_synonym, op_mid_filler, op_remove, op_typo, op_contraction, op_reorder]


def rewrite(text: str, rng: random.Random) -> str:
    """A paraphrase-level rewrite: two interior edits, sometimes filler at the edges."""
    done = 0
    for op in rng.sample(INTERIOR_OPS, len(INTERIOR_OPS)):
        changed = op(text, rng)
        if changed:
            text, done = changed, done + 1
            if done == 2:
                break
    if rng.random() < 0.3:
        text = op_edges(text, rng)
    return text


def light_copy(text: str, rng: random.Random) -> tuple[str, str]:
    """A planted near-duplicate: one or two small edits that leave the wording in place."""

    def case(t: str) -> str:
        return rng.choice([t.lower(), t.upper(), t.title(), t.capitalize(), t.swapcase()])

    def punct(t: str) -> str:
        t = t.rstrip("?.! ")
        first, _, rest = t.partition(" ")
        t = rng.choice([t, f"{first}, {rest}" if rest else t, t.replace(",", "")])
        return t + rng.choice(["", "?", "??", ".", "!", " ?", "..."])

    def filler(t: str) -> str:
        return rng.choice([f"{rng.choice(['hi,', 'hello,', 'hey,'])} {t}", f"{t} {rng.choice(['please', 'thanks'])}"])

    def edge_typo(t: str) -> str:
        words = t.split()
        i = rng.choice([0, len(words) - 1])
        words[i] = typo(words[i], rng)
        return " ".join(words)

    edits = {"case": case, "punct": punct, "filler": filler, "edge typo": edge_typo}
    names = rng.sample(sorted(edits), rng.choice([1, 2]))
    for name in names:
        text = edits[name](text)
    return text, "+".join(sorted(names))


# ---------------------------------------------------------------- exact Jaccard join


def exact_pairs(sets: list[frozenset[bytes]], threshold: float) -> dict[tuple[int, int], float]:
    """Every pair (i < j) with exact Jaccard >= threshold, by prefix filtering (AllPairs): under one
    global token order (rarest first), two sets with Jaccard >= t share a token among the first
    |s| - ceil(t|s|) + 1 tokens of each. Exact; no MinHash involved."""
    freq = Counter(tok for s in sets for tok in s)
    rank = {tok: r for r, tok in enumerate(sorted(freq, key=lambda tok: (freq[tok], tok)))}
    index: dict[int, list[int]] = defaultdict(list)
    found: dict[tuple[int, int], float] = {}
    for j, s in enumerate(sets):
        if not s:
            continue
        n = len(s)
        ordered = sorted(rank[tok] for tok in s)
        prefix = ordered[: n - math.ceil(threshold * n - 1e-9) + 1]
        candidates = {i for tok in prefix for i in index[tok]}
        for i in candidates:
            m = len(sets[i])
            if threshold * max(n, m) > min(n, m) + 1e-9:  # length filter
                continue
            inter = len(s & sets[i])
            jac = inter / (n + m - inter)
            if jac >= threshold:
                found[(i, j)] = jac
        for tok in prefix:
            index[tok].append(j)
    return found


# ---------------------------------------------------------------- data


def load_queries(data: Path) -> list[str]:
    texts: list[str] = []
    for name in ("train.csv", "test.csv"):
        with open(data / name, newline="", encoding="utf-8") as f:
            texts += [row["text"].strip() for row in csv.DictReader(f)]
    seen: set[str] = set()
    return [t for t in texts if t and not (normalize_text(t) in seen or seen.add(normalize_text(t)))]


def clean_pool(queries: list[str], need: int, threshold: float, say) -> tuple[list[str], dict[str, Any]]:
    """Real queries and rewrites, shuffled, with no pair at exact Jaccard >= threshold - CLEAN_MARGIN."""
    per_query = math.ceil(need * 1.5 / len(queries))
    pool, seen = [], set()
    for q, text in enumerate(queries):
        for v in range(per_query + 1):
            row = text if v == 0 else rewrite(text, random.Random(f"{SEED}:{q}:{v}"))
            key = normalize_text(row)
            if key not in seen:
                seen.add(key)
                pool.append(row)
    random.Random(SEED).shuffle(pool)
    say(
        f"    pool: {len(queries):,} real queries + rewrites = {len(pool):,} distinct rows; exact join at "
        f"{threshold - CLEAN_MARGIN:.2f}"
    )
    pairs = exact_pairs([frozenset(shingles(t)) for t in pool], threshold - CLEAN_MARGIN)
    neighbours: dict[int, list[int]] = defaultdict(list)
    for i, j in pairs:
        neighbours[j].append(i)
    kept_flags = [True] * len(pool)
    for j in range(len(pool)):
        if any(kept_flags[i] for i in neighbours[j]):
            kept_flags[j] = False
    kept = [t for t, k in zip(pool, kept_flags) if k]
    if len(kept) < need:
        raise SystemExit(f"only {len(kept)} clean rows, need {need}")
    info = {"pool": len(pool), "close_pairs": len(pairs), "clean": len(kept)}
    say(f"    {len(pairs):,} pool pairs at exact Jaccard >= {threshold - CLEAN_MARGIN:.2f}; {len(kept):,} clean rows")
    return kept, info


@dataclass
class Dataset:
    texts: list[str]
    planted: dict[tuple[int, int], str]  # (i < j) -> edit kind
    planted_jaccard: dict[tuple[int, int], float]


def build(clean: list[str], n: int, threshold: float) -> Dataset:
    """n rows: clean base rows plus PLANTED_FRACTION * n planted copies, at random positions."""
    rng = random.Random(f"{SEED}:plant:{n}")
    n_pairs = round(n * PLANTED_FRACTION)
    base = clean[: n - n_pairs]
    rows = list(base)
    origin: dict[int, tuple[int, str, float]] = {}  # copy's row -> (original's row, kind, exact J)
    for src in rng.sample(range(len(base)), n_pairs):
        a = frozenset(shingles(base[src]))
        for attempt in range(20):
            copy, kind = light_copy(base[src], rng)
            b = frozenset(shingles(copy))
            jac = len(a & b) / len(a | b)
            if jac >= threshold + PLANT_MARGIN and normalize_text(copy) != normalize_text(base[src]):
                break
        else:  # nothing light enough for this short row: case and punctuation only
            copy, kind, jac = base[src].upper().rstrip("?.!") + " ??", "case+punct", 1.0
        origin[len(rows)] = (src, kind, jac)
        rows.append(copy)
    order = list(range(len(rows)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    planted, planted_j = {}, {}
    for copy_row, (src, kind, jac) in origin.items():
        pair = tuple(sorted((position[src], position[copy_row])))
        planted[pair], planted_j[pair] = kind, jac
    return Dataset([rows[old] for old in order], planted, planted_j)


def near_threshold_probe(clean: list[str], skip: int, threshold: float, per_band: int = 300) -> dict[str, Any]:
    """Pairs at exact Jaccard near the threshold, which the main datasets leave out by design:
    each unused clean row gets one copy with one to three small edits, binned by its exact
    Jaccard with the original; the fraction of each bin's pairs that come out as near-duplicates
    (run on all probe rows together)."""
    rng = random.Random(f"{SEED}:probe")
    edges = [round(threshold - 0.1 + 0.05 * k, 2) for k in range(6)]  # e.g. 0.70 ... 0.95
    bins: dict[int, list[tuple[str, str]]] = {k: [] for k in range(len(edges) - 1)}
    ops = [
        lambda t, r: f"{r.choice(START)} {t}",
        lambda t, r: f"{t} {r.choice(END)}",
        op_typo,
        op_mid_filler,
        op_synonym,
        lambda t, r: " ".join([typo(t.split()[0], r), *t.split()[1:]]),
    ]
    for src in clean[skip:]:
        if all(len(b) >= per_band for b in bins.values()):
            break
        copy = src
        for op in rng.sample(ops, rng.choice([1, 2, 3])):
            copy = op(copy, rng) or copy
        a, b = frozenset(shingles(src)), frozenset(shingles(copy))
        jac = len(a & b) / len(a | b)
        for k in bins:
            if edges[k] <= jac < edges[k + 1] and len(bins[k]) < per_band:
                bins[k].append((src, copy))
    texts = [t for k in bins for pair in bins[k] for t in pair]
    reps = near_duplicate_representatives(texts, threshold)
    out, at = {}, 0
    for k, pairs in bins.items():
        found = sum(reps[at + 2 * x] == reps[at + 2 * x + 1] for x in range(len(pairs)))
        out[f"{edges[k]:.2f}-{edges[k + 1]:.2f}"] = {"pairs": len(pairs), "reported": found}
        at += 2 * len(pairs)
    return out


# ---------------------------------------------------------------- measurement


def reported_pairs(reps: list[int]) -> set[tuple[int, int]]:
    clusters: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(reps):
        clusters[r].append(i)
    return {
        (a, b)
        for members in clusters.values()
        if len(members) > 1
        for x, a in enumerate(members)
        for b in members[x + 1 :]
    }


def timed(texts: list[str], threshold: float, repeats: int) -> tuple[list[int], list[float], list[float]]:
    walls, cpus, reps = [], [], None
    for _ in range(repeats):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        got = near_duplicate_representatives(texts, threshold)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if reps is not None and got != reps:
            raise SystemExit("near_duplicate_representatives is not deterministic")
        reps = got
    return reps, walls, cpus


BANDS = [(1.0, 1.01), (0.9, 1.0), (0.85, 0.9), (0.8, 0.85), (0.7, 0.8), (0.6, 0.7), (0.5, 0.6)]


def measure(ds: Dataset, threshold: float, repeats: int, say) -> dict[str, Any]:
    n = len(ds.texts)
    say(f"    exact join at 0.50 over {n:,} rows (ground truth)")
    truth_all = exact_pairs([frozenset(shingles(t)) for t in ds.texts], 0.5)
    positives = {p for p, j in truth_all.items() if j >= threshold}
    say(f"    near_duplicate_representatives x{repeats}")
    reps, walls, cpus = timed(ds.texts, threshold, repeats)
    reported = reported_pairs(reps)
    hits = reported & positives
    by_band = []
    for lo, hi in BANDS:
        in_band = [p for p, j in truth_all.items() if lo <= j < hi]
        by_band.append(
            {
                "jaccard": f"{lo:.2f}-{min(hi, 1.0):.2f}" if hi <= 1.0 else "1.00",
                "pairs": len(in_band),
                "reported": sum(p in reported for p in in_band),
            }
        )
    kinds = defaultdict(lambda: [0, 0])
    for pair, kind in ds.planted.items():
        kinds[kind][0] += 1
        kinds[kind][1] += pair in reported
    negatives_max = max((j for p, j in truth_all.items() if j < threshold), default=0.0)
    best = min(walls)
    return {
        "n": n,
        "planted": len(ds.planted),
        "positives": len(positives),
        "positives_not_planted": len(positives - set(ds.planted)),
        "planted_min_jaccard": min(ds.planted_jaccard.values()),
        "closest_negative_jaccard": negatives_max,
        "reported": len(reported),
        "true_positives": len(hits),
        "precision": len(hits) / len(reported) if reported else 1.0,
        "recall": len(hits) / len(positives) if positives else 1.0,
        "planted_found": sum(p in reported for p in ds.planted) / len(ds.planted),
        "false_positive_below_0.5": len(reported - set(truth_all)),
        "largest_cluster": max(Counter(reps).values()),
        "wall_s": walls,
        "cpu_s": cpus,
        "best_s": best,
        "rows_per_s": n / best,
        "by_band": by_band,
        "by_edit": {k: {"planted": v[0], "found": v[1]} for k, v in sorted(kinds.items())},
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'rows':>8} {'best s':>7} {'runs s':>17} {'cpu s':>6} {'rows/s':>7} {'planted':>7} "
        f"{'positives':>9} {'reported':>8} {'precision':>9} {'recall':>6} {'max clu':>7}"
    ]
    for r in results:
        runs = "/".join(f"{w:.2f}" for w in r["wall_s"])
        lines.append(
            f"{r['n']:>8,} {r['best_s']:>7.2f} {runs:>17} {min(r['cpu_s']):>6.2f} {r['rows_per_s']:>7,.0f} "
            f"{r['planted']:>7,} {r['positives']:>9,} {r['reported']:>8,} {r['precision']:>9.4f} "
            f"{r['recall']:>6.4f} {r['largest_cluster']:>7}"
        )
    return "\n".join(lines)


def band_table(results: list[dict[str, Any]]) -> str:
    head = f"{'exact J':>10}" + "".join(f" {'pairs @' + format(r['n'], ','):>14} {'reported':>8}" for r in results)
    lines = [head]
    for b in range(len(BANDS)):
        row = f"{results[0]['by_band'][b]['jaccard']:>10}"
        for r in results:
            band = r["by_band"][b]
            row += f" {band['pairs']:>14,} {band['reported']:>8,}"
        lines.append(row)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 30k rows, one timing each (a smoke run)")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--data", type=Path, default=DATA, help="folder with banking77 train.csv and test.csv")
    parser.add_argument("--json", type=Path, help="also write the JSON blob here")
    args = parser.parse_args()
    sizes, repeats = ((10_000, 30_000), 1) if args.quick else ((10_000, 100_000), 3)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr
    started = time.perf_counter()

    near_duplicate_representatives(["warm up the imports", "and the band optimiser"], args.threshold)
    queries = load_queries(args.data)
    say(f"[1] building rows from {len(queries):,} distinct banking77 queries")
    largest = max(sizes)
    clean, pool_info = clean_pool(queries, largest - round(largest * PLANTED_FRACTION), args.threshold, say)
    results = []
    for i, n in enumerate(sizes, start=2):
        say(f"[{i}] {n:,} rows")
        results.append(measure(build(clean, n, args.threshold), args.threshold, repeats, say))

    say(f"[{len(sizes) + 2}] near-threshold probe")
    probe = near_threshold_probe(clean, largest - round(largest * PLANTED_FRACTION), args.threshold)

    small, big = results
    ratio = big["best_s"] / small["best_s"]
    size_ratio = big["n"] / small["n"]
    checks = [
        {
            "check": f"time {big['n'] // 1000}k / {small['n'] // 1000}k (size ratio {size_ratio:.0f})",
            "value": ratio,
            "target": f"<= {size_ratio * 1.25:.1f}",
            "pass": ratio <= size_ratio * 1.25,
        },
        {
            "check": f"precision at {args.threshold} ({big['n'] // 1000}k)",
            "value": big["precision"],
            "target": ">= 0.95",
            "pass": big["precision"] >= 0.95,
        },
        {
            "check": f"recall at {args.threshold} ({big['n'] // 1000}k)",
            "value": big["recall"],
            "target": ">= 0.90",
            "pass": big["recall"] >= 0.90,
        },
    ]
    if big["n"] == 100_000:
        checks.append(
            {"check": "100k rows time (s)", "value": big["best_s"], "target": "<= 60", "pass": big["best_s"] <= 60}
        )

    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "datasketch": version("datasketch"),
            "numpy": version("numpy"),
        },
        "threshold": args.threshold,
        "pool": pool_info,
        "seconds": round(time.perf_counter() - started, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "results": results,
        "near_threshold_probe": probe,
        "checks": checks,
    }
    print(table(results))
    print()
    print(band_table(results))
    print()
    for r in results:
        edits = ", ".join(f"{k} {v['found']}/{v['planted']}" for k, v in r["by_edit"].items())
        print(f"{r['n']:,} rows: planted found by edit: {edits}")
        print(
            f"{r['n']:,} rows: positives not planted {r['positives_not_planted']}, min planted J "
            f"{r['planted_min_jaccard']:.3f}, closest negative J {r['closest_negative_jaccard']:.3f}, "
            f"reported pairs below J 0.5: {r['false_positive_below_0.5']}"
        )
    print(
        "near-threshold probe (not in precision/recall): reported / pairs by exact J: "
        + ", ".join(
            f"{band} {v['reported']}/{v['pairs']} ({v['reported'] / max(v['pairs'], 1):.0%})"
            for band, v in probe.items()
        )
    )
    print()
    for c in checks:
        print(f"{c['check']:<40} {c['value']:>8.3f}  (target {c['target']}: {'PASS' if c['pass'] else 'FAIL'})")
    print(f"\n{result['seconds']:.0f} s in all, peak RSS {result['max_rss_mb']:,} MB (the whole bench)")
    blob = json.dumps(result, default=str)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    print()
    print(blob)
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
