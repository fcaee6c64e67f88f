"""`evaluate`: the student and the teacher on the same held-out set.

Writes metrics.json (the gates read it) and predictions.json (the confusion-matrix plot).
Retention is student accuracy over teacher accuracy. Latency is the student answering one
text at a time, as it would serve, with evaluation.threads CPU threads.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from distillbuild import layout
from distillbuild.curate.normalize import normalize_label
from distillbuild.errors import StageError
from distillbuild.evaluate.classification import accuracy, bootstrap_intervals, macro_f1, per_class_f1, percentile
from distillbuild.evaluate.generation import evaluate_generation, judge_pairs
from distillbuild.io import read_jsonl, write_json
from distillbuild.spec import Spec
from distillbuild.stages.contract import Out, posix, uncached
from distillbuild.stages.endpoints import open_judge
from distillbuild.teacher.judge import with_defaults
from distillbuild.console import log


# --- contract: what compile.py declares in dvc.yaml for this stage (see stages/contract.py) ---

# A causal student is prompted, and loaded over its base model.
READS = ("task.type", "task.labels", "task.instruction", "task.output_schema", "teacher.provider", "teacher.price",
         "student.kind", "student.base_model", "student.endpoint", "evaluation")


def deps(spec: Spec) -> list[str]:
    files = [layout.MODEL_DIR, posix(spec.data_files.heldout), layout.TEACHER_HELDOUT]
    judge = spec.evaluation.judge
    if judge is not None and judge.provider == "simulated":  # the stand-in judge's answer key
        files += [p for p in [posix(judge.simulated.answers)] if p not in files]
    return files


def _classification(spec: Spec) -> bool:
    return spec.task.type == "classification"


def outs(spec: Spec) -> list[Out]:
    return [] if _classification(spec) else [uncached(layout.PREDICTIONS)]


def metrics(spec: Spec) -> list[Out]:
    return [uncached(layout.METRICS)]


def plots(spec: Spec) -> list[Out]:
    return [uncached(layout.PREDICTIONS)] if _classification(spec) else []


def views(spec: Spec) -> list[dict]:
    if not _classification(spec):  # a confusion matrix needs classes
        return []
    return [{layout.PREDICTIONS: {"template": "confusion", "x": "predicted", "y": "actual",
                                  "title": "Student on the held-out set"}}]

WARMUP = 5


def _latencies_ms(model, texts: list[str], samples: int) -> list[float]:
    for text in texts[:WARMUP]:
        model.predict([text])
    out = []
    for i in range(samples):
        t0 = time.perf_counter()
        model.predict([texts[i % len(texts)]])
        out.append((time.perf_counter() - t0) * 1000)
    return out


def student_cost_per_1k(spec: Spec, latencies_ms: list[float]) -> float:
    """What 1,000 requests cost on a machine billed at evaluation.student_usd_per_hour, served one
    at a time at the measured mean latency."""
    mean_s = sum(latencies_ms) / len(latencies_ms) / 1000
    return round(mean_s * spec.get("evaluation.student_usd_per_hour") / 3600 * 1000, 8)


def _teacher_cost_per_1k(spec: Spec, answers: list[dict]) -> float | None:
    """What 1,000 such requests cost at teacher.price, from the usage the teacher reported."""
    price = spec.get("teacher.price")
    usage = [a.get("usage") for a in answers if a.get("usage")]
    if not price or not usage:
        return None
    per_call = sum(u.get("prompt_tokens", 0) * price["input_per_mtok"] + u.get("completion_tokens", 0) * price["output_per_mtok"]
                   for u in usage) / len(usage) / 1e6
    return round(per_call * 1000, 6)


def load_classifier(spec: Spec):
    """The student as something with predict(texts) -> labels: an encoder with its head, or a
    causal LM (local adapter, or an OpenAI-compatible endpoint) whose answers are normalised."""
    threads = spec.get("evaluation.threads")
    if spec.get("student.kind") == "causal-lm":
        from distillbuild.evaluate.causal_student import CausalClassifier, load_causal_student

        return CausalClassifier(load_causal_student(spec, Path(layout.MODEL_DIR), threads), spec["task"])
    from distillbuild.train.encoder import EncoderClassifier

    return EncoderClassifier.load(Path(layout.MODEL_DIR), threads=threads)


class _Generator:
    """A causal student's generate() behind predict(), for the latency loop."""

    def __init__(self, student, task):
        from distillbuild.teacher.prompts import messages_for

        self.student, self.prompt = student, lambda text: messages_for(task, text)

    def predict(self, texts: list[str]) -> list[str]:
        return self.student.generate([self.prompt(t) for t in texts])


def evaluate_generation_for_spec(spec: Spec, heldout_rows: list[dict], student_outputs: list[str | None],
                                 teacher_outputs: list[str | None], details: list[dict] | None = None,
                                 log: Callable[[str], None] = log) -> dict:
    """`evaluate_generation` with evaluation.judge's endpoint and the repository's cache, open only
    while there are answers to judge, and the spec's bootstrap count."""
    section = spec.get("evaluation.judge")
    if not section:
        raise StageError("generation tasks are scored by an LLM judge: add an evaluation.judge section to the spec")
    section = with_defaults(section)
    pairs, _ = judge_pairs(heldout_rows, student_outputs, teacher_outputs)
    opened = open_judge(section, spec.dir, spec.repo_root, "evaluation.judge", log) if pairs else nullcontext((None, None))
    with opened as (settings, cache):
        return evaluate_generation(heldout_rows, student_outputs, teacher_outputs, section, settings, cache,
                                   bootstrap=spec.get("evaluation.bootstrap", 1000), details=details, log=log)


def run_generation(spec: Spec) -> int:
    """Generation: student and teacher answers on the held-out set, each scored by G-Eval with
    the judge in evaluation.judge (cached like teacher calls); retention is the mean-score ratio."""
    from distillbuild.evaluate.causal_student import load_causal_student

    heldout = read_jsonl(spec.resolve(spec.get("data.heldout")))
    teacher = {str(r["id"]): r for r in read_jsonl(Path(layout.TEACHER_HELDOUT))}
    model = _Generator(load_causal_student(spec, Path(layout.MODEL_DIR), spec.get("evaluation.threads")), spec["task"])
    texts = [r["text"] for r in heldout]
    student = model.predict(texts)
    teacher_out = [teacher.get(str(r["id"]), {}).get("answer") for r in heldout]
    details: list[dict] = []
    metrics = evaluate_generation_for_spec(spec, heldout, student, teacher_out, details=details, log=log)
    lat = _latencies_ms(model, texts, spec.get("evaluation.latency_samples"))
    metrics.update(
        latency_p50_ms=round(percentile(lat, 0.50), 3),
        latency_p95_ms=round(percentile(lat, 0.95), 3),
        teacher_cost_per_1k_usd=_teacher_cost_per_1k(spec, [teacher.get(str(r["id"]), {}) for r in heldout]),
        student_cost_per_1k_usd=student_cost_per_1k(spec, lat),
        teacher_simulated=spec.get("teacher.provider") == "simulated",
    )
    write_json(Path(layout.METRICS), metrics)
    write_json(Path(layout.PREDICTIONS), [{"id": r["id"], "student": s, "teacher": t, **({"scores": d} if d else {})}
                                          for r, s, t, d in zip(heldout, student, teacher_out, details or [None] * len(heldout))])
    log(f"evaluate: G-Eval mean student {metrics.get('geval_mean')}, teacher {metrics.get('teacher_geval_mean')}, "
        f"retention {metrics.get('retention')}, latency p95 {metrics['latency_p95_ms']:.1f} ms")
    return 0


def run(spec: Spec) -> int:
    if spec.get("task.type") == "extraction":  # JSON validity, schema, field match: distillbuild/evaluate/extraction.py
        from distillbuild.evaluate.extraction import run_stage

        return run_stage(spec)
    if spec.get("task.type") == "generation":
        return run_generation(spec)
    if spec.get("task.type") != "classification":
        raise StageError(f"evaluate has no evaluation for {spec.get('task.type')} tasks")
    labels = list(spec.get("task.labels"))
    heldout = read_jsonl(spec.resolve(spec.get("data.heldout")))
    teacher = {str(r["id"]): r for r in read_jsonl(Path(layout.TEACHER_HELDOUT))}
    missing = [r["id"] for r in heldout if str(r["id"]) not in teacher]
    if missing:
        raise StageError(f"the teacher has no answer for {len(missing)} held-out rows (first: {missing[0]}); rerun `teacher`")

    model = load_classifier(spec)
    texts = [r["text"] for r in heldout]
    gold = [r["label"] for r in heldout]
    t0 = time.perf_counter()
    student = model.predict(texts)
    batch_s = time.perf_counter() - t0
    student_text = list(getattr(model, "last_answers", None) or [None] * len(texts))  # a causal student's words
    teacher_pred = [normalize_label(teacher[str(r["id"])].get("answer"), labels) for r in heldout]

    acc, teacher_acc = accuracy(gold, student), accuracy(gold, teacher_pred)
    lat = _latencies_ms(model, texts, spec.get("evaluation.latency_samples"))
    intervals = bootstrap_intervals([g == s for g, s in zip(gold, student)], [g == t for g, t in zip(gold, teacher_pred)],
                                    spec.get("evaluation.bootstrap"))
    metrics = {
        "accuracy": round(acc, 6),
        "teacher_accuracy": round(teacher_acc, 6),
        "retention": round(acc / teacher_acc, 6) if teacher_acc > 0 else None,
        "macro_f1": round(macro_f1(gold, student, labels), 6),
        "teacher_macro_f1": round(macro_f1(gold, teacher_pred, labels), 6),
        "agreement": round(accuracy(teacher_pred, student), 6),
        "latency_p50_ms": round(percentile(lat, 0.50), 3),
        "latency_p95_ms": round(percentile(lat, 0.95), 3),
        **intervals,
        "heldout_rows": len(heldout),
        "teacher_cost_per_1k_usd": _teacher_cost_per_1k(spec, [teacher[str(r["id"])] for r in heldout]),
        "student_cost_per_1k_usd": student_cost_per_1k(spec, lat),
        "teacher_unparseable": sum(p is None for p in teacher_pred),
        "student_unparseable": sum(p is None for p in student),  # a causal student's answer that is no label
        "per_class_f1": {k: round(v, 6) for k, v in per_class_f1(gold, student, labels).items()},
        "teacher_simulated": spec.get("teacher.provider") == "simulated",
        "batch_throughput_rows_per_s": round(len(texts) / batch_s, 1) if batch_s > 0 else None,
    }
    write_json(Path(layout.METRICS), metrics)
    write_json(Path(layout.PREDICTIONS), [
        {"id": r["id"], "actual": g, "predicted": s or "(unparseable)", "teacher": t or "(unparseable)",
         **({"student_text": st} if st is not None else {})}
        for r, g, s, t, st in zip(heldout, gold, student, teacher_pred, student_text)
    ])
    log(f"evaluate: student accuracy {acc:.3f}, teacher {teacher_acc:.3f}, retention {metrics['retention']}, "
        f"latency p50 {metrics['latency_p50_ms']:.1f} ms, p95 {metrics['latency_p95_ms']:.1f} ms")
    return 0
