"""`export` (only when the spec has an `export` section): the promoted student as a file a server
loads without this project or PyTorch, checked against the student before anyone ships it.

An encoder classifier becomes ONNX (distillbuild/export/onnx_classifier.py). Both models answer
the whole held-out set: their agreement, each one's accuracy, and each one's latency one text at
a time (evaluation.latency_samples, evaluation.threads, measured in the same run, so the ratio
holds on a noisy machine) go to build/export/report.json. More disagreement than
export.max_disagreement stops the stage (exit 3): an export that answers differently is a
different model.
"""

from __future__ import annotations

from pathlib import Path

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.evaluate.latency import latencies_ms
from distillbuild.export.onnx_classifier import OnnxClassifier, export_onnx
from distillbuild.io import fresh_tmp_dir, read_json, replace_dir, write_json
from distillbuild.spec import Spec
from distillbuild.spec.inputs import read_rows
from distillbuild.stages.contract import Out, posix, uncached
from distillbuild.stats import percentile


# --- contract: what compile.py declares in dvc.yaml for this stage (see stages/contract.py) ---

READS = ("task.labels", "task.input_template", "student.kind", "export", "evaluation.latency_samples",
         "evaluation.threads")


def applies(spec: Spec) -> bool:
    return spec.export is not None


def deps(spec: Spec) -> list[str]:
    # The gate's decision: only a student that passed is exported.
    return [layout.MODEL_DIR, posix(spec.data_files.heldout), layout.DECISION]


def outs(spec: Spec) -> list[Out]:
    return [layout.EXPORT_DIR]


def metrics(spec: Spec) -> list[Out]:
    return [uncached(layout.EXPORT_REPORT)]


def run(spec: Spec) -> int:
    verdict = read_json(Path(layout.DECISION)).get("verdict")
    if verdict != "pass":
        raise StageError(f"the gate's verdict is {verdict!r}: only a student that passed its gates is exported")
    from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

    threads, settings = spec.evaluation.threads, spec.export
    student = EncoderClassifier.load(Path(layout.MODEL_DIR), threads=threads)
    tmp = fresh_tmp_dir(Path(layout.EXPORT_DIR))
    export_onnx(student, tmp, opset=settings.opset, quantize=settings.quantize)
    replace_dir(tmp, Path(layout.EXPORT_DIR))
    exported = OnnxClassifier.load(Path(layout.EXPORT_DIR), threads=threads)
    report = compare(student, exported, read_rows(spec.resolve(spec.data_files.heldout), spec.task.input_template,
                                                  need_label=True), spec.evaluation.latency_samples)
    report.update(format=settings.format, quantize=settings.quantize, opset=settings.opset,
                  bytes=(Path(layout.EXPORT_DIR) / "model.onnx").stat().st_size,
                  max_disagreement=settings.max_disagreement)
    write_json(Path(layout.EXPORT_REPORT), report)
    log(f"export: {settings.format} ({settings.quantize}), {report['bytes'] / 1e6:.1f} MB; agreement with the "
        f"student {report['agreement']:.4f} on {report['heldout_rows']} held-out rows; accuracy "
        f"{report['accuracy']:.4f} (student {report['student_accuracy']:.4f}); latency p50 "
        f"{report['latency_p50_ms']:.1f} ms against {report['student_latency_p50_ms']:.1f} ms "
        f"({report['speedup_p50']:.2f}x), p95 {report['latency_p95_ms']:.1f} against "
        f"{report['student_latency_p95_ms']:.1f}")
    if 1 - report["agreement"] > settings.max_disagreement:
        raise StageError(f"the exported model answers {1 - report['agreement']:.2%} of the held-out rows differently "
                         f"from the student, more than export.max_disagreement ({settings.max_disagreement:.2%})")
    return 0


def compare(student, exported, heldout: list[dict], samples: int) -> dict:
    """The two models on the same held-out rows: agreement, accuracy, latency one text at a time."""
    texts, gold = [r["text"] for r in heldout], [r["label"] for r in heldout]
    ours, theirs = student.predict(texts), exported.predict(texts)
    slow, fast = latencies_ms(student, texts, samples), latencies_ms(exported, texts, samples)
    p50 = percentile(slow, 0.5), percentile(fast, 0.5)
    return {
        "heldout_rows": len(texts),
        "agreement": round(sum(a == b for a, b in zip(ours, theirs)) / len(texts), 6),
        "accuracy": round(sum(p == g for p, g in zip(theirs, gold)) / len(texts), 6),
        "student_accuracy": round(sum(p == g for p, g in zip(ours, gold)) / len(texts), 6),
        "latency_p50_ms": round(p50[1], 3), "latency_p95_ms": round(percentile(fast, 0.95), 3),
        "student_latency_p50_ms": round(p50[0], 3), "student_latency_p95_ms": round(percentile(slow, 0.95), 3),
        "speedup_p50": round(p50[0] / p50[1], 3) if p50[1] > 0 else None,
    }
