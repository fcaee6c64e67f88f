"""How much cleaner does the filter make a teacher's labels, and what does it cost in rows?

Real customer queries (BANKING77, read from ../shared/datasets/banking77) labelled by the
simulated teacher at 90% accuracy through the real SDK over HTTP. Its mistakes are plausible
confusions: for each intent, the two intents whose names the packaged MiniLM embeds closest
(card_arrival <-> card_delivery_estimate, ...). Then the filter stage's engine at several
confidence thresholds, with exact and near dedup and decontamination against the test split.
Prints, side by side: label accuracy of all teacher rows versus the kept rows, and rows kept.

    .venv/bin/python bench/curation_banking77.py [--accuracy 0.9] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distillbuild.curate.filters import FilterConfig, curate  # noqa: E402
from distillbuild.endpoints.standin.server import SimulatedTeacherServer  # noqa: E402
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher  # noqa: E402
from distillbuild.llm.cache import TeacherCache  # noqa: E402
from distillbuild.llm.engine import answer_all  # noqa: E402
from distillbuild.llm.settings import TeacherSettings  # noqa: E402
from distillbuild.protocol.answers import answer_row  # noqa: E402
from distillbuild.protocol.normalize import normalize_label  # noqa: E402
from distillbuild.protocol.prompts import messages_for  # noqa: E402
from distillbuild.spec.model import Task, build  # noqa: E402

DATA = ROOT.parent / "shared/datasets/banking77"


def read(name: str, limit: int | None = None) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows[:limit] if limit else rows


def confusable(labels: list[str], k: int = 2) -> dict[str, list[str]]:
    """For each intent, the k intents whose names MiniLM embeds closest: plausible confusions."""
    from sentence_transformers import SentenceTransformer

    from distillbuild.train.encoder import resolve_base_model

    model = SentenceTransformer(str(resolve_base_model("sentence-transformers/all-MiniLM-L6-v2")), device="cpu")
    vectors = model.encode([l.replace("_", " ") for l in labels], normalize_embeddings=True)
    sims = vectors @ vectors.T
    return {l: [labels[j] for j in (-sims[i]).argsort() if j != i][:k] for i, l in enumerate(labels)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accuracy", type=float, default=0.90)
    ap.add_argument("--limit", type=int, default=None, help="use the first N training queries")
    args = ap.parse_args()
    labels = json.loads((DATA / "categories.json").read_text())
    train, test = read("train.csv", args.limit), read("test.csv")
    near = confusable(labels)
    key = {r["text"]: KeyEntry(r["category"], tuple(near[r["category"]])) for r in train}
    typed_task = build(
        Task,
        {
            "type": "classification",
            "labels": labels,
            "instruction": "Classify the banking customer query into one intent.",
        },
    )
    teacher = SimulatedTeacher(key, labels, args.accuracy, seed=77)
    rows_in = [{"id": f"b{i}", "text": r["text"]} for i, r in enumerate(train)]
    t0 = time.monotonic()
    with SimulatedTeacherServer(teacher) as server, tempfile.TemporaryDirectory() as tmp:
        settings = TeacherSettings(
            endpoint_id="bench",
            base_url=server.base_url,
            model="sim",
            temperature=0,
            max_tokens=16,
            top_logprobs=5,
            seed=None,
            concurrency=64,
            timeout_s=30,
            max_retries=3,
            api_key="x",
        )
        cache = TeacherCache(Path(tmp) / "c.sqlite")
        results, _ = answer_all(
            [messages_for(typed_task, r["text"]) for r in rows_in], settings, cache, log=lambda m: None
        )
        cache.close()
    teacher_s = time.monotonic() - t0
    answers = [answer_row(r, res, typed_task) for r, res in zip(rows_in, results)]
    gold = {r["id"]: t["category"] for r, t in zip(rows_in, train)}
    base_acc = sum(normalize_label(a["answer"], labels) == gold[a["id"]] for a in answers) / len(answers)

    print(
        f"BANKING77: {len(answers):,} training queries, 77 intents; simulated teacher at {args.accuracy:.0%} "
        f"(confusions: the 2 nearest intents by MiniLM), answered in {teacher_s:.1f} s over HTTP"
    )
    print(
        f"{'filter (confidence measure >= threshold)':44} {'kept':>7} {'kept %':>7} {'label acc':>9} "
        f"{'errors':>7} {'errors removed':>15} {'seconds':>8}"
    )
    errors_all = sum(normalize_label(a["answer"], labels) != gold[a["id"]] for a in answers)
    print(
        f"{'none (all teacher rows)':44} {len(answers):7,} {100.0:6.1f}% {base_acc:9.3f} {errors_all:7,} "
        f"{'-':>15} {'-':>8}"
    )
    heldout = [r["text"] for r in test]
    for measure, min_conf in [("raw", 0.0)] + [(m, c) for m in ("raw", "renormalised") for c in (0.5, 0.6, 0.7, 0.8)]:
        # filters.confidence: raw (the label's probability) and renormalised (its share of the labels' mass,
        # floored by a label mass of 0.1), the default since real teachers spread mass over other words.
        cfg = FilterConfig(
            labels=tuple(labels),
            min_confidence=min_conf,
            near_threshold=0.9,
            decontaminate=True,
            confidence=measure,
            min_label_mass=0.1 if measure == "renormalised" else 0.0,
        )
        t1 = time.monotonic()
        kept, rejected, report = curate(answers, cfg, heldout)
        secs = time.monotonic() - t1
        acc = sum(k["label"] == gold[k["id"]] for k in kept) / len(kept)
        errors = sum(k["label"] != gold[k["id"]] for k in kept)
        removed = 1 - errors / errors_all if errors_all else 0.0
        name = f"{measure} >= {min_conf} + dedup + decontaminate" if min_conf else "dedup + decontaminate only"
        print(
            f"{name:44} {len(kept):7,} {100 * len(kept) / len(answers):6.1f}% {acc:9.3f} {errors:7,} "
            f"{removed:14.1%} {secs:8.1f}"
        )
        if min_conf == 0.6:
            print(f"    rejections ({measure} >= 0.6): { ({k: v for k, v in report['by_reason'].items() if v}) }")


if __name__ == "__main__":
    main()
