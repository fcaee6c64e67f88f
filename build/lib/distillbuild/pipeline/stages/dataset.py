"""`dataset`: split kept rows into train and validation, in chat format.

The split hashes each row's id with split.seed, so it is deterministic and stable when rows
are added: a row never moves between train and validation because others arrived.
Rows are what Axolotl's `chat_template` type reads (`messages`), plus the label and the
teacher's soft labels for the local trainer; for logit distillation, Axolotl's KD rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.curate.shortfall import shortfall
from distillbuild.errors import StageError
from distillbuild.io import fresh_tmp_dir, read_json, read_jsonl, replace_dir, write_json, write_jsonl
from distillbuild.pipeline.contract import Out
from distillbuild.pipeline.student_base import student_base
from distillbuild.protocol.prompts import STEP_PREFIXES, messages_for
from distillbuild.spec import Spec
from distillbuild.spec.model import Task

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

# The prompt lists the labels; KD rows need the student's tokenizer.
READS = (
    "task.type",
    "task.instruction",
    "task.labels",
    "split",
    "data.human_share",
    "data.train_on",
    "student.kd.mode",
    "student.base_model",
    "student.reasoning",
    "teacher.reasoning",
    "filters.min_rows_per_label",
)
READS_WHEN = {
    "student.reasoning": lambda spec: spec.student.reasoning != "answer",
    "teacher.reasoning": lambda spec: spec.student.reasoning == "trace",
    "data.human_share": lambda spec: spec.data_files.human_share is not None,
    "data.train_on": lambda spec: "train_on" in (spec.raw.get("data") or {}),  # as written: DVC reads the file
    "student.base_model": lambda spec: spec.student.kd.mode == "logits",
}  # its tokenizer checks each KD row


def deps(spec: Spec) -> list[str]:
    if guards_rows_per_label(spec):  # what was dropped, and why: the advice when a label has too few rows
        return [layout.FILTER_KEPT, layout.FILTER_REJECTED, layout.FILTER_REPORT]
    return [layout.FILTER_KEPT]


def guards_rows_per_label(spec: Spec) -> bool:
    return spec.task.type == "classification" and spec.filters.min_rows_per_label > 0


def check_rows_per_label(spec: Spec, rows: list[dict[str, Any]]) -> None:
    """StageError (exit 3) when a label keeps fewer than filters.min_rows_per_label rows."""
    if not guards_rows_per_label(spec):
        return
    report = read_json(Path(layout.FILTER_REPORT))
    threshold = (report.get("confidence") or {}).get("min_confidence")
    message = shortfall(
        rows,
        read_jsonl(Path(layout.FILTER_REJECTED)),
        spec.task.labels,
        spec.filters.min_rows_per_label,
        threshold if threshold is not None else 0.0,
        spec.filters.confidence,
    )
    if message:
        raise StageError(message)


def outs(spec: Spec) -> list[Out]:
    return [layout.DATASET_DIR]


def in_validation(row_id: Any, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def chat_row(task: Task, row: dict[str, Any]) -> dict[str, Any]:
    """A chat row: the task's prompt, the text, and the label as the assistant's answer."""
    messages = messages_for(task, row["text"]) + [{"role": "assistant", "content": row["label"]}]
    out = {"id": row["id"], "messages": messages, "label": row["label"], "label_probs": row.get("label_probs")}
    if row.get("source") == "human":  # a person's label: no soft labels
        out["source"] = "human"
    return out


def reasoning_rows(task: Task, row: dict[str, Any], mode: str, marker: str) -> list[dict[str, Any]]:
    """A kept row as a reasoning student's chat rows: trace, the rationale then the answer line;
    step_by_step, the label task and the rationale task (both in the row's split). None for a
    row without a rationale (a person's label): the caller counts it."""
    rationale = (row.get("rationale") or "").strip()
    if not rationale:
        return []
    base = chat_row(task, row)
    if mode == "trace":
        base["messages"][-1]["content"] = f"{rationale}\n{marker} {row['label']}"
        return [base]
    label_task = {
        **base,
        "id": f"{row['id']}#label",
        "messages": messages_for(task, STEP_PREFIXES["label"] + row["text"])
        + [{"role": "assistant", "content": row["label"]}],
    }
    rationale_task = {
        "id": f"{row['id']}#rationale",
        "label": row["label"],
        "label_probs": None,
        "task": "rationale",
        "messages": messages_for(task, STEP_PREFIXES["rationale"] + row["text"])
        + [{"role": "assistant", "content": rationale}],
    }
    return [label_task, rationale_task]


def oversample_human(train: list[dict[str, Any]], share: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The training split with its human rows repeated, round robin, until they are `share` of it
    (never fewer rows than before; copies get an id suffix #2, #3, ...)."""
    human = [r for r in train if r.get("source") == "human"]
    others = len(train) - len(human)
    wanted = int(round(share * others / (1 - share)))
    copies = (
        [
            {**human[i % len(human)], "id": f"{human[i % len(human)]['id']}#{i // len(human) + 2}"}
            for i in range(max(wanted - len(human), 0))
        ]
        if human
        else []
    )
    out = train + copies
    return out, {
        "human_rows": len(human),
        "human_copies_added": len(copies),
        "human_share": round((len(human) + len(copies)) / len(out), 6) if out else None,
    }


# A position the teacher never generated (what a chat template writes after the end-of-turn
# token, such as ChatML's newline): certain of its own token. JSON has no -inf.
_NEVER = -100.0


def kd_row(task: Task, row: dict[str, Any], trailing: list[int] = ()) -> dict[str, Any]:
    """Axolotl's KD format: the teacher's own answer text, with its top-k token ids and logprobs
    at every generated position (the end-of-turn token included), aligned to the sequence's end;
    `trailing` are the template's tokens after the end of turn, padded as certain."""
    messages = messages_for(task, row["text"]) + [{"role": "assistant", "content": row["teacher_text"]}]
    kd = row["kd"]
    ids, logprobs = [list(p) for p in kd["target_token_ids"]], [list(p) for p in kd["logprobs"]]
    k = len(ids[0]) if ids else 1
    for token in trailing:
        ids.append([token] + [t for t in range(k) if t != token][: k - 1])  # fillers: ids every vocabulary has
        logprobs.append([0.0] + [_NEVER] * (k - 1))
    return {"id": row["id"], "messages": messages, "label": row["label"], "logprobs": logprobs, "target_token_ids": ids}


def _trailing_tokens(tokenizer, messages: list[dict[str, str]], generated: list[int]) -> list[int] | None:
    """The tokens the chat template puts after the teacher's generated ones (end of turn included),
    or None when the generated tokens are not where the conversation ends."""
    if not getattr(tokenizer, "chat_template", None):
        return []
    ids = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    n = len(generated)
    for extra in range(0, 4):
        end = len(ids) - extra
        if end >= n and ids[end - n : end] == generated:
            return ids[end:]
    return None


def _student_tokenizer(spec: Spec):
    """The student's tokenizer: a local directory, or a hub id (downloaded, or from the local
    Hugging Face cache). Without it no KD row can be checked, so the stage stops (exit 3)."""
    name = student_base(spec)
    base = spec.resolve(name)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(base) if base.is_dir() else name)
    except (OSError, ValueError) as exc:
        raise StageError(
            f"logit distillation checks every KD row with the student's tokenizer, and '{name}' "
            f"could not be loaded ({exc}); on an offline machine, point student.base_model at a "
            f"local copy"
        ) from None


def kd_rows(spec: Spec, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows fit for logit distillation, and how many were dropped and why. Every kept row is
    checked token by token: the student's tokenizer must spell the teacher's text with exactly
    the teacher's token ids, or the per-position targets would teach the wrong tokens."""
    tokenizer = _student_tokenizer(spec)
    task = spec.task
    kept, dropped = [], {"kd_missing": 0, "kd_misaligned": 0}
    for row in rows:
        if not row.get("kd") or row.get("teacher_text") is None:
            dropped["kd_missing"] += 1
            continue
        ids = list(tokenizer.encode(row["teacher_text"], add_special_tokens=False))
        if tokenizer.eos_token_id is not None:
            ids.append(int(tokenizer.eos_token_id))
        messages = messages_for(task, row["text"]) + [{"role": "assistant", "content": row["teacher_text"]}]
        trailing = (
            _trailing_tokens(tokenizer, messages, row["kd"]["token_ids"]) if ids == row["kd"]["token_ids"] else None
        )
        if trailing is None:
            dropped["kd_misaligned"] += 1
            continue
        kept.append(kd_row(task, row, trailing))
    return kept, dropped


def run(spec: Spec) -> int:
    task, split = spec.task, spec.split
    rows = read_jsonl(Path(layout.FILTER_KEPT))
    train_on = spec.data_files.train_on
    if train_on != "both":  # one source alone, for a synthetic / human / mixed comparison
        rows = [r for r in rows if (r.get("source") == "human") == (train_on == "human")]
    if not rows:
        raise StageError(
            "no rows survived the filter stage; loosen `filters` or check the teacher's answers"
            + (f" (data.train_on: {train_on})" if train_on != "both" else "")
        )
    check_rows_per_label(spec, rows)
    report: dict[str, Any] = {"format": "chat_template (messages)"}
    if spec.student.kd.mode == "logits":
        rows, dropped = kd_rows(spec, rows)
        report.update(format="axolotl KD (messages, logprobs, target_token_ids)", **dropped)
        if not rows:
            raise StageError(
                f"no row carries the teacher's token ids for logit distillation ({dropped}); "
                f"check teacher.token_ids and that the teacher serves the student's tokenizer"
            )
        make = lambda row: [row]  # noqa: E731  (already in KD format)
    elif spec.student.reasoning != "answer":
        marker = spec.teacher.reasoning.marker if spec.teacher.reasoning else "Answer:"
        make = lambda row: reasoning_rows(task, row, spec.student.reasoning, marker)  # noqa: E731
        report.update(
            format=f"chat_template (messages), reasoning {spec.student.reasoning}",
            no_rationale=sum(not (r.get("rationale") or "").strip() for r in rows),
        )
    else:
        make = lambda row: [chat_row(task, row)]  # noqa: E731
    train, val = [], []
    for row in rows:  # the split by the kept row's id: a row's step-by-step tasks stay together
        (val if in_validation(row["id"], split.seed, split.val_fraction) else train).extend(make(row))
    if not train and spec.student.reasoning != "answer":
        raise StageError("no training rows: every kept row lacks what student.reasoning trains on (a rationale)")
    if spec.data_files.human_share is not None:  # copies after the split: a row never sits in both
        train, mix = oversample_human(train, spec.data_files.human_share)
        report["human"] = mix
    final = Path(layout.DATASET_DIR)
    tmp = fresh_tmp_dir(final)
    write_jsonl(tmp / Path(layout.DATASET_TRAIN).name, train)
    write_jsonl(tmp / Path(layout.DATASET_VAL).name, val)
    write_json(tmp / Path(layout.DATASET_REPORT).name, {"train": len(train), "val": len(val), **report})
    replace_dir(tmp, final)
    log(f"dataset: {len(train)} train, {len(val)} validation rows ({report['format']})")
    return 0
