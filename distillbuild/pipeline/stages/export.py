"""`export` (only when the spec has an `export` section): the promoted student as a file a server
loads without this project or PyTorch, checked against the student before anyone ships it.

An encoder classifier becomes ONNX (distillbuild/export/onnx_classifier.py); a causal-LM student
becomes GGUF (distillbuild/export/gguf_causal.py): the f16 file and the shipped quantized one are
each served by llama.cpp and answer the whole held-out set, against the student's own held-out
predictions. Each export's agreement with the student, its accuracy and its latency one text at
a time beside the student's (evaluation.latency_samples, evaluation.threads, measured in the same
run, so the ratio holds on a noisy machine) go to build/export/report.json. More disagreement
than export.max_disagreement stops the stage (exit 3): an export that answers differently is a
different model.
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.evaluate.latency import latencies_ms
from distillbuild.export.onnx_classifier import OnnxClassifier, export_onnx
from distillbuild.io import fresh_tmp_dir, read_json, replace_dir
from distillbuild.markup.tables import table
from distillbuild.measurements import read_report, write_report
from distillbuild.pipeline.contract import Out, posix, trace_reads_teacher_max_tokens, uncached
from distillbuild.pipeline.privacy_doors import spec_rows
from distillbuild.pipeline.student_base import student_base_path
from distillbuild.protocol.prompts import system_prompt
from distillbuild.spec import Spec
from distillbuild.spec.model_files import resolve_model_file
from distillbuild.stats import percentile
from distillbuild.train.gguf_base import is_gguf

GGUF_CONTEXT = 2048  # tokens llama.cpp and Ollama hold: the instruction, an input cut by the template, the answer


# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

READS = (
    "data.scrub",  # rows masked as they are read (pipeline/privacy_doors.py)
    "task.labels",
    "task.instruction",
    "task.input_template",
    "student.kind",
    "student.base_model",
    "student.chat_template",
    "student.reasoning",
    "teacher.reasoning",
    "teacher.max_tokens",
    "export",
    "evaluation.latency_samples",
    "evaluation.threads",
    "evaluation.max_new_tokens",
)


def _gguf(spec: Spec) -> bool:
    return spec.export is not None and spec.export.format == "gguf"


# A GGUF export's prompt (the Modelfile's system prompt), base and decoding; an ONNX one reads none of them.
READS_WHEN = {
    key: _gguf
    for key in (
        "task.instruction",
        "task.labels",
        "student.kind",
        "student.base_model",
        "student.chat_template",
        "evaluation.max_new_tokens",
    )
}
# A trace student is read at its answer line (the marker) and given room for its rationale.
READS_WHEN.update(
    {
        key: (lambda spec: _gguf(spec) and spec.student.reasoning == "trace")
        for key in ("student.reasoning", "teacher.reasoning")
    }
)
READS_WHEN["teacher.max_tokens"] = lambda spec: _gguf(spec) and trace_reads_teacher_max_tokens(spec)


def _student_dirs(spec: Spec) -> tuple[Path, str]:
    """(the adapter, its base): the DPO adapter over the merged SFT model with student.preference."""
    if spec.student.preference is not None:
        return Path(layout.PREFERENCE_MODEL), layout.PREFERENCE_BASE
    return Path(layout.MODEL_DIR), student_base_path(spec)


def applies(spec: Spec) -> bool:
    return spec.export is not None


def deps(spec: Spec) -> list[str]:
    # The gate's decision: only a student that passed is exported. A causal student's held-out
    # answers are read from evaluate's predictions (minutes of generation not paid twice).
    causal = [layout.PREDICTIONS] if _gguf(spec) else []
    model = [layout.PREFERENCE_MODEL, layout.PREFERENCE_BASE] if spec.student.preference else [layout.MODEL_DIR]
    return [*model, posix(spec.data_files.heldout), layout.DECISION, *causal]


def outs(spec: Spec) -> list[Out]:
    return [layout.EXPORT_DIR]


def metrics(spec: Spec) -> list[Out]:
    return [uncached(layout.EXPORT_REPORT)]


# An exported file's timings beside the unexported student's: this machine's (measurements.py).
TIMINGS = ("latency_p50_ms", "latency_p95_ms", "student_latency_p50_ms", "student_latency_p95_ms", "speedup_p50")


def run(spec: Spec) -> int:
    verdict = read_json(Path(layout.DECISION)).get("verdict")
    if verdict != "pass":
        raise StageError(f"the gate's verdict is {verdict!r}: only a student that passed its gates is exported")
    report = (export_gguf_student if spec.export.format == "gguf" else export_onnx_student)(spec)
    settings = spec.export
    report.update(format=settings.format, quantize=settings.quantize, max_disagreement=settings.max_disagreement)
    files = [f"files.{kind}.{name}" for kind in report.get("files") or {} for name in TIMINGS]
    write_report(Path(layout.EXPORT_REPORT), report, [*TIMINGS, *files])
    log(
        f"export: {settings.format} ({settings.quantize}), {report['bytes'] / 1e6:.1f} MB; agreement with the "
        f"student {report['agreement']:.4f} on {report['heldout_rows']} held-out rows; accuracy "
        f"{report['accuracy']:.4f} (student {report['student_accuracy']:.4f}); latency p50 "
        f"{report['latency_p50_ms']:.1f} ms against {report['student_latency_p50_ms']:.1f} ms "
        f"({report['speedup_p50']:.2f}x), p95 {report['latency_p95_ms']:.1f} against "
        f"{report['student_latency_p95_ms']:.1f}"
    )
    if 1 - report["agreement"] > settings.max_disagreement:
        raise StageError(
            f"the exported model answers {1 - report['agreement']:.2%} of the held-out rows differently "
            f"from the student, more than export.max_disagreement ({settings.max_disagreement:.2%})"
        )
    return 0


def export_onnx_student(spec: Spec) -> dict:
    from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

    threads, settings = spec.evaluation.threads, spec.export
    student = EncoderClassifier.load(Path(layout.MODEL_DIR), threads=threads)
    tmp = fresh_tmp_dir(Path(layout.EXPORT_DIR))
    export_onnx(student, tmp, opset=settings.opset, quantize=settings.quantize)
    replace_dir(tmp, Path(layout.EXPORT_DIR))
    exported = OnnxClassifier.load(Path(layout.EXPORT_DIR), threads=threads)
    report = compare(
        student,
        exported,
        spec_rows(spec, spec.data_files.heldout, need_label=True),
        spec.evaluation.latency_samples,
    )
    report.update(opset=settings.opset, bytes=(Path(layout.EXPORT_DIR) / "model.onnx").stat().st_size)
    return report


def compare(student, exported, heldout: list[dict], samples: int) -> dict:
    """The two models on the same held-out rows: agreement, accuracy, latency one text at a time."""
    texts = [r["text"] for r in heldout]
    return compared(
        heldout,
        student.predict(texts),
        exported.predict(texts),
        latencies_ms(student, texts, samples),
        latencies_ms(exported, texts, samples),
    )


def compared(heldout: list[dict], ours: list, theirs: list, slow: list[float], fast: list[float]) -> dict:
    """Agreement and accuracy of two answer lists over the held-out rows, and their latencies."""
    gold, n = [r["label"] for r in heldout], len(heldout)
    p50 = percentile(slow, 0.5), percentile(fast, 0.5)
    return {
        "heldout_rows": n,
        "agreement": round(sum(a == b for a, b in zip(ours, theirs)) / n, 6),
        "accuracy": round(sum(p == g for p, g in zip(theirs, gold)) / n, 6),
        "student_accuracy": round(sum(p == g for p, g in zip(ours, gold)) / n, 6),
        "latency_p50_ms": round(p50[1], 3),
        "latency_p95_ms": round(percentile(fast, 0.95), 3),
        "student_latency_p50_ms": round(p50[0], 3),
        "student_latency_p95_ms": round(percentile(slow, 0.95), 3),
        "speedup_p50": round(p50[0] / p50[1], 3) if p50[1] > 0 else None,
    }


def export_gguf_student(spec: Spec) -> dict:
    """The merged student as f16 and quantized GGUF with an Ollama Modelfile; each file served by
    llama.cpp answers the held-out set and is timed beside the unexported student."""
    from distillbuild.endpoints.llamacpp import LlamaCppServer, server_version
    from distillbuild.evaluate.causal_student import EndpointStudent
    from distillbuild.export import gguf_causal
    from distillbuild.pipeline.stages.evaluate import (  # lazy: the stages import each other
        causal_classifier,
        load_final_student,
    )

    settings, threads, samples = spec.export, spec.evaluation.threads, spec.evaluation.latency_samples
    base = spec.student.base_model
    base_gguf = resolve_model_file(base, spec.dir) if is_gguf(base) else None
    tmp = fresh_tmp_dir(Path(layout.EXPORT_DIR))
    with tempfile.TemporaryDirectory(prefix="distill-export-") as work:
        model_dir, model_base = _student_dirs(spec)
        files = gguf_causal.export_gguf(
            model_dir, model_base, base_gguf, tmp, spec.name, settings.quantize, threads, Path(work), log
        )
    shipped = files[settings.quantize]
    student = causal_classifier(spec, load_final_student(spec, threads))  # as evaluate asked it
    (tmp / "Modelfile").write_text(
        gguf_causal.modelfile(
            shipped.name,
            spec.student.chat_template,
            system_prompt(spec.task),
            student.student.max_new_tokens,
            GGUF_CONTEXT,
        ),
        encoding="utf-8",
    )
    replace_dir(tmp, Path(layout.EXPORT_DIR))
    files = {kind: Path(layout.EXPORT_DIR) / path.name for kind, path in files.items()}

    heldout = spec_rows(spec, spec.data_files.heldout, need_label=True)
    texts = [r["text"] for r in heldout]
    labels = set(spec.task.labels or [])  # evaluate writes "(unparseable)" where the answer named no label
    by_id = {
        str(p["id"]): p.get("predicted") if p.get("predicted") in labels else None
        for p in read_json(Path(layout.PREDICTIONS))
    }
    ours = [by_id.get(str(r["id"])) for r in heldout]
    slow = latencies_ms(student, texts, samples)
    del student
    report: dict = {
        "files": {},
        "shipped": settings.quantize,
        "llama_cpp_python": server_version(),
        "context": GGUF_CONTEXT,
    }
    for kind, path in files.items():
        log(f"export: {path.name} served by llama.cpp answers {len(texts)} held-out rows")
        with LlamaCppServer(
            path,
            spec.name,
            n_ctx=GGUF_CONTEXT,
            threads=threads,
            startup_timeout_s=120,
            endpoint_id=f"export:{path.name}",
            timeout_hint="a larger GGUF needs longer to load: check the machine's memory",
        ) as server:
            exported = causal_classifier(
                spec, EndpointStudent(server.base_url, spec.name, None, max_new_tokens=spec.evaluation.max_new_tokens)
            )
            theirs = exported.predict(texts)
            figures = compared(heldout, ours, theirs, slow, latencies_ms(exported, texts, samples))
        figures.update(file=path.name, bytes=path.stat().st_size, unparseable=sum(p is None for p in theirs))
        report["files"][kind] = figures
    report.update(report["files"][settings.quantize])
    return report


def summary_lines(spec: Spec) -> list[str]:
    """Its line in `distill summary`: the file's format, agreement with the student, and speed."""
    exported = read_report(spec.dir / layout.EXPORT_REPORT)
    if not exported:
        return []
    speed = (
        f"latency p50 {exported['latency_p50_ms']} ms against {exported['student_latency_p50_ms']} ms "
        f"({exported['speedup_p50']}x)"
        if exported.get("latency_p50_ms") is not None
        else "latency not measured on this machine"
    )
    what = f"{exported['format']} ({exported['quantize']})"
    return [f"  export     {what}, agreement {exported['agreement']:.4f}; {speed}"]


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: each exported file against the unexported student."""
    out = []
    export = read_report(spec.dir / layout.EXPORT_REPORT)
    if export:
        files = export.get("files") or {export.get("quantize"): export}
        rows = [
            [
                kind,
                f.get("bytes"),
                f.get("agreement"),
                f.get("accuracy"),
                f.get("student_accuracy"),
                f.get("latency_p50_ms"),
                f.get("student_latency_p50_ms"),
            ]
            for kind, f in files.items()
        ]
        out.append(
            f"<h2>Export ({escape(str(export.get('format')))})</h2>"
            + table(
                rows, ["file", "bytes", "agreement", "accuracy", "unexported accuracy", "p50 ms", "unexported p50 ms"]
            )
        )
    return "".join(out)
