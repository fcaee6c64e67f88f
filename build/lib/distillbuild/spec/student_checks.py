"""Semantic checks of what the student is and learns: which students can learn each task type,
the Axolotl trainer's settings, DPO, reasoning students, export, human rows."""

from __future__ import annotations

from typing import Iterator

from distillbuild.spec.model import QUANTIZE_BY_FORMAT, Distributed, SpecModel, thaw
from distillbuild.spec.output_schema import UnsupportedSchema, schema_fields
from distillbuild.spec.teacher_checks import teacher_reasoning_issues
from distillbuild.spec.written import is_written, schema_default

Issues = Iterator[tuple[str, str]]  # (key path, message)

CAUSAL_MIN_LENGTH = 128

# Optimizers whose 8-bit state breaks under FSDP2 (Axolotl refuses adamw_bnb_8bit there).
_BNB_8BIT = ("adamw_bnb_8bit", "paged_adamw_8bit")


def task_and_student_issues(spec: SpecModel) -> Issues:
    """What each task type needs, and which students (kind, trainer) can learn it."""
    task, student = spec.task, spec.student
    if task.type == "classification" and task.labels is None:
        yield "task", "classification needs task.labels"
    if task.type == "extraction" and task.output_schema is None:
        yield "task", "extraction needs task.output_schema"
    if task.type != "classification" and task.labels is not None:
        yield "task.labels", f"labels apply to classification only, not {task.type}"

    kind, trainer = student.kind, student.trainer
    if kind == "encoder-classifier" and task.type not in (None, "classification"):
        yield "student.kind", f"an encoder-classifier student needs task.type classification, not {task.type}"
    if kind == "encoder-extractor":
        yield from _extractor_issues(spec)
    if kind == "causal-lm" and trainer == "local":
        yield (
            "student.trainer",
            "the local trainer trains encoder-classifier students; causal-lm needs trainer: axolotl",
        )
    if kind == "causal-lm" and task.type == "extraction":
        yield (
            "student.kind",
            (
                "extraction is evaluated for encoder-extractor students; a causal-LM extraction "
                "student is not supported yet (use kind: encoder-extractor, trainer: local)"
            ),
        )
    if task.type == "generation" and spec.evaluation.judge is None:
        yield "evaluation", "generation answers are scored by an LLM judge (G-Eval): add an evaluation.judge section"
    max_length = student.max_length
    if kind == "causal-lm" and isinstance(max_length, int) and max_length < CAUSAL_MIN_LENGTH:
        # The schema's default (64) suits an encoder reading one text; Axolotl silently drops longer rows.
        yield (
            "student.max_length",
            (
                f"a causal-LM student's max_length covers the whole conversation (instruction, "
                f"input and answer): {max_length} tokens would drop most rows; set it to at least "
                f"{CAUSAL_MIN_LENGTH} (typically 512-2048)"
            ),
        )


def _extractor_issues(spec: SpecModel) -> Issues:
    """An encoder-extractor student: an extraction task, the local trainer, a schema it can answer."""
    task_type = spec.task.type
    if task_type not in (None, "extraction"):
        yield "student.kind", f"an encoder-extractor student needs task.type extraction, not {task_type}"
    if spec.student.trainer not in (None, "local"):
        yield "student.trainer", "encoder-extractor students train with trainer: local"
    schema = thaw(spec.task.output_schema)
    if task_type == "extraction" and isinstance(schema, dict):
        try:
            schema_fields(schema)
        except UnsupportedSchema as exc:
            yield "task.output_schema", f"{exc} (student.kind: encoder-extractor)"


def human_issues(spec: SpecModel) -> Issues:
    data, task_type = spec.data_files, spec.task.type
    if data.heldout_sets and task_type not in (None, "classification"):
        yield "data.heldout_sets", "more held-out sets are evaluated for classification only, for now"
    if data.human is not None and task_type not in (None, "classification"):
        yield "data.human", "human rows are classification labels for now: the task is " + str(task_type)
    if data.human is not None and spec.student.kd.mode == "logits":
        yield "data.human", "logit distillation trains on the teacher's own tokens, which a person's label has not"
    if data.train_on not in (None, "both") and data.human is None:
        yield "data.train_on", "chooses between the teacher's rows and human rows, but there is no data.human file"
    if data.train_on == "teacher" and data.human_share is not None:
        yield "data.human_share", "a share of human rows, but data.train_on: teacher trains on none"
    if data.human_share is not None and data.human is None:
        yield "data.human_share", "a share of human rows, but no data.human file of them"


def preference_issues(spec: SpecModel) -> Issues:
    """student.preference: DPO by Axolotl on a causal LM's classification answers."""
    student = spec.student
    preference = student.preference
    if preference is None:
        return
    if student.kind != "causal-lm" or student.trainer != "axolotl":
        yield (
            "student.preference",
            "DPO trains a causal-LM student with Axolotl (student.kind: causal-lm, trainer: axolotl)",
        )
    elif spec.task.type != "classification":
        yield "student.preference", "preference pairs are built for classification tasks for now"
    elif student.kd.mode == "logits":
        yield "student.preference", "DPO after logit distillation is not supported: use kd.mode labels"
    if preference.judge is not None and spec.filters.judge is None:
        yield "student.preference.judge", "pairs are scored by filters.judge: set it (its endpoint and criteria)"


def reasoning_issues(spec: SpecModel) -> Issues:
    """student.reasoning trains on the teacher's rationales: a causal LM, a teacher that gives
    them, a label to extract (classification, for now)."""
    yield from teacher_reasoning_issues(spec)
    student = spec.student
    mode = student.reasoning
    if mode in (None, "answer"):
        return
    if student.kind != "causal-lm":
        yield "student.reasoning", f"{mode} trains a causal LM to write; student.kind is {student.kind}"
    elif spec.teacher.reasoning is None:
        yield (
            "student.reasoning",
            f"{mode} trains on the teacher's rationales: set teacher.reasoning (mode: prompt, field or explain)",
        )
    elif spec.task.type != "classification":
        yield "student.reasoning", "reasoning students are evaluated on classification tasks for now"
    elif student.kd.mode == "logits":
        yield "student.reasoning", "logit distillation trains on the teacher's answer tokens, not on a rationale"
    elif spec.data_files.human is not None:
        yield "data.human", f"people's labels carry no rationale for a {mode} student to learn (and win dedup)"
    elif mode == "step_by_step" and spec.export is not None:
        yield (
            "export",
            (
                "a step_by_step student is asked with a `[label] ` prefix the exported file's chat template "
                "does not add: serve it with `distill serve`, or train it with reasoning: answer or trace"
            ),
        )


def export_issues(spec: SpecModel) -> Issues:
    task_type = spec.task.type
    if spec.route is not None and task_type not in (None, "classification"):
        yield "route", f"routing reads the student's confidence in a label: classification only, not {task_type}"
    if spec.export is None:
        return
    kind, fmt, quantize = spec.student.kind, spec.export.format, spec.export.quantize
    if fmt == "onnx" and kind not in (None, "encoder-classifier"):
        yield (
            "export.format",
            (f"onnx export is built for encoder-classifier students; a {kind} student exports as gguf"),
        )
    if fmt == "gguf" and kind not in (None, "causal-lm"):
        yield "export.format", f"gguf export is built for causal-lm students; a {kind} student exports as onnx"
    if fmt == "gguf" and task_type not in (None, "classification"):
        yield (
            "export.format",
            (
                f"gguf export checks the exported model's labels against the student's: classification "
                f"only for now, not {task_type} (the adapter in build/model serves with vLLM)"
            ),
        )
    if fmt in QUANTIZE_BY_FORMAT and quantize is not None and quantize not in QUANTIZE_BY_FORMAT[fmt]:
        yield (
            "export.quantize",
            (f"{quantize!r} is not a {fmt} type; {fmt} quantizes to {', '.join(QUANTIZE_BY_FORMAT[fmt])}"),
        )


def axolotl_issues(spec: SpecModel) -> list[tuple[str, str]]:
    """(key path, message) for student settings of the Axolotl trainer that cannot work together.
    Reads the spec as written (before defaults), so a key is refused only where the user set it."""
    student = spec.student
    if student.trainer != "axolotl":
        axolotl_only = {
            "adapter": student.adapter is not None,
            "device": student.device is not None,
            "gpu": is_written(student.gpu),
            "distributed": is_written(student.distributed),
            "axolotl": student.axolotl is not None,
        }
        return [
            (f"student.{key}", f"applies to trainer: axolotl (causal-lm students), not trainer: {student.trainer}")
            for key, written in axolotl_only.items()
            if written
        ]
    return [*_distributed_issues(spec), *_adapter_issues(spec)]


def _distributed_issues(spec: SpecModel) -> Issues:
    student, dist = spec.student, spec.student.distributed
    strategy = dist.strategy if dist.strategy is not None else schema_default(Distributed, "strategy")
    launcher = dist.launcher if dist.launcher is not None else schema_default(Distributed, "launcher")
    stage = dist.zero_stage if dist.zero_stage is not None else schema_default(Distributed, "zero_stage")
    if dist.zero_stage is not None and strategy != "deepspeed":
        yield (
            "student.distributed.zero_stage",
            f"a DeepSpeed setting, but strategy is {strategy}: set strategy: deepspeed or drop zero_stage",
        )
    if dist.offload is True:
        if strategy == "none":
            yield "student.distributed.offload", "CPU offload needs strategy: deepspeed (ZeRO-2 or 3) or fsdp"
        elif strategy == "deepspeed" and stage == 1:
            yield "student.distributed.offload", "DeepSpeed offloads from ZeRO-2 on: set zero_stage: 2 or 3"
    if dist.workers is not None and launcher != "ray":
        yield (
            "student.distributed.workers",
            "workers counts Ray workers: set launcher: ray (accelerate uses every GPU of the machine)",
        )
    if student.device == "cpu" and (strategy != "none" or launcher != "accelerate"):
        yield (
            "student.device",
            f"device: cpu trains in one process; distributed training "
            f"(strategy {strategy}, launcher {launcher}) needs GPUs",
        )
    if strategy == "fsdp" and student.gpu.optimizer in _BNB_8BIT:
        yield (
            "student.gpu.optimizer",
            f"FSDP2 cannot shard {student.gpu.optimizer}'s 8-bit state (Axolotl refuses "
            "it): use adamw_torch_fused, adamw_torch_8bit or optimizer: auto",
        )


def _adapter_issues(spec: SpecModel) -> Issues:
    if spec.student.adapter == "full" and is_written(spec.student.lora):
        yield (
            "student.lora",
            "LoRA settings, but adapter is full (every weight trains): drop student.lora or set adapter: lora or qlora",
        )
