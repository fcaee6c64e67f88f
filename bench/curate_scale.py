"""The input checks at scale: the local engine against Ray, side by side in one run.

Synthetic inputs derived from BANKING77's training queries (each query, twelve words drawn from
a 2,000-word vocabulary and a serial number, so rows are distinct and no two are near each other
by chance; queries that near-copy a test query, and queries over 30 words, left out), with planted duplicates: 1% exact
copies (case and spacing changed), 1% near copies (one word appended: word 3-gram Jaccard about
0.95, which MinHash's estimate, a random variable, now and then puts under 0.9) and 0.5% copies
of BANKING77 test queries (the held-out set). Each size runs the exact, near-duplicate
(threshold 0.9) and contamination checks of curate/input_checks.py in a fresh process per
engine, and prints rows/s, peak memory per process (the driver's and, on Ray, the largest
worker's), the planted rows found (recall) and the rows dropped that were not planted (must be
0), and each engine's time growth for 10x rows.

    .venv/bin/python bench/curate_scale.py                        # 100k, 1M (both), 3M (Ray): ~20 minutes here
    .venv/bin/python bench/curate_scale.py --sizes 20000,100000   # a smoke run

Ray runs as a local cluster of `--workers` CPUs started by the run (this machine has 2 cores: the
Ray rows measure its overhead and its memory spread, not the speed of more machines).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANKING = ROOT.parent / "shared/datasets/banking77"
MAX_BASE_WORDS = 30  # longer BANKING77 queries are left out of the base rows (see synthetic)

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from distillbuild.curate.input_checks import InputChecks, OnRay, check_inputs

engine, workers, path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = json.load(open(path))
rows = [{"id": str(i), "text": t} for i, t in enumerate(data["texts"])]
checks = InputChecks(near_threshold=0.9, decontaminate_threshold=0.8)
worker_peak = 0
if engine == "ray":
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    checks = InputChecks(near_threshold=0.9, decontaminate_threshold=0.8, on_ray=OnRay(workers=workers))
started = time.perf_counter()
verdicts = check_inputs(rows, data["heldout"], checks)
seconds = time.perf_counter() - started
if engine == "ray":
    @ray.remote(num_cpus=1)
    def peak():
        import os, resource
        return os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peaks = dict(ray.get([peak.remote() for _ in range(8 * workers)]))
    worker_peak = max(peaks.values()) / 1024
    ray.shutdown()
dropped = {i for i, v in enumerate(verdicts) if v is not None}
print(json.dumps({"seconds": seconds, "dropped": sorted(dropped),
                  "driver_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worker_mib": worker_peak}))
"""


def queries(name: str) -> list[str]:
    with (BANKING / name).open(newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


def synthetic(n: int, seed: int = 0) -> tuple[list[str], list[str], set[int]]:
    """(texts, held-out texts, the indices of planted copies)."""
    from distillbuild.curate.neardup import contaminated_by

    rng = random.Random(seed)
    train, test = queries("train.csv"), queries("test.csv")
    # BANKING77's own splits share some queries almost word for word: leave those out of the base rows,
    # so every row the checks drop is one planted here.
    train = [q for q, hit in zip(train, contaminated_by(train, test, 0.5)) if hit is None]
    # Two rows built on one very long query (50 words and more) share so much that twelve random words
    # do not keep them apart: at 3M rows such pairs are near-duplicates by the check's own measure.
    train = [q for q in train if len(q.split()) <= MAX_BASE_WORDS]
    vocab = [f"w{rng.randrange(10**6):06d}" for _ in range(2000)]
    texts: list[str] = []
    planted: set[int] = set()
    for i in range(n):
        r = rng.random()
        if texts and r < 0.01:  # an exact copy, case and spacing changed
            texts.append("  " + rng.choice(texts[-1000:]).upper() + " ")
            planted.add(i)
        elif texts and r < 0.02:  # a near copy: one word more
            texts.append(rng.choice(texts[-1000:]) + " " + rng.choice(vocab))
            planted.add(i)
        elif r < 0.025:  # a held-out query, word for word
            texts.append(rng.choice(test))
            planted.add(i)
        else:
            words = " ".join(rng.choice(vocab) for _ in range(12))
            texts.append(f"{rng.choice(train)} {words} n{i}")
    return texts, test, planted


def run(engine: str, workers: int, data_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), engine, str(workers), str(data_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--engines", default="local,ray", help="local,ray (ray alone where the local index does not fit in memory)"
    )
    parser.add_argument(
        "--local-max-rows", type=int, default=1_000_000,
        help="the local engine runs up to this size: its LSH index takes about 7.4 KiB a row (22 GiB at 3M)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not BANKING.is_dir():
        raise SystemExit(f"needs {BANKING}")
    results = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"curate-scale-{os.getpid()}.json"
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            texts, heldout, planted = synthetic(n)
            tmp.write_text(json.dumps({"texts": texts, "heldout": heldout}))
            for engine in args.engines.split(","):
                if engine == "local" and n > args.local_max_rows:
                    need = n * 7.4 / 2**20
                    print(f"{n:>9,} rows  local            skipped: its in-memory index needs about {need:.0f} GiB "
                          f"(--local-max-rows {args.local_max_rows:,})", flush=True)  # fmt: skip
                    continue
                r = run(engine, args.workers, tmp)
                dropped = set(r["dropped"])
                row = {
                    "rows": n,
                    "engine": engine if engine == "local" else f"ray ({args.workers} workers)",
                    "seconds": r["seconds"],
                    "rows_per_s": n / r["seconds"],
                    "driver_mib": r["driver_mib"],
                    "worker_mib": r["worker_mib"],
                    "recall": len(dropped & planted) / len(planted),
                    "wrongly_dropped": len(dropped - planted),
                    "same_as_local": (
                        dropped == set(results[-1]["dropped_ids"])
                        if engine == "ray" and results and results[-1]["rows"] == n
                        else None
                    ),
                    "dropped_ids": sorted(dropped),
                }
                results.append(row)
                print(
                    f"{n:>9,} rows  {row['engine']:<16} {row['seconds']:8.1f} s  {row['rows_per_s']:9,.0f} rows/s  "
                    f"driver {row['driver_mib']:7,.0f} MiB  worker {row['worker_mib']:6,.0f} MiB  "
                    f"recall {row['recall']:.4f}  wrongly dropped {row['wrongly_dropped']}"
                    + ("" if row["same_as_local"] is None else f"  same as local: {row['same_as_local']}"),
                    flush=True,
                )
    finally:
        tmp.unlink(missing_ok=True)
    print()
    print(
        "| rows | engine | seconds | rows/s | peak MiB (driver / worker) | recall | wrongly dropped "
        "| x time for 10x rows |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        smaller = [r for r in results if r["engine"] == row["engine"] and r["rows"] * 10 == row["rows"]]
        growth = f"{row['seconds'] / smaller[0]['seconds']:.1f}" if smaller else "-"
        print(
            f"| {row['rows']:,} | {row['engine']} | {row['seconds']:.1f} | {row['rows_per_s']:,.0f} | "
            f"{row['driver_mib']:,.0f} / {row['worker_mib']:,.0f} | {row['recall']:.4f} | {row['wrongly_dropped']} "
            f"| {growth} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps([{k: v for k, v in r.items() if k != "dropped_ids"} for r in results], indent=2)
        )


if __name__ == "__main__":
    main()
