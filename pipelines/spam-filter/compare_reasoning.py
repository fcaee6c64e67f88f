"""Print the reasoning and preference figures README.md quotes (run after `dvc repro` in
reasoning/, reasoning/trace/ and reasoning/step-by-step/, and in smollm2/ for the answer-only teacher's student): the
reasoning teacher, what its filter kept, each SmolLM2 student on the same 400 held-out e-mails
with its 95% interval, macro-F1, unparseable answers and latency, and the variants against each
other, paired on those rows (the accuracy difference with a paired bootstrap interval, and
McNemar's exact test)."""

from __future__ import annotations

import sys
from pathlib import Path

from compare import paired, read, teacher_calls

from distillbuild.evaluate.classification import macro_f1
from distillbuild.stats import bootstrap_mean_interval

HERE = Path(__file__).resolve().parent
REASONING, PLAIN = HERE / "reasoning", HERE / "smollm2"
TRACE, STEPS = REASONING / "trace", REASONING / "step-by-step"
LABELS = ["spam", "legit"]


def variants() -> dict[str, tuple[list[dict], dict, str]]:
    """name -> (rows {id, actual, predicted}, metrics, latency key prefix), for the variants built."""
    out = {}
    plain = read(PLAIN, "build/evaluate/predictions.json")
    if plain:
        out["answers, from the answer-only teacher (smollm2/)"] = (
            plain,
            read(PLAIN, "build/evaluate/metrics.json"),
            "",
        )
    answer = read(REASONING, "build/evaluate/predictions.json")
    if answer:
        metrics = read(REASONING, "build/evaluate/metrics.json")
        sft = [{**r, "predicted": r["sft_predicted"]} for r in answer]
        out["answers (SFT)"] = (sft, metrics, "sft_")
        out["answers, then DPO"] = (answer, metrics, "")
    trace = read(TRACE, "build/evaluate/predictions.json")
    if trace:
        out["rationale + answer (trace)"] = (trace, read(TRACE, "build/evaluate/metrics.json"), "")
    steps = read(STEPS, "build/evaluate/predictions.json")
    if steps:
        out["label and rationale as two tasks (step by step)"] = (steps, read(STEPS, "build/evaluate/metrics.json"), "")
    return out


def right(rows: list[dict]) -> list[bool]:
    return [r["predicted"] == r["actual"] for r in rows]


def main() -> int:
    teacher = read(REASONING, "build/teacher/report.json")
    if teacher is None:
        print("run `dvc repro` in reasoning/ first", file=sys.stderr)
        return 2
    print(f"reasoning teacher: {teacher_calls(teacher)}")
    kept = read(REASONING, "build/filter/report.json") or {}
    audit = kept.get("gold_audit") or {}
    print(
        f"filter: kept {kept.get('kept')} of {kept.get('rows')}; dropped "
        f"{ ({k: v for k, v in (kept.get('by_reason') or {}).items() if v}) }; teacher right "
        f"{audit.get('teacher_accuracy_all')} of all, {audit.get('teacher_accuracy_kept')} of the kept"
    )
    pairs = read(REASONING, "build/preference/pairs_report.json")
    if pairs:
        print(f"pairs: {pairs}")
    built = variants()
    for name, (rows, metrics, prefix) in built.items():
        gold, predicted = [r["actual"] for r in rows], [r["predicted"] for r in rows]
        ci = bootstrap_mean_interval(right(rows), 5000)
        accuracy = sum(right(rows)) / len(rows)
        unparseable = sum(p not in LABELS for p in predicted)
        print(
            f"{name}: accuracy {accuracy:.4f} ({ci['ci_low']:.4f}-{ci['ci_high']:.4f}) on {len(rows)}, macro-F1 "
            f"{macro_f1(gold, predicted, LABELS):.3f}, unparseable {unparseable}, answers spam "
            f"{sum(p == 'spam' for p in predicted)}, latency p50 {metrics[prefix + 'latency_p50_ms']:.0f} ms, "
            f"p95 {metrics[prefix + 'latency_p95_ms']:.0f} ms"
        )
        if prefix == "" and "teacher_accuracy" in metrics and name.startswith("answers, then"):
            print(
                f"  teacher on the same rows: accuracy {metrics['teacher_accuracy']:.4f}, macro-F1 "
                f"{metrics['teacher_macro_f1']:.3f}"
            )
    for first, second in (
        ("rationale + answer (trace)", "answers (SFT)"),
        ("answers, then DPO", "answers (SFT)"),
        ("label and rationale as two tasks (step by step)", "answers (SFT)"),
        ("answers (SFT)", "answers, from the answer-only teacher (smollm2/)"),
    ):
        if first in built and second in built:
            print(
                f"{first} minus {second}: "
                f"{paired(built[first][0], built[second][0], ('in the first', 'in the second'))}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
