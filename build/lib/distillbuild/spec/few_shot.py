"""Checks on task.input_template and task.examples that need the data: a template that renders,
examples whose answers the task accepts, and no example that is a held-out input (the teacher
would be shown the answer to a question it is graded on, and retention would be inflated).

Files that cannot be read here are left to the path checks and the stages, which say why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from distillbuild.errors import StageError
from distillbuild.io import read_jsonl
from distillbuild.spec.inputs import load_examples, template_fields, with_texts
from distillbuild.spec.model import SpecModel, thaw
from distillbuild.text import normalize_text

Issues = Iterator[tuple[str, str]]  # (key path, message)


def few_shot_issues(spec: SpecModel, spec_dir: Path) -> Issues:
    template = spec.task.input_template
    if isinstance(template, str):
        try:
            template_fields(template)
        except ValueError as exc:
            yield "task.input_template", f"not a usable template: {exc}"
            return
    examples = thaw(spec.task.examples)  # as the stages' loaders read them: lists and dicts
    if isinstance(examples, list):
        yield from _answer_issues(spec, examples)
    if examples:
        yield from _heldout_overlap(spec, examples, template if isinstance(template, str) else None, spec_dir)
        reasoning = spec.teacher.reasoning
        if reasoning is not None and reasoning.mode in ("prompt", "explain"):
            yield from _rationale_issues(examples, template if isinstance(template, str) else None, spec_dir)


def _answer_issues(spec: SpecModel, examples: list[Any]) -> Issues:
    """Each inline example answers the way the teacher is asked to: a label, or a JSON object."""
    task_type, labels = spec.task.type, thaw(spec.task.labels)
    for i, example in enumerate(examples):
        if not isinstance(example, dict) or "answer" not in example:
            continue  # the schema says it is missing
        answer, where = example["answer"], f"task.examples[{i}].answer"
        if task_type == "classification" and isinstance(labels, list) and answer not in labels:
            yield where, f"{json.dumps(answer)} is not one of task.labels"
        elif task_type != "extraction" and isinstance(answer, dict):
            yield where, f"an object answers extraction tasks only, not {task_type}"


def _rationale_issues(examples: Any, template: str | None, spec_dir: Path) -> Issues:
    """A teacher asked to reason (or to explain) is shown examples that do: shown bare labels,
    SmolLM2-135M answered with bare labels and no answer line, so every row would be dropped."""
    try:
        pairs = load_examples(examples, template, spec_dir)
    except (StageError, OSError, ValueError, KeyError, TypeError):
        return  # unreadable here: the path checks and the stages report it
    missing = [i for i, example in enumerate(pairs) if not example.rationale]
    if not missing:
        return
    if isinstance(examples, list):
        for i in missing:
            yield (
                f"task.examples[{i}].rationale",
                "teacher.reasoning (prompt or explain mode) shows each example's reasoning: give it one",
            )
    else:
        yield (
            "task.examples",
            (
                f'example {", ".join(str(i + 1) for i in missing)} of {examples} lack a "rationale": '
                "teacher.reasoning (prompt or explain mode) shows each example's reasoning"
            ),
        )


def _heldout_overlap(spec: SpecModel, examples: Any, template: str | None, spec_dir: Path) -> Issues:
    heldout_file = spec.data_files.heldout
    if not isinstance(heldout_file, str):
        return
    try:
        path = spec_dir / heldout_file
        heldout = {
            normalize_text(r["text"]): r.get("id")
            for r in with_texts(read_jsonl(path), template, path)
            if isinstance(r.get("text"), str)
        }
        pairs = load_examples(examples, template, spec_dir)
    except (StageError, OSError, ValueError, KeyError, TypeError):
        return  # unreadable here: the path checks and the stages report it
    for i, example in enumerate(pairs):
        key = normalize_text(example.text)
        if key in heldout:
            row_id = heldout[key]
            where = f"task.examples[{i}]" if isinstance(examples, list) else "task.examples"
            shown = f"example {i + 1}" if isinstance(examples, str) else "this example"
            yield (
                where,
                (
                    f"{shown} is held-out input {row_id!r} ({heldout_file}): the teacher would see the "
                    "answer to a question it is graded on; take another example"
                ),
            )
