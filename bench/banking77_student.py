"""Student figures on BANKING77 (77 intents): a teacher's labels in, a MiniLM student out.

Real customer queries (BANKING77, read from ../shared/datasets/banking77, never copied) are
labelled by the project's simulated teacher through the real SDK over HTTP (`answer_all` against
`SimulatedTeacherServer`, rows built by the teacher stage's `answer_row`). The stand-in is right
94% of the time; its mistakes are plausible confusions, as in bench/curation_banking77.py: for each
intent, the two intents whose names the packaged MiniLM embeds closest. The training pool is a
seeded sample of the train split; the held-out set is (a seeded sample of) the test split with its
gold labels. The teacher answers the held-out queries too, so teacher and student are scored on
the same rows.

Training data comes out of the project's filter engine (`curate`) in two ways:
  all       only the row checks (teacher errors, invalid labels); nothing else removed
  filtered  the quickstart's filters: min_confidence 0.6, exact + near (0.9) dedup, and
            decontamination against the held-out queries

Each dataset trains the packaged MiniLM student with the project's local trainer
(`fit_encoder_classifier`, full fine-tuning: encoder lr 5e-5, head lr 2e-3, batch 32, max_length 64,
seed 13) twice, side by side: hard labels (kd alpha 0) and knowledge distillation (alpha 0.5, T 2,
soft labels from the teacher's top-5 logprobs). Same seed, same rows, same order; only the loss
differs. An extra row trains the head alone on frozen embeddings (`finetune: head`).

The stand-in's probabilities are synthetic (by construction its runner-up labels are the gold label
and the plausible confusions), so the KD rows test the plumbing, not the science of distillation.

    .venv/bin/python bench/banking77_student.py --out /tmp/b77.json        # ~27 min on 2 quiet cores
    .venv/bin/python bench/banking77_student.py --quick                    # ~2 min smoke run
    .venv/bin/python bench/banking77_student.py --train-rows 10003 --heldout-rows 1000 --epochs 1

Progress goes to stderr; the table, the ratios and the checks to stdout. Exit 1 when a fully
fine-tuned student misses retention 0.95 (the head-only row is shown, never checked; a --quick run,
too small to reach it, is never checked).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from curation_banking77 import confusable  # noqa: E402  (the MiniLM-nearest intents)

from distillbuild.curate.filters import FilterConfig, curate  # noqa: E402
from distillbuild.endpoints.standin.server import SimulatedTeacherServer  # noqa: E402
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher  # noqa: E402
from distillbuild.evaluate.classification import accuracy, bootstrap_intervals, macro_f1  # noqa: E402
from distillbuild.llm.cache import TeacherCache  # noqa: E402
from distillbuild.llm.engine import answer_all  # noqa: E402
from distillbuild.llm.settings import TeacherSettings  # noqa: E402
from distillbuild.protocol.answers import answer_row  # noqa: E402
from distillbuild.protocol.normalize import normalize_label  # noqa: E402
from distillbuild.protocol.prompts import messages_for  # noqa: E402
from distillbuild.spec.model import Task, build  # noqa: E402

DATA = ROOT.parent / "shared/datasets/banking77"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TARGET_RETENTION = 0.95
VARIANTS = ("all-hard", "all-kd", "filtered-hard", "filtered-kd")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if not n or n >= len(rows):
        return list(rows)
    idx = sorted(random.Random(seed).sample(range(len(rows)), n))  # keep the file's order
    return [rows[i] for i in idx]


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar test on the discordant pairs (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def soft_label_facts(answers: list[dict], gold: dict[str, str], labels: list[str]) -> dict:
    """What the teacher's soft labels say about the gold label: synthetic by construction."""
    right = [a for a in answers if normalize_label(a["answer"], labels) == gold[a["id"]]]
    wrong = [a for a in answers if normalize_label(a["answer"], labels) not in (None, gold[a["id"]])]

    def mean(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 4) if xs else None

    probs = lambda a: a.get("label_probs") or {}  # noqa: E731
    return {
        "rows_with_soft_labels": sum(bool(a.get("label_probs")) for a in answers),
        "right_rows": len(right),
        "wrong_rows": len(wrong),
        "right_mean_prob_on_answer": mean([probs(a).get(gold[a["id"]], 0.0) for a in right]),
        "wrong_mean_prob_on_answer": mean([max(probs(a).values(), default=0.0) for a in wrong]),
        "wrong_gold_in_soft_labels": round(sum(gold[a["id"]] in probs(a) for a in wrong) / len(wrong), 4)
        if wrong
        else None,
        "wrong_gold_is_runner_up": round(sum(list(probs(a))[1:2] == [gold[a["id"]]] for a in wrong) / len(wrong), 4)
        if wrong
        else None,
        "wrong_mean_prob_on_gold": mean([probs(a).get(gold[a["id"]], 0.0) for a in wrong]),
        "soft_argmax_accuracy": round(
            sum(max(probs(a), key=probs(a).get, default=None) == gold[a["id"]] for a in answers) / len(answers), 4
        ),
    }


def train_and_score(
    name: str,
    cfg,
    train_rows: list[dict],
    heldout: list[dict],
    teacher_pred: list[str | None],
    labels: list[str],
    resamples: int,
) -> tuple[dict, list[str]]:
    from distillbuild.train.encoder import fit_encoder_classifier

    log(f"{name}: training on {len(train_rows):,} rows ({cfg.finetune}, alpha {cfg.kd_alpha}, {cfg.epochs} epoch(s))")
    val_rows = [{"text": r["text"], "label": r["category"]} for r in heldout]
    w0, c0 = time.perf_counter(), time.process_time()
    clf, history = fit_encoder_classifier(cfg, train_rows, val_rows, log=lambda m: log(f"{name}: {m.strip()}"))
    train_s, train_cpu = time.perf_counter() - w0, time.process_time() - c0
    texts, gold = [r["text"] for r in heldout], [r["category"] for r in heldout]
    w1 = time.perf_counter()
    pred = clf.predict(texts)
    predict_s = time.perf_counter() - w1
    acc, t_acc = accuracy(gold, pred), accuracy(gold, teacher_pred)
    ci = bootstrap_intervals(
        [g == p for g, p in zip(gold, pred)], [g == t for g, t in zip(gold, teacher_pred)], resamples
    )
    # The per-epoch held-out evaluations happen inside the timed fit: estimate their share from predict_s
    # (head-only evaluates the head on cached embeddings, which takes well under a second).
    n_evals = sum(1 for e in history["epochs"] if e["val_accuracy"] is not None)
    val_time = predict_s * n_evals if cfg.finetune == "full" else 0.0
    result = {
        "name": name,
        "finetune": cfg.finetune,
        "kd_alpha": cfg.kd_alpha,
        "kd_temperature": cfg.kd_temperature,
        "epochs": cfg.epochs,
        "train_rows": history["train_rows"],
        "soft_label_rows": history["soft_label_rows"],
        "heldout_accuracy": round(acc, 4),
        "heldout_accuracy_by_epoch": [e["val_accuracy"] and round(e["val_accuracy"], 4) for e in history["epochs"]],
        "accuracy_ci": [ci.get("accuracy_ci_low"), ci.get("accuracy_ci_high")],
        "macro_f1": round(macro_f1(gold, pred, labels), 4),
        "agreement_with_teacher": round(accuracy(teacher_pred, pred), 4),
        "retention": round(acc / t_acc, 4),
        "retention_ci": [ci.get("retention_ci_low"), ci.get("retention_ci_high")],
        "train_wall_s": round(train_s, 1),
        "train_wall_s_less_evals": round(train_s - val_time, 1),
        "train_cpu_cores": round(train_cpu / train_s, 2) if train_s > 0 else None,
        "predict_heldout_s": round(predict_s, 1),
        "final_train_loss_mean_last_10": round(
            sum(s["loss"] for s in history["steps"][-10:]) / min(10, len(history["steps"])), 4
        ),
    }
    last = history["epochs"][-1]["val_accuracy"]
    if last is not None and abs(last - acc) > 1e-9:  # the trainer's last-epoch evaluation must match ours
        result["note"] = f"trainer's last-epoch val_accuracy {last:.4f} != predict() accuracy {acc:.4f}"
    log(f"{name}: held-out accuracy {acc:.4f} (retention {acc / t_acc:.4f}), train {train_s:.0f} s")
    return result, pred


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="BANKING77 folder (train.csv, test.csv, categories.json)")
    ap.add_argument(
        "--train-rows", type=int, default=8000, help="training pool drawn from the train split (0: all 10,003)"
    )
    ap.add_argument(
        "--heldout-rows", type=int, default=0, help="held-out rows drawn from the test split (0: all 3,080)"
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--accuracy", type=float, default=0.94, help="the simulated teacher's accuracy")
    ap.add_argument("--min-confidence", type=float, default=0.6, help="the filtered datasets' min_confidence")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    ap.add_argument("--kd-alpha", type=float, default=0.5)
    ap.add_argument("--kd-temperature", type=float, default=2.0)
    ap.add_argument(
        "--head-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a head-only row (frozen encoder, cached embeddings, hard labels, all rows)",
    )
    ap.add_argument("--head-epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=13, help="sampling and training seed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 train rows, 500 held-out, 1 epoch, all-hard + all-kd"
    )
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.train_rows, args.heldout_rows, args.epochs, args.head_epochs = 2000, 500, 1, 10
        if args.variants == ",".join(VARIANTS):
            args.variants = "all-hard,all-kd"
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; known: {list(VARIANTS)}")

    import torch

    from distillbuild.train.encoder import EncoderTrainConfig

    t_start = time.perf_counter()
    labels = json.loads((args.data / "categories.json").read_text())
    train_all, test_all = read(args.data / "train.csv"), read(args.data / "test.csv")
    pool = sample(train_all, args.train_rows, args.seed)
    heldout = sample(test_all, args.heldout_rows, args.seed)
    log(
        f"BANKING77: pool {len(pool):,} of {len(train_all):,} train rows, held-out {len(heldout):,} of "
        f"{len(test_all):,} test rows"
    )

    # --- the teacher: the simulated stand-in over HTTP, through the project's client -----------
    t0 = time.perf_counter()
    near = confusable(labels)
    confusion_s = time.perf_counter() - t0
    key: dict[str, KeyEntry] = {}
    conflicts = 0
    for r in pool + heldout:  # held-out last: its gold label wins if a text appears in both splits
        entry = KeyEntry(r["category"], tuple(near[r["category"]]))
        conflicts += r["text"] in key and key[r["text"]].label != entry.label
        key[r["text"]] = entry
    typed_task = build(
        Task,
        {
            "type": "classification",
            "labels": labels,
            "instruction": "Classify the banking customer query into one intent.",
        },
    )
    teacher = SimulatedTeacher(key, labels, args.accuracy, seed=77)
    rows_in = [{"id": f"p{i}", "text": r["text"]} for i, r in enumerate(pool)]
    rows_h = [{"id": f"h{i}", "text": r["text"]} for i, r in enumerate(heldout)]
    t0 = time.perf_counter()
    with SimulatedTeacherServer(teacher) as server, tempfile.TemporaryDirectory() as tmp:
        settings = TeacherSettings(
            endpoint_id="bench-b77",
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
        results, stats = answer_all(
            [messages_for(typed_task, r["text"]) for r in rows_in + rows_h], settings, cache, log=lambda m: None
        )
        cache.close()
    teacher_s = time.perf_counter() - t0
    answers = [answer_row(r, res, typed_task) for r, res in zip(rows_in + rows_h, results)]
    pool_answers, heldout_answers = answers[: len(rows_in)], answers[len(rows_in) :]
    gold = {r["id"]: p["category"] for r, p in zip(rows_in, pool)}
    heldout_gold = [r["category"] for r in heldout]
    teacher_pred = [normalize_label(a.get("answer"), labels) for a in heldout_answers]
    teacher_acc = accuracy(heldout_gold, teacher_pred)
    pool_label_acc = sum(normalize_label(a.get("answer"), labels) == gold[a["id"]] for a in pool_answers) / len(
        pool_answers
    )
    facts = soft_label_facts(pool_answers, gold, labels)
    log(
        f"teacher: {len(answers):,} answers in {teacher_s:.1f} s; pool label accuracy {pool_label_acc:.4f}, "
        f"held-out accuracy {teacher_acc:.4f}"
    )

    # --- the datasets, out of the project's filter engine ----------------------------------------
    heldout_texts = [r["text"] for r in heldout]
    datasets: dict[str, dict] = {}
    configs = {
        "all": FilterConfig(
            labels=tuple(labels), min_confidence=0.0, exact_dedup=False, near_threshold=None, decontaminate=False
        ),
        "filtered": FilterConfig(
            labels=tuple(labels),
            min_confidence=args.min_confidence,
            exact_dedup=True,
            near_threshold=0.9,
            decontaminate=True,
        ),
    }
    for name, fcfg in configs.items():
        kept, _rejected, report = curate(pool_answers, fcfg, heldout_texts)
        rows = [{"text": k["text"], "label": k["label"], "label_probs": k.get("label_probs")} for k in kept]
        datasets[name] = {
            "rows": rows,
            "kept": len(kept),
            "label_accuracy": round(sum(k["label"] == gold[k["id"]] for k in kept) / len(kept), 4),
            "rejected_by_reason": {k: v for k, v in report["by_reason"].items() if v},
        }
        log(
            f"dataset {name}: {len(kept):,} rows, label accuracy {datasets[name]['label_accuracy']:.4f}, "
            f"rejected {datasets[name]['rejected_by_reason']}"
        )

    # --- the students ---------------------------------------------------------------------------
    common = dict(
        base_model=BASE_MODEL,
        labels=tuple(labels),
        max_length=64,
        batch_size=32,
        learning_rate=5e-5,
        head_learning_rate=2e-3,
        kd_temperature=args.kd_temperature,
        seed=args.seed,
        threads=args.threads,
    )
    runs: list[dict] = []
    preds: dict[str, list[str]] = {}
    for variant in variants:
        data_name, mode = variant.split("-")
        cfg = EncoderTrainConfig(epochs=args.epochs, kd_alpha=args.kd_alpha if mode == "kd" else 0.0, **common)
        res, pred = train_and_score(
            variant, cfg, datasets[data_name]["rows"], heldout, teacher_pred, labels, args.bootstrap
        )
        res["dataset"] = data_name
        res["dataset_label_accuracy"] = datasets[data_name]["label_accuracy"]
        runs.append(res)
        preds[variant] = pred
    if args.head_only:
        cfg = EncoderTrainConfig(
            **{**common, "head_learning_rate": 0.01}, epochs=args.head_epochs, kd_alpha=0.0, finetune="head"
        )
        res, pred = train_and_score(
            "all-hard-head-only", cfg, datasets["all"]["rows"], heldout, teacher_pred, labels, args.bootstrap
        )
        res["dataset"], res["dataset_label_accuracy"] = "all", datasets["all"]["label_accuracy"]
        runs.append(res)
        preds["all-hard-head-only"] = pred

    # --- the report -----------------------------------------------------------------------------
    total_s = time.perf_counter() - t_start
    print(
        f"BANKING77 student bench: {len(pool):,} training queries from the train split, {len(heldout):,} held-out "
        f"from the test split (gold labels), 77 intents"
    )
    print(
        f"teacher: SIMULATED stand-in at {args.accuracy:.0%} (wrong answers mostly the 2 MiniLM-nearest intents), "
        f"over HTTP through answer_all; {len(answers):,} answers in {teacher_s:.1f} s"
    )
    print(f"teacher label accuracy: training pool {pool_label_acc:.4f}, held-out {teacher_acc:.4f}")
    for name, d in datasets.items():
        print(
            f"dataset {name:9}: {d['kept']:,} rows, label accuracy {d['label_accuracy']:.4f}, rejected "
            f"{d['rejected_by_reason'] or '{}'}"
        )
    print(
        f"student: packaged MiniLM-L6 ({BASE_MODEL}), encoder lr 5e-5, head lr 2e-3, batch 32, max_length 64, "
        f"seed {args.seed}, {args.threads} threads; KD alpha {args.kd_alpha}, T {args.kd_temperature}"
    )
    print()
    hdr = (
        f"{'student':22} {'rows':>6} {'row acc':>7} {'ep':>3} {'acc by epoch':>14} {'held-out':>8} {'95% CI':>13} "
        f"{'macroF1':>7} {'agree':>6} {'retention':>9} {'ret CI low':>10} {'train s':>8} {'s/epoch':>8} {'cores':>5}"
    )
    print(hdr)
    print(
        f"{'teacher (simulated)':22} {'-':>6} {'-':>7} {'-':>3} {'-':>14} {teacher_acc:8.4f} {'-':>13} "
        f"{macro_f1(heldout_gold, teacher_pred, labels):7.4f} {1:6.3f} {1:9.4f} {'-':>10} {'-':>8} {'-':>8} {'-':>5}"
    )
    for r in runs:
        by_epoch = r["heldout_accuracy_by_epoch"]
        shown = "/".join(f"{a:.3f}" for a in by_epoch) if len(by_epoch) <= 3 else f"..{by_epoch[-1]:.3f}"
        ci = r["accuracy_ci"]
        per_epoch = r["train_wall_s_less_evals"] / r["epochs"]
        print(
            f"{r['name']:22} {r['train_rows']:6,} {r['dataset_label_accuracy']:7.4f} {r['epochs']:3} {shown:>14} "
            f"{r['heldout_accuracy']:8.4f} {ci[0]:6.3f}-{ci[1]:.3f} {r['macro_f1']:7.4f} "
            f"{r['agreement_with_teacher']:6.3f} "
            f"{r['retention']:9.4f} {r['retention_ci'][0]:10.4f} {r['train_wall_s']:8.0f} {per_epoch:8.0f} "
            f"{r['train_cpu_cores']:5.2f}"
        )
    print()

    ratios: list[dict] = []

    def compare(a: str, b: str, what: str) -> None:
        if a not in preds or b not in preds:
            return
        ra, rb = next(r for r in runs if r["name"] == a), next(r for r in runs if r["name"] == b)
        ca = [p == g for p, g in zip(preds[a], heldout_gold)]
        cb = [p == g for p, g in zip(preds[b], heldout_gold)]
        only_a = sum(x and not y for x, y in zip(ca, cb))
        only_b = sum(y and not x for x, y in zip(ca, cb))
        p = mcnemar_p(only_a, only_b)
        ratio = ra["heldout_accuracy"] / rb["heldout_accuracy"]
        ratios.append(
            {
                "a": a,
                "b": b,
                "what": what,
                "ratio": round(ratio, 4),
                "only_a_right": only_a,
                "only_b_right": only_b,
                "mcnemar_p": round(p, 4),
            }
        )
        print(
            f"{what:40} {a + ' / ' + b:34} {ratio:7.4f}   only-left right {only_a:4}, only-right right {only_b:4}, "
            f"exact McNemar p {p:.3f}"
        )

    print(f"{'ratio (held-out accuracy)':40} {'rows':34} {'ratio':>7}")
    compare("all-kd", "all-hard", "KD / hard labels, all rows")
    compare("filtered-kd", "filtered-hard", "KD / hard labels, filtered rows")
    compare("filtered-hard", "all-hard", "filtered / all rows, hard labels")
    compare("filtered-kd", "all-kd", "filtered / all rows, KD")
    compare("all-hard-head-only", "all-hard", "head-only / full fine-tuning")
    print()

    checks = []
    for r in runs:
        if r["finetune"] != "full":
            continue
        ok = r["retention"] >= TARGET_RETENTION
        verdict = "not checked in a --quick run" if args.quick else "PASS" if ok else "FAIL"
        checks.append(
            {
                "name": r["name"],
                "retention": r["retention"],
                "target": TARGET_RETENTION,
                "pass": ok,
                "checked": not args.quick,
            }
        )
        print(f"retention {r['name']:20} {r['retention']:.4f}  (target >= {TARGET_RETENTION:.2f}: {verdict})")
    print()
    print("soft labels (training pool): " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(
        "The teacher is a SIMULATED stand-in: its probabilities are synthetic (when it is wrong, the gold label is by"
    )
    print(
        "construction among its runner-ups), so the KD rows test the plumbing, not whether distillation helps "
        "with a real"
    )
    print("teacher. The student rows are real training runs of the packaged MiniLM on real queries.")
    print("held-out accuracy by epoch: evaluated after each epoch of the same run (the test split is passed as the")
    print(
        "trainer's validation set with no early stopping, so it selects nothing). 'train s' includes those evaluations;"
    )
    print("'s/epoch' leaves them out. 'cores' is process CPU time / wall time during training.")
    print(f"total wall time {total_s:.0f} s (teacher {teacher_s:.1f} s, confusion table {confusion_s:.1f} s)")

    blob = {
        "when_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pool_rows": len(pool),
        "heldout_rows": len(heldout),
        "key_conflicts": conflicts,
        "teacher": {
            "simulated": True,
            "accuracy_setting": args.accuracy,
            "answers": len(answers),
            "seconds": round(teacher_s, 1),
            "pool_label_accuracy": round(pool_label_acc, 4),
            "heldout_accuracy": round(teacher_acc, 4),
            "heldout_macro_f1": round(macro_f1(heldout_gold, teacher_pred, labels), 4),
            "unparseable": sum(p is None for p in teacher_pred),
            "billed_calls": stats.billed_calls,
        },
        "soft_labels": facts,
        "datasets": {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in datasets.items()},
        "runs": runs,
        "ratios": ratios,
        "checks": checks,
        "total_wall_s": round(total_s, 1),
    }
    print(json.dumps(blob, separators=(",", ":")))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(blob, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.out}")
    return 0 if args.quick or all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
