"""The served student, whatever it is, answering one text: its label (or None when what it said
names no label), its probability of that label, its distribution over the labels, and its words.

An encoder classifier: the exported ONNX model when `export` built one (no PyTorch needed), else
the trained PyTorch model. A causal LM: the exported GGUF served by llama.cpp (a child process of
`distill serve`) when `export` built one, else student.endpoint when the spec has one, else the
trained adapter over its base through transformers. A causal student's label and confidence are
read off its answer's logprobs exactly as in evaluation (normalize_label, then the sequence walk).
"""

from __future__ import annotations

import copy
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from distillbuild import layout
from distillbuild.errors import StageError
from distillbuild.io import read_json
from distillbuild.protocol.softlabels import label_masses
from distillbuild.spec import Spec

SUB_BATCH = 8  # rows per onnxruntime call: measured best on CPU (bench/serve_load.py)


@dataclass(frozen=True)
class StudentAnswer:
    label: str | None  # None: the student's answer names no label
    confidence: float  # its probability of that label (0 when there is none)
    probabilities: dict[str, float]  # over the labels
    text: str  # what it said


class EncoderAnswerer:
    """An encoder classifier; thread-safe (onnxruntime and PyTorch both run concurrent calls)."""

    concurrent = True  # batches may run on several threads at once

    def __init__(self, model):
        self.model = model

    def answer(self, text: str) -> StudentAnswer:
        return self.answer_many([text])[0]

    def answer_many(self, texts: list[str]) -> list[StudentAnswer]:
        labels = self.model.labels
        out: list[StudentAnswer | None] = [None] * len(texts)
        for group in length_groups([len(t) for t in texts]):
            probs = self.model.predict_proba([texts[i] for i in group], batch_size=len(group))
            for i, row in zip(group, probs):
                best = int(row.argmax())
                out[i] = StudentAnswer(
                    labels[best], float(row[best]), {l: float(p) for l, p in zip(labels, row)}, labels[best]
                )
        return out  # type: ignore[return-value]


def length_groups(lengths: list[int], max_rows: int = SUB_BATCH, slack: float = 1.25) -> list[list[int]]:
    """Indices in groups of similar length that run as one batch. A batch is padded to its longest
    row, and on a CPU a pad token costs as much as a real one: a group grows while its padded
    size stays within `slack` of its real size (a lone row is never padded), up to `max_rows`."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = max(lengths[i], 1)
        if current and (len(current) == max_rows or n * (len(current) + 1) > slack * (total + n)):
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        groups.append(current)
    return groups


class CausalAnswerer:
    """A causal student. One behind an endpoint (llama.cpp, vLLM) is asked from several threads
    at once, each with its own classifier; one loaded in this process answers one batch at a time."""

    def __init__(self, classifier, concurrent: bool):
        self.classifier = classifier  # evaluate.causal_student.CausalClassifier
        self.concurrent = concurrent
        self._lock = threading.Lock()

    def answer(self, text: str) -> StudentAnswer:
        return self.answer_many([text])[0]

    def answer_many(self, texts: list[str]) -> list[StudentAnswer]:
        if self.concurrent:  # a copy per call: predict() sets its last_* lists anew on the copy
            return self._read(copy.copy(self.classifier), texts)
        with self._lock:
            return self._read(self.classifier, texts)

    @staticmethod
    def _read(classifier, texts: list[str]) -> list[StudentAnswer]:
        labels = classifier.predict(texts)
        out = []
        for label, said, confidence, logprobs in zip(
            labels, classifier.last_answers, classifier.last_confidence, classifier.last_logprobs
        ):
            masses = label_masses(logprobs, classifier.task.labels)[0] if label else {}
            if label and label not in masses:
                masses[label] = confidence or 0.0
            out.append(StudentAnswer(label, float(confidence or 0.0) if label else 0.0, masses, said))
        return out


def open_student(spec: Spec, stack: ExitStack) -> tuple[EncoderAnswerer | CausalAnswerer, str]:
    """The student to serve and its runtime's name; anything it starts is closed with `stack`."""
    if spec.student.kind == "causal-lm":
        return _causal(spec, stack)
    exported = spec.dir / layout.EXPORT_DIR
    if (exported / "model.onnx").is_file():
        from distillbuild.export.onnx_classifier import OnnxClassifier

        return EncoderAnswerer(OnnxClassifier.load(exported, threads=spec.evaluation.threads)), "onnx"
    _require_model(spec)
    from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

    return EncoderAnswerer(
        EncoderClassifier.load(spec.dir / layout.MODEL_DIR, threads=spec.evaluation.threads)
    ), "pytorch"


def _require_model(spec: Spec) -> None:
    if not (spec.dir / layout.MODEL_DIR).is_dir():
        raise StageError(f"no student to serve in {spec.dir / layout.MODEL_DIR}: run `dvc repro` first")


def exported_gguf(spec: Spec) -> Path | None:
    """The shipped GGUF file the export stage wrote, if it did."""
    report = spec.dir / layout.EXPORT_REPORT
    if spec.export is None or spec.export.format != "gguf" or not report.is_file():
        return None
    path = spec.dir / layout.EXPORT_DIR / str(read_json(report).get("file", ""))
    return path if path.is_file() else None


def _causal(spec: Spec, stack: ExitStack) -> tuple[CausalAnswerer, str]:
    from distillbuild.evaluate.causal_student import EndpointStudent
    from distillbuild.pipeline.stages.evaluate import (  # lazy: the evaluation stack
        causal_classifier,
        load_final_student,
    )

    if spec.task.type != "classification":
        raise StageError(
            f"distill serve answers classification tasks; a causal student of a {spec.task.type} task "
            "is served by llama.cpp or vLLM directly (README: Deploying what was built)"
        )
    gguf = exported_gguf(spec)
    if gguf is not None:
        from distillbuild.endpoints.llamacpp import LlamaCppServer
        from distillbuild.pipeline.stages.export import GGUF_CONTEXT

        server = stack.enter_context(
            LlamaCppServer(
                gguf,
                spec.registry_name,
                n_ctx=GGUF_CONTEXT,
                threads=spec.evaluation.threads,
                startup_timeout_s=120,
                endpoint_id=f"serve:{gguf.name}",
                timeout_hint="check the machine's memory and the file",
            )
        )
        student = EndpointStudent(
            server.base_url, spec.registry_name, None, max_new_tokens=spec.evaluation.max_new_tokens
        )
        return CausalAnswerer(causal_classifier(spec, student), concurrent=True), f"llama.cpp ({gguf.name})"
    if spec.student.endpoint is None:
        _require_model(spec)

    student = load_final_student(spec, spec.evaluation.threads, spec.dir)
    runtime = "endpoint" if spec.student.endpoint is not None else "transformers"
    return CausalAnswerer(causal_classifier(spec, student), concurrent=runtime == "endpoint"), runtime
