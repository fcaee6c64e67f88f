"""Input rows as the pipeline reads them, and the task's few-shot examples.

A row is `{"id", "text"}` (held-out rows add the gold `label`). An input row may carry a gold
`label` too: it is never shown to the teacher nor trained on; the filter's report measures the
teacher's labels against it, before and after filtering. With `task.input_template`, a
row may instead carry several fields (`{"id", "subject", "body"}`): the template, a Python
format string over them, renders its `text`, once, where the rows are read, so every stage
(teacher, filter, evaluate) sees the same text.

Few-shot examples (`task.examples`) are given inline as `{input, answer}` pairs or as a file
in the held-out format; either way they become (input text, answer text) pairs.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from distillbuild.errors import StageError
from distillbuild.io import read_jsonl


@dataclass(frozen=True)
class Example:
    text: str  # the input, as the teacher sees it
    answer: str  # the assistant turn that follows it
    rationale: str = ""  # with teacher.reasoning in prompt or explain mode: the reasoning the teacher is shown


def template_fields(template: str) -> list[str]:
    """The field names a template uses; ValueError for a malformed one or a positional field."""
    fields = []
    for _literal, name, _spec, _conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError("fields must be named, like {subject}")
        fields.append(name.split(".")[0].split("[")[0])
    return fields


def render(row: Mapping[str, Any], template: str | None, where: str) -> str:
    """The row's input text: its `text`, or the template filled with its fields."""
    if template is None:
        text = row.get("text")
        if not isinstance(text, str):
            raise StageError(f"{where} needs a string 'text' (or set task.input_template to build it from fields)")
        return text
    missing = [f for f in template_fields(template) if f not in row]
    if missing:
        raise StageError(f"{where} lacks {', '.join(repr(m) for m in missing)}, which task.input_template uses")
    return template.format(**{k: "" if v is None else v for k, v in row.items()})


def with_texts(rows: list[dict[str, Any]], template: str | None, path: Path) -> list[dict[str, Any]]:
    """`rows` with their `text` rendered by `template` (unchanged without one)."""
    if template is None:
        return rows
    return [{**row, "text": render(row, template, f"{path}: row {n}")} for n, row in enumerate(rows, 1)]


def read_rows(path: Path, template: str | None, need_label: bool) -> list[dict[str, Any]]:
    """Rows of an inputs or held-out file with their `text` rendered: ids present and unique,
    a gold `label` on each held-out row, at least one row."""
    rows = read_jsonl(path)
    seen: set[str] = set()
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get("id"), (str, int)) or (template is None and not isinstance(row.get("text"), str)):
            raise StageError(f"{path}: row {n} needs an 'id' and a string 'text'")
        text = render(row, template, f"{path}: row {n}")
        if need_label and row.get("label") is None:
            raise StageError(f"{path}: row {n} needs a 'label' (the gold answer)")
        if str(row["id"]) in seen:
            raise StageError(f"{path}: id {row['id']!r} appears twice")
        seen.add(str(row["id"]))
        out.append(row if template is None else {**row, "text": text})
    if not rows:
        raise StageError(f"{path}: no rows")
    return out


def _answer_text(answer: Any) -> str:
    return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def load_examples(
    examples: Sequence[Mapping[str, Any]] | str | None, template: str | None, base_dir: Path
) -> tuple[Example, ...]:
    """The few-shot pairs of task.examples: inline `{input, answer}` items, or a file of
    held-out-format rows (`text` or the template's fields, and `label`) relative to `base_dir`;
    either may carry a `rationale`."""
    if not examples:
        return ()
    if isinstance(examples, str):
        path = base_dir / examples
        return tuple(
            Example(
                render(r, template, f"{path}: row {n}"),
                _answer_text(r.get("label")),
                str(r.get("rationale") or "").strip(),
            )
            for n, r in enumerate(read_jsonl(path), 1)
        )
    return tuple(
        Example(str(e["input"]), _answer_text(e["answer"]), str(e.get("rationale") or "").strip()) for e in examples
    )
