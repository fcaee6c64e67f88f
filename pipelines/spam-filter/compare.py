"""Print the figures README.md quotes, from the three pipelines' outputs (run after `dvc repro` in
each): the teacher (its held-out answers read as constrained labels, and recalibrated), what the
filter kept, each student with its 95% interval, and the filtered MiniLM against the all-rows one
on the same held-out e-mails (a paired bootstrap of the accuracy difference and McNemar's exact
test)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from distillbuild.curate.confidence import Calibrator, mean_distribution, score
from distillbuild.curate.threshold import wilson
from distillbuild.stats import mcnemar_p

HERE = Path(__file__).resolve().parent
RUNS = {"MiniLM, filtered": HERE, "MiniLM, all rows": HERE / "all-rows", "SmolLM2 LoRA, filtered": HERE / "smollm2"}


def read(run: Path, path: str) -> dict | list | None:
    file = run / path
    return json.loads(file.read_text()) if file.exists() else None


def interval(m: dict, name: str) -> str:
    low, high = m.get(f"{name}_ci_low"), m.get(f"{name}_ci_high")
    return f"{m[name]:.3f} ({low:.3f}-{high:.3f})" if low is not None else f"{m[name]:.3f}"


def paired(
    a: list[dict], b: list[dict], names: tuple[str, str] = ("when filtered", "on all rows"), resamples: int = 5000
) -> str:
    """a's accuracy minus b's on the same held-out rows: a paired bootstrap interval, the rows right
    for one of them only, and McNemar's exact test."""
    assert [r["id"] for r in a] == [r["id"] for r in b], "different held-out rows"
    ra = [r["predicted"] == r["actual"] for r in a]
    rb = [r["predicted"] == r["actual"] for r in b]
    n, rng = len(ra), random.Random(0)
    diffs = sorted(
        sum(ra[i] - rb[i] for i in idx) / n for idx in ([rng.randrange(n) for _ in range(n)] for _ in range(resamples))
    )
    only_a = sum(x and not y for x, y in zip(ra, rb))
    only_b = sum(y and not x for x, y in zip(ra, rb))
    return (
        f"{(sum(ra) - sum(rb)) / n:+.4f} (paired 95% interval {diffs[int(0.025 * resamples)]:+.4f} to "
        f"{diffs[int(0.975 * resamples)]:+.4f}); right only {names[0]} {only_a}, only {names[1]} {only_b}; "
        f"McNemar exact p = {mcnemar_p(only_a, only_b):.2g}"
    )


def teacher_calls(report: dict) -> str:
    """The teacher stage's calls and time; a run answered from the cache paid for none."""
    calls, lat = report["calls"], report["latency_s"]
    if not calls["billed"]:
        return f"all {calls['requested']} answers from the cache (the paying run's figures are in README.md)"
    return (
        f"{calls['billed']} calls in {report['seconds']:.0f} s ({calls['billed'] / report['seconds']:.2f}/s), "
        f"latency p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s; {report['tokens']['prompt']:,} prompt and "
        f"{report['tokens']['completion']:,} completion tokens"
    )


def rows(run: Path, path: str) -> list[dict]:
    file = run / path
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def teacher_readings(run: Path, labels: tuple[str, ...] = ("spam", "legit")) -> None:
    """The teacher's held-out answers against gold, read as the pipeline reads them (its label,
    constrained when the spec asks so) and recalibrated by the content-free prior."""
    answers = rows(run, "build/teacher/heldout_answers.jsonl")
    gold = {r["id"]: r["label"] for r in rows(run, "data/heldout.jsonl")}
    if not answers:
        return

    def line(name: str, predicted: list) -> None:
        right = sum(p == gold[a["id"]] for p, a in zip(predicted, answers))
        low, high = wilson(right, len(answers))
        print(
            f"  teacher, {name}: {right / len(answers):.4f} ({low:.3f}-{high:.3f}) on {len(answers)} held-out; "
            f"{sum(p is None for p in predicted)} without a label"
        )

    sources = {a.get("label_from") for a in answers}
    line(f"its label ({', '.join(sorted(str(s) for s in sources))})", [a.get("label") for a in answers])
    calibration = ((read(run, "build/filter/report.json") or {}).get("confidence") or {}).get("calibration") or {}
    temperature = (calibration.get("calibrator") or {}).get("temperature")
    if temperature is not None:  # the filter's calibrator, fitted on the inputs: the most probable label of each answer
        calibrator = Calibrator("temperature", temperature=temperature)
        line(
            f"temperature-calibrated (T {temperature:.3f}, fitted on the inputs)",
            [score(a, labels, "calibrated", 0.0, calibrator).label for a in answers],
        )
    free = rows(run, "build/teacher/content_free.jsonl")
    if free:
        prior = mean_distribution([r["label_probs"] for r in free if r.get("label_probs")], labels)
        calibrator = Calibrator("contextual", prior=prior)
        line(
            f"contextual calibration (prior {', '.join(f'{l} {p:.3f}' for l, p in prior.items())})",
            [score(a, labels, "calibrated", 0.0, calibrator).label for a in answers],
        )


def main() -> int:
    teacher = read(HERE, "build/teacher/report.json")
    if teacher is None:
        print("run `dvc repro` here first", file=sys.stderr)
        return 2
    print(f"teacher: {teacher['provider']}:{teacher['model']}, {teacher_calls(teacher)}")
    teacher_readings(HERE)
    for name, run in RUNS.items():
        audit = (read(run, "build/filter/report.json") or {}).get("gold_audit")
        m = read(run, "build/evaluate/metrics.json")
        if m is None:
            print(f"{name}: not built")
            continue
        print(
            f"{name}: accuracy {interval(m, 'accuracy')}, teacher {interval(m, 'teacher_accuracy')}, "
            f"baseline {m['baseline_accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} (teacher "
            f"{m['teacher_macro_f1']:.3f}), "
            f"retention {interval(m, 'retention')}, latency p50 {m['latency_p50_ms']:.1f} ms, "
            f"p95 {m['latency_p95_ms']:.1f} ms, unparseable {m['student_unparseable']}"
        )
        if audit:
            print(
                f"  filter: teacher labels right {audit['teacher_accuracy_all']:.3f} of all {audit['rows_with_gold']} "
                f"answers, {audit['teacher_accuracy_kept']:.3f} of the {audit['kept_with_gold']} kept"
            )
        fitted = ((read(run, "build/filter/report.json") or {}).get("confidence") or {}).get("fitted_threshold")
        if fitted:
            print(
                f"  filter: min_confidence {fitted['threshold']} fitted for {fitted['target']} on "
                f"{fitted['labelled_rows']} labelled inputs: precision {fitted['precision']} (95% "
                f"{fitted['precision_ci_low']}-{fitted['precision_ci_high']}, cross-fitted)"
            )
        export = read(run, "build/export/report.json")
        for kind, f in ((export or {}).get("files") or {"": export} if export else {}).items():
            print(
                f"  export {export['format']} {kind or export['quantize']}: {f['bytes'] / 1e6:.0f} MB, agreement "
                f"{f['agreement']:.4f}, accuracy {f['accuracy']:.4f} (unexported {f['student_accuracy']:.4f}), "
                f"latency p50 {f['latency_p50_ms']:.1f} / p95 {f['latency_p95_ms']:.1f} ms against "
                f"{f['student_latency_p50_ms']:.1f} / {f['student_latency_p95_ms']:.1f} ms ({f['speedup_p50']:.2f}x)"
            )
    a, b = read(HERE, "build/evaluate/predictions.json"), read(HERE / "all-rows", "build/evaluate/predictions.json")
    if a and b:
        print(f"filtered minus all rows (MiniLM): {paired(a, b)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
