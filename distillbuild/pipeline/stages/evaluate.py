"""`evaluate`: the student and the teacher on the same held-out set.

Writes metrics.json (the gates read it) and predictions.json (the confusion-matrix plot).
Retention is student accuracy over teacher accuracy. Latency is the student answering one
text at a time, as it would serve, with evaluation.threads CPU threads.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from distillbuild import layout
from distillbuild.console import log
from distillbuild.curate.confidence import row_label
from distillbuild.curate.fitting import calibration_half, fits_on_heldout
from distillbuild.endpoints.open import open_judge
from distillbuild.errors import StageError
from distillbuild.evaluate import causal_student, costs
from distillbuild.evaluate.classification import (
    UNPARSEABLE,
    ClassificationResult,
    accuracy,
    evaluate_classification,
    macro_f1,
    paired_gain,
)
from distillbuild.evaluate.extraction import ExtractionResult, evaluate_extraction, gold_object
from distillbuild.evaluate.generation import evaluate_generation, judge_pairs
from distillbuild.evaluate.latency import Serving
from distillbuild.evaluate.latency import measure as measure_latency
from distillbuild.io import read_json, read_json_or_none, read_jsonl, write_json
from distillbuild.markup import charts
from distillbuild.markup.tables import fmt, table
from distillbuild.measurements import read_report, write_report
from distillbuild.metric_names import MEASURED_METRICS
from distillbuild.pipeline.contract import Out, posix, trace_reads_teacher_max_tokens, uncached
from distillbuild.pipeline.privacy_doors import spec_rows
from distillbuild.pipeline.student_base import student_base_path
from distillbuild.protocol.prompts import messages_for
from distillbuild.spec import Spec
from distillbuild.spec.inputs import with_texts
from distillbuild.spec.model import Task, thaw
from distillbuild.spec.output_schema import UnsupportedSchema, schema_fields
from distillbuild.stats import bootstrap_mean_interval, round_p

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

# Whether the filter fitted on half the held-out set, and so the student is scored on the other
# half only (curate.fitting.fits_on_heldout reads fit_on first, the others only when it is heldout).
_FITS_ON_HELDOUT = (
    "filters.calibration.fit_on",
    "filters.confidence",
    "filters.calibration.method",
    "filters.min_confidence",
)
# `evaluation` but min_heldout_rows, which only the gate reads.
_EVALUATION = tuple(
    f"evaluation.{k}"
    for k in (
        "latency_samples",
        "latency_rounds",
        "threads",
        "bootstrap",
        "max_new_tokens",
        "student_usd_per_hour",
        "judge",
        "compare_with",
    )
)


def _classification(spec: Spec) -> bool:
    return spec.task.type == "classification"


def _fits_on_heldout(spec: Spec) -> bool:
    return _classification(spec) and spec.filters.calibration.fit_on == "heldout"


def _causal(spec: Spec) -> bool:
    """A causal LM is asked with the instruction, loaded over its base model or through its endpoint."""
    return spec.student.kind == "causal-lm"


READS = (
    "data.scrub",  # rows masked as they are read (pipeline/privacy_doors.py)
    "task.type",
    "task.labels",
    "task.instruction",
    "task.output_schema",
    "task.input_template",
    "teacher.provider",
    "teacher.price",
    "student.kind",
    "student.base_model",
    "student.endpoint",
    "student.reasoning",
    "teacher.reasoning",
    "teacher.max_tokens",
    *_EVALUATION,
    "data.heldout_sets",
    "student.preference",
    *_FITS_ON_HELDOUT,
)
READS_WHEN = {
    "data.heldout_sets": lambda spec: bool(spec.data_files.heldout_sets),
    "filters.calibration.fit_on": _classification,
    **{key: _fits_on_heldout for key in _FITS_ON_HELDOUT[1:]},
    "student.base_model": _causal,
    "student.endpoint": _causal,
    "task.instruction": _causal,
    "student.reasoning": lambda spec: spec.student.reasoning != "answer",  # how it is asked, how it answers
    "teacher.reasoning": lambda spec: spec.student.reasoning == "trace",  # the answer line's marker
    "teacher.max_tokens": trace_reads_teacher_max_tokens,  # a trace's room to reason
}


def deps(spec: Spec) -> list[str]:
    model = (
        [layout.PREFERENCE_MODEL, layout.PREFERENCE_BASE, layout.MODEL_DIR]
        if spec.student.preference
        else [layout.MODEL_DIR]
    )  # with DPO, the SFT student too: the gain is measured against it
    files = [
        *model,
        posix(spec.data_files.heldout),
        layout.TEACHER_HELDOUT,
        *(posix(path) for path in spec.data_files.heldout_sets.values()),
    ]
    if spec.evaluation.compared_predictions:  # another variant's predictions: DVC builds it first
        files.append(posix(spec.evaluation.compared_predictions))
    judge = spec.evaluation.judge
    if judge is not None and judge.provider == "simulated":  # the stand-in judge's answer key
        files += [p for p in [posix(judge.simulated.answers)] if p not in files]
    return files


def outs(spec: Spec) -> list[Out]:
    return [] if _classification(spec) else [uncached(layout.PREDICTIONS)]


def metrics(spec: Spec) -> list[Out]:
    return [uncached(layout.METRICS)]


def plots(spec: Spec) -> list[Out]:
    return [uncached(layout.PREDICTIONS)] if _classification(spec) else []


def views(spec: Spec) -> list[dict]:
    if not _classification(spec):  # a confusion matrix needs classes
        return []
    return [
        {
            layout.PREDICTIONS: {
                "template": "confusion",
                "x": "predicted",
                "y": "actual",
                "title": "Student on the held-out set",
            }
        }
    ]


def student_cost_per_1k(spec: Spec, latencies_ms: list[float]) -> float:
    """What 1,000 requests cost on a machine billed at evaluation.student_usd_per_hour."""
    return costs.student_cost_per_1k(latencies_ms, spec.evaluation.student_usd_per_hour)


def _teacher_cost_per_1k(spec: Spec, answers: list[dict]) -> float | None:
    """What 1,000 such requests cost at teacher.price, from the usage the teacher reported."""
    price = spec.teacher.price
    return costs.teacher_cost_per_1k(answers, price)


def load_classifier(spec: Spec):
    """The student as something with predict(texts) -> labels: an encoder with its head, or a
    causal LM (local adapter, or an OpenAI-compatible endpoint) whose answers are normalised."""
    threads = spec.evaluation.threads
    if spec.student.kind == "causal-lm":
        return causal_classifier(spec, load_final_student(spec, threads))
    from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

    return EncoderClassifier.load(Path(layout.MODEL_DIR), threads=threads)


ANSWER_LINE_TOKENS = 16  # explain mode: the marker and a label after the explanation


def causal_classifier(spec: Spec, student) -> "causal_student.CausalClassifier":
    """A causal student as a classifier, asked and read as student.reasoning says (evaluate, serve)."""
    reasoning = spec.teacher.reasoning
    marker = reasoning.marker if reasoning else "Answer:"
    if spec.student.reasoning == "trace":  # room for a rationale as long as the teacher's (and the answer line)
        room = reasoning.max_tokens + ANSWER_LINE_TOKENS if reasoning.mode == "explain" else spec.teacher.max_tokens
        student.max_new_tokens = max(student.max_new_tokens, room)
    return causal_student.CausalClassifier(student, spec.task, spec.student.reasoning, marker)


def load_final_student(spec: Spec, threads: int, root: Path = Path(".")):
    """The student the build ends with: the DPO adapter over the merged SFT model when
    student.preference is set, else the trained model (`root`: the spec's directory)."""
    if spec.student.preference is not None and spec.student.endpoint is None:
        return load_causal_student(
            spec, root / layout.PREFERENCE_MODEL, threads, base=str(root / layout.PREFERENCE_BASE)
        )
    return load_causal_student(spec, root / layout.MODEL_DIR, threads)


def load_causal_student(spec: Spec, model_dir: Path, threads: int, base: str | None = None):
    """The causal student: behind student.endpoint when set, else the model in model_dir over
    `base`, or student.base_model (a directory beside the spec, or a hub id)."""
    endpoint = spec.student.endpoint
    base_model = (base or student_base_path(spec)) if endpoint is None else None
    return causal_student.load_causal_student(
        model_dir, threads, endpoint=endpoint, base_model=base_model, max_new_tokens=spec.evaluation.max_new_tokens
    )


class _Generator:
    """A causal student's generate() behind predict(), for the latency loop."""

    def __init__(self, student, task: Task):
        self.student, self.prompt = student, lambda text: messages_for(task, text)

    def predict(self, texts: list[str]) -> list[str]:
        return self.student.generate([self.prompt(t) for t in texts])


def evaluate_generation_for_spec(
    spec: Spec,
    heldout_rows: list[dict],
    student_outputs: list[str | None],
    teacher_outputs: list[str | None],
    details: list[dict] | None = None,
    log: Callable[[str], None] = log,
) -> dict:
    """`evaluate_generation` with evaluation.judge's endpoint and the repository's cache, open only
    while there are answers to judge, and the spec's bootstrap count."""
    judge = spec.evaluation.judge
    if judge is None:
        raise StageError("generation tasks are scored by an LLM judge: add an evaluation.judge section to the spec")
    pairs, _ = judge_pairs(heldout_rows, student_outputs, teacher_outputs)
    opened = (
        open_judge(judge, spec.dir, spec.repo_root, "evaluation.judge", log) if pairs else nullcontext((None, None))
    )
    with opened as (settings, cache):
        return evaluate_generation(
            heldout_rows,
            student_outputs,
            teacher_outputs,
            judge,
            settings,
            cache,
            bootstrap=spec.evaluation.bootstrap,
            details=details,
            log=log,
        )


def run_generation(spec: Spec) -> int:
    """Generation: student and teacher answers on the held-out set, each scored by G-Eval with
    the judge in evaluation.judge (cached like teacher calls); retention is the mean-score ratio."""

    heldout = read_heldout(spec)
    teacher = {str(r["id"]): r for r in read_jsonl(Path(layout.TEACHER_HELDOUT))}
    model = _Generator(load_final_student(spec, spec.evaluation.threads), spec.task)
    texts = [r["text"] for r in heldout]
    student = model.predict(texts)
    teacher_out = [teacher.get(str(r["id"]), {}).get("answer") for r in heldout]
    details: list[dict] = []
    metrics = evaluate_generation_for_spec(spec, heldout, student, teacher_out, details=details, log=log)
    lat = _latency(spec, model, texts)
    metrics.update(
        latency_p50_ms=lat.p50_ms,
        latency_p95_ms=lat.p95_ms,
        latency=lat.record(),
        teacher_cost_per_1k_usd=_teacher_cost_per_1k(spec, [teacher.get(str(r["id"]), {}) for r in heldout]),
        student_cost_per_1k_usd=student_cost_per_1k(spec, lat.all_ms),
        teacher_simulated=_teacher_simulated(spec),
    )
    write_report(Path(layout.METRICS), metrics, MEASURED_METRICS)
    write_json(
        Path(layout.PREDICTIONS),
        [
            {"id": r["id"], "student": s, "teacher": t, **({"scores": d} if d else {})}
            for r, s, t, d in zip(heldout, student, teacher_out, details or [None] * len(heldout))
        ],
    )
    log(
        f"evaluate: G-Eval mean student {metrics.get('geval_mean')}, teacher {metrics.get('teacher_geval_mean')}, "
        f"retention {metrics.get('retention')}, latency p95 {metrics['latency_p95_ms']:.1f} ms"
    )
    return 0


def run(spec: Spec) -> int:
    task_type = spec.task.type
    if task_type == "extraction":  # JSON validity, schema, field match: distillbuild/evaluate/extraction.py
        return run_extraction(spec)
    if task_type == "generation":
        return run_generation(spec)
    if task_type != "classification":
        raise StageError(f"evaluate has no evaluation for {task_type} tasks")
    return run_classification(spec)


def run_classification(spec: Spec) -> int:
    """Classification: the student's labels and the teacher's (normalised) against the gold labels."""
    labels = list(spec.task.labels)
    heldout = read_heldout(spec)
    teacher_rows = _teacher_rows(heldout)
    model = load_classifier(spec)
    texts = [r["text"] for r in heldout]
    student, batch_s = _timed(model.predict, texts)
    student_text = list(getattr(model, "last_answers", None) or [None] * len(texts))  # a causal student's words
    confidence = list(getattr(model, "last_confidence", None) or [None] * len(texts))  # each label's probability
    teacher = [row_label(r, labels) for r in teacher_rows]  # as the teacher stage read it (label_from)
    serving = _serving(spec, model, texts, teacher_rows, batch_s)
    result = evaluate_classification(
        heldout,
        labels,
        student,
        teacher,
        serving,
        spec.evaluation.bootstrap,
        student_text=student_text,
        student_confidence=confidence,
        teacher_simulated=_teacher_simulated(spec),
    )
    for name, path in spec.data_files.heldout_sets.items():  # each gated apart as METRIC@NAME
        result.metrics.update(_heldout_set_metrics(spec, model, name, path, labels))
    if spec.student.preference is not None:  # did DPO help? the SFT student on the same rows, paired
        figures, before = _preference_comparison(spec, texts, [r["label"] for r in heldout], student)
        result.metrics.update(figures)
        for row, label in zip(result.predictions, before):
            row["sft_predicted"] = label if label is not None else UNPARSEABLE  # as `predicted` writes it
    if spec.evaluation.compare_with:  # another variant (trace against answers alone): the better one is promoted
        result.metrics.update(_variant_comparison(spec, heldout, student))
    _write_outputs(result.metrics, result.predictions)
    _log_classification(result)
    return 0


def _preference_comparison(
    spec: Spec, texts: list[str], gold: list[str], after: list[str | None]
) -> tuple[dict[str, Any], list[str | None]]:
    """The SFT student (before DPO) on the same held-out rows: its accuracy (with its interval),
    its latency, DPO's gain and the exact McNemar p-value of the paired difference; and its labels."""
    sft = causal_classifier(spec, load_causal_student(spec, Path(layout.MODEL_DIR), spec.evaluation.threads))
    before = sft.predict(texts)
    lat = _latency(spec, sft, texts)
    gain = paired_gain(gold, after, before)
    interval = bootstrap_mean_interval([p == g for p, g in zip(before, gold)], spec.evaluation.bootstrap)
    figures = {
        "sft_accuracy": round(gain.other_accuracy, 6),
        **{f"sft_accuracy_{k}": v for k, v in interval.items()},
        "sft_latency_p50_ms": lat.p50_ms,
        "sft_latency_p95_ms": lat.p95_ms,
        "preference_gain": round(gain.gain, 6),
        "preference_gain_p": round_p(gain.p),
    }
    log(
        f"evaluate: DPO vs SFT on the same {len(gold)} rows: accuracy {figures['sft_accuracy']} -> "
        f"{round(accuracy(gold, after), 6)} ({gain.only_this} rows right only after, {gain.only_other} only before; "
        f"McNemar p={figures['preference_gain_p']})"
    )
    return figures, before


def _variant_comparison(spec: Spec, heldout: list[dict], predicted: list[str | None]) -> dict[str, Any]:
    """This student against evaluation.compare_with (another variant's predictions), row by row."""
    named, column = spec.evaluation.compared_predictions, spec.evaluation.compared_column
    path = spec.resolve(named)
    if not path.exists():
        raise StageError(
            f"evaluation.compare_with: {path} does not exist: build that variant first (`dvc repro` "
            "there, or here, which builds it as a dependency)"
        )
    other = {str(r["id"]): r for r in read_json(path)}
    if other and not all(column in r for r in other.values()):
        why = (
            "its build evaluated no SFT student before DPO (student.preference): compare with its final student"
            if column == "sft_predicted"
            else "it is no build/evaluate/predictions.json of a classification task"
        )
        raise StageError(f"evaluation.compare_with: {path} has no `{column}` column: {why}")
    theirs = {i: r.get(column) for i, r in other.items()}
    ids = [str(r["id"]) for r in heldout]
    gold = [r["label"] for r in heldout]
    relabelled = sum(other[i].get("actual") != g for i, g in zip(ids, gold) if i in other)
    if set(theirs) != set(ids) or relabelled:
        raise StageError(
            f"evaluation.compare_with: {path} scores other held-out rows ({len(set(ids) - set(theirs))} "
            f"of this build's {len(ids)} missing, {len(set(theirs) - set(ids))} extra, {relabelled} with "
            "another gold label): variants are compared on the same rows"
        )
    gain = paired_gain(gold, predicted, [theirs[i] for i in ids])
    which = " (its SFT student)" if column == "sft_predicted" else ""
    log(
        f"evaluate: against {named}{which} on the same {len(ids)} rows: accuracy "
        f"{gain.other_accuracy:.4f} -> {gain.other_accuracy + gain.gain:.4f} ({gain.only_this} rows right only here, "
        f"{gain.only_other} only there; McNemar p={gain.p:.4g})"
    )
    return {
        "compared_accuracy": round(gain.other_accuracy, 6),
        "compared_gain": round(gain.gain, 6),
        "compared_gain_p": round_p(gain.p),
    }


def _heldout_set_metrics(spec: Spec, model, name: str, path: str, labels: list[str]) -> dict[str, Any]:
    """The student alone on another held-out set: accuracy with its interval, macro-F1, rows."""
    rows = spec_rows(spec, path, need_label=True)
    gold = [r["label"] for r in rows]
    predicted = model.predict([r["text"] for r in rows])
    interval = bootstrap_mean_interval([float(g == p) for g, p in zip(gold, predicted)], spec.evaluation.bootstrap)
    figures = {
        f"accuracy@{name}": round(accuracy(gold, predicted), 6) if rows else None,
        **{f"accuracy@{name}_{k}": v for k, v in interval.items()},
        f"macro_f1@{name}": round(macro_f1(gold, predicted, labels), 6) if rows else None,
        f"heldout_rows@{name}": len(rows),
    }
    log(f"evaluate: held-out set {name}: student accuracy {figures[f'accuracy@{name}']} on {len(rows)} rows")
    return figures


def run_extraction(spec: Spec) -> int:
    """Extraction: an encoder-extractor student's objects and the teacher's answers, field by field
    (JSON validity, schema validity, field match through DeepEval)."""
    schema = _output_schema(spec)
    model_dir = _extractor_dir()
    heldout, golds, teacher_rows = _extraction_rows(spec)
    model = _load_extractor(model_dir, spec.evaluation.threads)
    texts = [r["text"] for r in heldout]
    student_objs, batch_s = _timed(model.predict, texts)
    serving = _serving(spec, model, texts, teacher_rows, batch_s)
    result = evaluate_extraction(
        schema,
        heldout,
        golds,
        student_objs,
        [r.get("answer") for r in teacher_rows],
        serving,
        spec.evaluation.bootstrap,
        teacher_simulated=_teacher_simulated(spec),
    )
    _write_outputs(result.metrics, result.predictions)
    _log_extraction(result)
    return 0


# --------------------------------------------------------------------------- steps


def read_heldout(spec: Spec) -> list[dict]:
    """The held-out rows, their text rendered by task.input_template when the spec has one; less
    the calibration half when the filter fitted on it (filters.calibration.fit_on: heldout),
    so the student is never scored on rows that chose its training data."""
    rows = spec_rows(spec, spec.data_files.heldout, need_label=True)
    if spec.task.type == "classification" and fits_on_heldout(spec.task, spec.filters):
        rows = [r for r in rows if not calibration_half(r["id"])]
    return rows


def _teacher_rows(heldout: list[dict]) -> list[dict]:
    """The teacher's answer row for each held-out row, in order; every row must have one."""
    teacher = {str(r["id"]): r for r in read_jsonl(Path(layout.TEACHER_HELDOUT))}
    missing = [r["id"] for r in heldout if str(r["id"]) not in teacher]
    if missing:
        raise StageError(
            f"the teacher has no answer for {len(missing)} held-out rows (first: {missing[0]}); rerun `teacher`"
        )
    return [teacher[str(r["id"])] for r in heldout]


def _output_schema(spec: Spec) -> dict[str, Any]:
    """task.output_schema, refused when the metrics cannot read it."""
    schema = thaw(spec.task.output_schema)  # plain dicts, as the metrics and predictions take them
    try:
        schema_fields(schema)
    except UnsupportedSchema as exc:
        raise StageError(f"task.output_schema: {exc}") from None
    return schema


def _extractor_dir() -> Path:
    """The trained model's directory, which must hold an encoder-extractor student."""
    model_dir = Path(layout.MODEL_DIR)
    student_file = model_dir / "student.json"
    kind = read_json(student_file).get("kind") if student_file.exists() else None
    if kind != "encoder-extractor":
        raise StageError(
            "evaluate supports extraction with encoder-extractor students so far "
            f"({model_dir} holds {kind or 'no student.json'})"
        )
    return model_dir


def _extraction_rows(spec: Spec) -> tuple[list[dict], list[dict], list[dict]]:
    """The held-out rows, their gold objects and the teacher's answer rows; refused when empty."""
    heldout_path = spec.resolve(spec.data_files.heldout)
    heldout = with_texts(read_jsonl(heldout_path), spec.task.input_template, heldout_path)
    golds = [gold_object(r, f"{heldout_path.name}: row {r.get('id')}") for r in heldout]
    teacher_rows = _teacher_rows(heldout)
    if not heldout:
        raise StageError(f"{heldout_path}: no held-out rows")
    return heldout, golds, teacher_rows


def _load_extractor(model_dir: Path, threads: int):
    from distillbuild.train.extractor import EncoderExtractor  # lazy: imports torch

    return EncoderExtractor.load(model_dir, threads=threads)


def _timed(predict: Callable[[list[str]], list], texts: list[str]) -> tuple[list, float]:
    """predict(texts) and its seconds."""
    t0 = time.perf_counter()
    out = predict(texts)
    return out, time.perf_counter() - t0


def _serving(spec: Spec, model, texts: list[str], teacher_rows: list[dict], batch_s: float) -> Serving:
    """The student timed one text at a time, and what 1,000 answers cost from each model."""
    lat = _latency(spec, model, texts)
    return Serving(lat, batch_s, _teacher_cost_per_1k(spec, teacher_rows), student_cost_per_1k(spec, lat.all_ms))


def _latency(spec: Spec, model, texts: list[str]):
    e = spec.evaluation
    return measure_latency(model, texts, e.latency_samples, e.latency_rounds, e.threads)


def _teacher_simulated(spec: Spec) -> bool:
    return spec.teacher.provider == "simulated"


def _write_outputs(metrics: dict, predictions: list[dict]) -> None:
    write_report(Path(layout.METRICS), metrics, MEASURED_METRICS)
    write_json(Path(layout.PREDICTIONS), predictions)


def _log_classification(result: ClassificationResult) -> None:
    m = result.metrics
    log(
        f"evaluate: student accuracy {result.accuracy:.3f}, teacher {result.teacher_accuracy:.3f} "
        f"(the commonest label alone: {m['baseline_accuracy']:.3f}), macro-F1 student {m['macro_f1']:.3f}, "
        f"teacher {m['teacher_macro_f1']:.3f}; retention {m['retention']}, "
        f"latency p50 {m['latency_p50_ms']:.1f} ms, p95 {m['latency_p95_ms']:.1f} ms"
    )


def _log_extraction(result: ExtractionResult) -> None:
    s, t, m = result.student, result.teacher, result.metrics
    per_field = ", ".join(f"{k} {v:.3f}" for k, v in s["per_field_accuracy"].items())
    log(
        f"evaluate: student field accuracy {s['field_accuracy']:.3f}, teacher {t['field_accuracy']:.3f}, "
        f"retention {m['retention']}, exact match {s['exact_match']:.3f} (teacher {t['exact_match']:.3f}); "
        f"JSON valid {s['json_valid_rate']:.3f}, schema valid {s['schema_valid_rate']:.3f} "
        f"(teacher {t['json_valid_rate']:.3f}, {t['schema_valid_rate']:.3f}); "
        f"latency p50 {m['latency_p50_ms']:.1f} ms, p95 {m['latency_p95_ms']:.1f} ms; "
        f"DeepEval scoring {result.scoring_s:.1f} s"
    )
    log(f"evaluate: per field {per_field}; constant baseline {m['baseline_field_accuracy']:.3f}")


# The headline metric of each task type in `distill summary`: what its gates usually bound.
HEADLINE = {
    "classification": ("accuracy", "accuracy"),
    "extraction": ("field_accuracy", "fields"),
    "generation": ("geval_mean", "G-Eval"),
}


def summary_lines(spec: Spec) -> list[str]:
    """Its lines in `distill summary`: the headline metric, retention and latency."""
    metrics = read_report(spec.dir / layout.METRICS)
    if not metrics:
        return []

    def figure(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"

    name, label = HEADLINE.get(spec.task.type, HEADLINE["classification"])
    latency = (
        f"latency p50 {metrics['latency_p50_ms']} ms, p95 {metrics['latency_p95_ms']} ms"
        if metrics.get("latency_p50_ms") is not None
        else "latency not measured on this machine (`dvc repro -f -s evaluate` measures it)"
    )
    return [
        f"  {label:<10} student {figure(metrics.get(name))}, teacher {figure(metrics.get('teacher_' + name))} "
        f"on {metrics.get('heldout_rows')} held-out rows",
        f"  retention  {figure(metrics.get('retention'))}   {latency}",
    ]


# The page's headline figures: those with a bootstrap interval, then the rest.
HEADLINE_WITH_INTERVALS = ("accuracy", "teacher_accuracy", "retention", "field_accuracy", "geval_mean")
HEADLINE_FIGURES = (
    *("macro_f1", "teacher_macro_f1", "baseline_accuracy", "agreement", "latency_p50_ms", "latency_p95_ms"),
    *("teacher_cost_per_1k_usd", "student_cost_per_1k_usd", "heldout_rows"),
)


def _with_interval(m: dict, name: str) -> str:
    v, lo, hi = m.get(name), m.get(f"{name}_ci_low"), m.get(f"{name}_ci_high")
    if v is None:
        return "-"
    return f"{v:.4f}" + (f" <span class=muted>({lo:.3f}-{hi:.3f})</span>" if lo is not None and hi is not None else "")


def headline_html(spec: Spec) -> str:
    """Its part of the page's first screen: the held-out metrics, with their 95% intervals."""
    metrics = read_report(spec.dir / layout.METRICS)
    if not metrics:
        return ""
    rows = [
        f"<tr><th>{name}</th><td class=num>{_with_interval(metrics, name)}</td></tr>"
        for name in HEADLINE_WITH_INTERVALS
        if name in metrics
    ]
    rows += [f"<tr><th>{n}</th><td class=num>{fmt(metrics[n])}</td></tr>" for n in HEADLINE_FIGURES if n in metrics]
    return "<table>" + "".join(rows) + "</table>"


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the confusion matrix, per-class F1, latency."""
    metrics = read_report(spec.dir / layout.METRICS)
    if not metrics:
        return ""
    out = ["<h2>Evaluation on the held-out set</h2><div class=charts>"]
    predictions = read_json_or_none(spec.dir / layout.PREDICTIONS) or []
    labels = list(spec.task.labels or [])
    if labels and predictions and "actual" in predictions[0]:
        index = {label: i for i, label in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for p in predictions:
            if p.get("actual") in index and p.get("predicted") in index:
                counts[index[p["actual"]]][index[p["predicted"]]] += 1
        out.append(
            charts.heat_grid(
                labels,
                counts,
                title="Confusion matrix (student)",
                row_title="rows: actual",
                col_title="columns: predicted",
            )
        )
    f1 = metrics.get("per_class_f1") or {}
    if f1:
        out.append(
            charts.bars(
                sorted(f1.items(), key=lambda kv: kv[1]),
                title="Per-class F1 (student)",
                value_format="{:.3f}",
                max_value=1.0,
            )
        )
    out.append("</div>")
    latency = metrics.get("latency") or {}
    if latency:
        machine = latency.get("machine") or {}
        rows = [
            ["method", latency.get("method")],
            ["rounds p50 (ms)", ", ".join(map(str, latency.get("rounds_p50_ms", [])))],
            ["rounds p95 (ms)", ", ".join(map(str, latency.get("rounds_p95_ms", [])))],
            *([k.replace("_", " "), json.dumps(v) if isinstance(v, list) else v] for k, v in machine.items()),
        ]
        out.append("<h3>Latency and the machine it was measured on</h3>" + table(rows, ["", ""]))
    return "".join(out)
