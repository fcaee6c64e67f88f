"""`configure`: the trainer's config from `student`.

encoder-classifier students get the local trainer's JSON config; causal-lm students get an
Axolotl YAML (`build/configure/axolotl.yaml`, see distillbuild.train.axolotl_config), the
DeepSpeed JSON it names when `student.distributed.strategy` is deepspeed, and
`axolotl_plan.json`: whether GPU or CPU settings were emitted and why, which `train` reads.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

from distillbuild import layout
from distillbuild.console import log
from distillbuild.io import fresh_tmp_dir, replace_dir, write_json, write_text
from distillbuild.pipeline.contract import Out
from distillbuild.pipeline.student_base import student_base
from distillbuild.spec import Spec
from distillbuild.spec.model import Student, Task, thaw
from distillbuild.train.axolotl_config import (
    PLAN,
    axolotl_sections,
    deepspeed_config,
    deepspeed_path,
    estimate_parameters,
    plan_device,
    render_json,
    render_yaml,
)

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

# Every student key but the preference step's (its own stage reads those): a new DPO beta
# must not rebuild the SFT config.
READS = (
    "name",
    "task.labels",
    "task.output_schema",
    *(f"student.{f.name}" for f in fields(Student) if f.name != "preference"),
    "teacher.temperature",
)
# What each local trainer's config holds (local_trainer_config); an Axolotl config reads all of
# `student` but its kind, and no task key (the dataset's rows carry the instruction).
_ENCODER = (
    "name",
    "task.labels",
    *(
        f"student.{k}"
        for k in (
            "trainer",
            "kind",
            "base_model",
            "max_length",
            "epochs",
            "batch_size",
            "learning_rate",
            "head_learning_rate",
            "kd",
            "seed",
            "class_weights",
            "early_stopping_patience",
            "finetune",
        )
    ),
)
_EXTRACTOR = (
    "name",
    "task.output_schema",
    *(
        f"student.{k}"
        for k in (
            "trainer",
            "kind",
            "base_model",
            "max_length",
            "epochs",
            "batch_size",
            "learning_rate",
            "head_learning_rate",
            "seed",
            "threads",
        )
    ),
)


def _reads(key: str):
    def condition(spec: Spec) -> bool:
        s = spec.student
        if s.trainer != "local":
            if key == "teacher.temperature":  # Axolotl's KD rescales the teacher's logprobs by it
                return s.kd.mode == "logits"
            return key == "name" or key.startswith("student.") and key != "student.kind"
        return key in (_EXTRACTOR if s.kind == "encoder-extractor" else _ENCODER)

    return condition


# Declared only when read, so that (say) a new LoRA rank does not rebuild an encoder's config.
READS_WHEN = {key: _reads(key) for key in READS if key != "student.trainer"}


def outs(spec: Spec) -> list[Out]:
    return [layout.CONFIG_DIR]


def extractor_trainer_config(name: str, task: Task, student: Student) -> dict:
    """encoder-extractor students (extraction): one head per field of task.output_schema."""
    return {
        "trainer": "local",
        "kind": student.kind,
        "name": name,
        "base_model": student.base_model,
        "output_schema": thaw(task.output_schema),
        "max_length": student.max_length,
        "epochs": student.epochs,
        "batch_size": student.batch_size,
        "learning_rate": student.learning_rate,
        "head_learning_rate": student.head_learning_rate,
        "seed": student.seed,
        "threads": student.threads,
    }


def local_trainer_config(spec: Spec) -> dict:
    s = spec.student
    if s.kind == "encoder-extractor":
        return extractor_trainer_config(spec.name, spec.task, s)
    return {
        "trainer": "local",
        "kind": s.kind,
        "name": spec.name,
        "base_model": s.base_model,
        "labels": list(spec.task.labels),
        "max_length": s.max_length,
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "learning_rate": s.learning_rate,
        "head_learning_rate": s.head_learning_rate,
        "kd_alpha": s.kd.alpha,
        "kd_temperature": s.kd.temperature,
        "seed": s.seed,
        "class_weights": s.class_weights,
        "patience": s.early_stopping_patience,
        "finetune": s.finetune,
    }


def base_model_parameters(base_model: str, root: Path) -> int | None:
    """Parameters of a local base model (a directory with config.json, relative to the spec's
    directory); None for a hub id or an unreadable config. Hub ids are not looked up: the
    decision must not depend on what a machine's cache holds."""
    directory = Path(base_model).expanduser()
    config = (directory if directory.is_absolute() else root / directory) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return estimate_parameters(data) if isinstance(data, dict) else None


def write_axolotl_config(spec: Spec, out_dir: Path) -> dict:
    """Write axolotl.yaml (+ DeepSpeed JSON) and the plan into `out_dir`; return the plan."""
    student = replace(spec.student, base_model=student_base(spec))  # a GGUF student: its converted directory
    plan = plan_device(student.device, base_model_parameters(student.base_model, spec.dir))
    sections = axolotl_sections(student, spec.teacher, plan["device"])
    text = render_yaml(spec.name, student, sections, plan, spec.path.name)
    write_text(out_dir / Path(layout.AXOLOTL_CONFIG).name, text)
    ds = deepspeed_config(student.distributed, plan["device"])
    if ds is not None:
        write_text(out_dir / Path(deepspeed_path(student.distributed.zero_stage)).name, render_json(ds))
    write_json(out_dir / Path(PLAN).name, plan)
    return plan


def run(spec: Spec) -> int:
    final = Path(layout.CONFIG_DIR)
    tmp = fresh_tmp_dir(final)
    if spec.student.trainer == "local":
        write_json(tmp / Path(layout.LOCAL_TRAINER_CONFIG).name, local_trainer_config(spec))
        written = layout.LOCAL_TRAINER_CONFIG
    else:
        plan = write_axolotl_config(spec, tmp)
        written = f"{layout.AXOLOTL_CONFIG} ({plan['device']} settings: {plan['reason']})"
    replace_dir(tmp, final)
    log(f"configure: wrote {written}")
    return 0
