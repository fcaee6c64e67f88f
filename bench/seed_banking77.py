"""Human rows, seed-generated rows, or both: which student is best? (BANKING77, 77 intents)

A real project in a temporary git repository runs the real stages (`distill stage NAME`, in
process): `seed` writes new customer queries per intent, the teacher labels them, the filter
keeps what the teacher files under the intent it was written for, and the dataset stage trains
the packaged MiniLM student on one source or both (`data.train_on`), all evaluated on the same
held-out rows (the test split, or a seeded sample of it) with 95% intervals and paired
McNemar tests between the variants.

- human: `--human` (100) queries sampled from the train split with their gold labels
  (`data.human`); their texts are also `data.inputs`, so the seed stage shows them as examples
  and the teacher's answers to them lose to the people's labels in dedup.
- teacher (seed only): `--per-label` new queries per intent, written by the stand-in generator,
  labelled by the stand-in teacher (right 94% of the time, wrong in plausible ways: the two
  intents whose names MiniLM embeds closest).
- both: the two mixed; both@0.3: mixed with the human rows oversampled to 30% of training.

The stand-in generator draws its queries from its pool, the teacher's answer key: the whole train
split and, deliberately, the test split too, so decontamination has leaks to catch (a real
generator repeats public data it was trained on). It writes nothing new; what this measures is
the pipeline's plumbing and the value of more teacher-labelled rows, not a generator's prose.
BANKING77 is read from ../shared/datasets/banking77, never copied.

    .venv/bin/python bench/seed_banking77.py                  # ~15 min on 2 cores
    .venv/bin/python bench/seed_banking77.py --quick          # ~4 min: 3 a label, 500 held-out rows

Progress to stderr; the table to stdout (and --out JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml  # noqa: E402
from curation_banking77 import confusable  # noqa: E402

from distillbuild.measurements import read_report  # noqa: E402
from distillbuild.stats import mcnemar_p  # noqa: E402

DATA = ROOT.parent / "shared/datasets/banking77"
VARIANTS = (
    ("human", {"train_on": "human"}),
    ("teacher (seed)", {"train_on": "teacher"}),
    ("both", {"train_on": "both"}),
    ("both, human 30%", {"train_on": "both", "human_share": 0.3}),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return [{"text": r["text"], "label": r["category"]} for r in csv.DictReader(fh)]


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def project(root: Path, args) -> dict:
    """The data files and the spec: 100 human rows, the held-out rows, the stand-in's key."""
    labels = json.loads((DATA / "categories.json").read_text())
    train, test = read("train.csv"), read("test.csv")
    rng = random.Random(args.seed)
    human = rng.sample(train, args.human)
    heldout = test if args.heldout is None else random.Random(args.seed + 1).sample(test, args.heldout)
    near = confusable(labels)
    write_rows(root / "data/human.jsonl", [{"id": f"p{i}", **r} for i, r in enumerate(human)])
    write_rows(root / "data/inputs.jsonl", [{"id": f"p{i}", "text": r["text"]} for i, r in enumerate(human)])
    write_rows(root / "data/heldout.jsonl", [{"id": f"t{i}", **r} for i, r in enumerate(heldout)])
    write_rows(
        root / "data/key.jsonl",
        [{"text": r["text"], "label": r["label"], "alternatives": near[r["label"]]} for r in train + test],
    )
    return {
        "version": 1,
        "name": "banking77-seed",
        "task": {
            "type": "classification",
            "labels": labels,
            "instruction": "Classify the banking customer's message into one intent: the intent name only.",
        },
        "data": {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl", "human": "data/human.jsonl"},
        "seed": {
            "per_label": args.per_label,
            "per_request": 5,
            "examples": 3,
            "seed": args.seed,
            "instruction": "Write as a customer of a mobile-first bank, in one or two sentences.",
        },
        "teacher": {
            "provider": "simulated",
            "model": "gpt-4o-sim",
            "max_tokens": 16,
            "top_logprobs": 5,
            "concurrency": 32,
            "price": {"input_per_mtok": 2.5, "output_per_mtok": 10},
            "simulated": {"answers": "data/key.jsonl", "accuracy": 0.94, "latency_ms": 0, "seed": 77},
        },
        "filters": {"min_confidence": 0.5, "dedup": {"exact": True, "near_threshold": 0.9}, "decontaminate": True},
        "split": {"val_fraction": 0.1, "seed": 13},
        "student": {
            "kind": "encoder-classifier",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "trainer": "local",
            "max_length": 64,
            "epochs": args.epochs,
            "batch_size": 16,
            "learning_rate": 5.0e-5,
            "head_learning_rate": 2.0e-3,
            "seed": 13,
            "threads": 2,
            "kd": {"alpha": 0.5, "temperature": 2.0},
        },
        "evaluation": {"latency_samples": 20, "threads": 2},
        "gates": {"accuracy": {"min": 0.0}},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--human", type=int, default=100)
    ap.add_argument("--per-label", type=int, default=10)
    ap.add_argument("--heldout", type=int, default=None, help="a sample of the test split (default: all of it)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.per_label, args.heldout, args.epochs = 3, 500, 4
    if not (DATA / "train.csv").is_file():
        log(f"needs {DATA}")
        return 2

    from distillbuild.pipeline.runner import run_stage
    from distillbuild.spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = project(root, args)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        os.environ["DISTILL_CACHE_DIR"] = str(root / ".cache")
        os.chdir(root)
        path = root / "distill.yaml"

        def stages(names, data_extra=None):
            body = json.loads(json.dumps(spec))
            body["data"].update(data_extra or {})
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            loaded = load_spec(path)
            for name in names:
                t0 = time.monotonic()
                if run_stage(name, loaded) not in (0, None):
                    raise SystemExit(f"stage {name} failed")
                log(f"[{name}] {time.monotonic() - t0:.1f} s")

        stages(["seed", "teacher", "filter"])
        seed_report = read_report(root / "build/seed/report.json")
        filter_report = read_report(root / "build/filter/report.json")
        results, predictions = [], {}
        for name, extra in VARIANTS:
            stages(["dataset", "configure", "train", "evaluate"], extra)
            metrics = read_report(root / "build/evaluate/metrics.json")
            dataset = read_report(root / "build/dataset/report.json")
            preds = json.loads((root / "build/evaluate/predictions.json").read_text())
            predictions[name] = preds
            results.append(
                {
                    "variant": name,
                    "train_rows": dataset["train"],
                    "accuracy": metrics["accuracy"],
                    "ci": [metrics["accuracy_ci_low"], metrics["accuracy_ci_high"]],
                    "macro_f1": metrics["macro_f1"],
                    "teacher_accuracy": metrics["teacher_accuracy"],
                }
            )
    paired = pairwise(predictions)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "args": vars(args) | {"out": None},
        "seed": {
            k: seed_report[k]
            for k in ("quota", "rounds", "requests", "written", "usable", "kept", "by_reason", "diversity", "calls")
        },
        "filter_seed": filter_report.get("seed"),
        "human_filter": filter_report.get("human"),
        "variants": results,
        "paired": paired,
    }
    print_table(out)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


def pairwise(predictions: dict[str, list]) -> list[dict]:
    """McNemar on the same held-out rows, each pair of variants."""

    def right(rows):
        return [r.get("predicted") == r.get("actual") for r in rows]

    names, out = list(predictions), []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = right(predictions[a]), right(predictions[b])
            only_a = sum(x and not y for x, y in zip(ra, rb))
            only_b = sum(y and not x for x, y in zip(ra, rb))
            out.append(
                {
                    "a": a,
                    "b": b,
                    "only_a_right": only_a,
                    "only_b_right": only_b,
                    "p": round(mcnemar_p(only_a, only_b), 6),
                }
            )
    return out


def print_table(out: dict) -> None:
    s = out["seed"]
    print(f"BANKING77 seed comparison on {out['machine']} (stand-in generator and teacher)")
    print(
        f"seed: quota {s['quota']}, {s['requests']} requests in {s['rounds']} rounds; {s['written']} written, "
        f"{s['usable']} usable, {s['kept']} kept"
    )
    print("  dropped: " + ", ".join(f"{k} {v}" for k, v in s["by_reason"].items() if v))
    d = s["diversity"]
    print(
        f"  diversity (generated vs existing, {d['sample_rows']}): distinct-1 {d['distinct_1']}, distinct-2 "
        f"{d['distinct_2']}, "
        f"embedding spread {d.get('embedding_spread')}, novelty {d.get('novelty_nearest_similarity_median')}"
    )
    f = out["filter_seed"] or {}
    print(
        f"filter: {f.get('kept')} of {f.get('rows')} generated kept; teacher agreed with the asked intent on "
        f"{f.get('teacher_agrees_with_asked')} ({f.get('teacher_agreement_rate')})"
    )
    print(f"{'variant':<18} {'train rows':>10} {'accuracy':>9} {'95% interval':>16} {'macro-F1':>9}")
    for r in out["variants"]:
        print(
            f"{r['variant']:<18} {str(r['train_rows']):>10} {r['accuracy']:>9.4f} "
            f"{'[%.4f, %.4f]' % tuple(r['ci']):>16} {r['macro_f1']:>9.4f}"
        )
    print(f"teacher on the same rows: {out['variants'][0]['teacher_accuracy']:.4f}")
    for p in out["paired"]:
        print(
            f"  {p['a']} vs {p['b']}: {p['only_a_right']} vs {p['only_b_right']} rows right for one only, "
            f"McNemar p={p['p']}"
        )


if __name__ == "__main__":
    sys.exit(main())
