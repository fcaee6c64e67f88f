"""`dataset`: split kept rows into train and validation, in chat format.

The split hashes each row's id with split.seed, so it is deterministic and stable when rows
are added: a row never moves between train and validation because others arrived.
Rows are what Axolotl's `chat_template` type reads (`messages`), plus the label and the
teacher's soft labels for the local trainer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.errors import StageError
from distillbuild.io import fresh_tmp_dir, read_jsonl, replace_dir, write_json, write_jsonl
from distillbuild.spec import Spec
from distillbuild.stages import log
from distillbuild.teacher.prompts import messages_for


def in_validation(row_id: Any, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def chat_row(task: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    messages = messages_for(task, row["text"]) + [{"role": "assistant", "content": row["label"]}]
    return {"id": row["id"], "messages": messages, "label": row["label"], "label_probs": row.get("label_probs")}


def run(spec: Spec) -> int:
    task, split = spec["task"], spec["split"]
    rows = read_jsonl(Path(layout.FILTER_KEPT))
    if not rows:
        raise StageError("no rows survived the filter stage; loosen `filters` or check the teacher's answers")
    train, val = [], []
    for row in rows:
        (val if in_validation(row["id"], split["seed"], split["val_fraction"]) else train).append(chat_row(task, row))
    final = Path(layout.DATASET_DIR)
    tmp = fresh_tmp_dir(final)
    write_jsonl(tmp / Path(layout.DATASET_TRAIN).name, train)
    write_jsonl(tmp / Path(layout.DATASET_VAL).name, val)
    write_json(tmp / Path(layout.DATASET_REPORT).name, {"train": len(train), "val": len(val), "format": "chat_template (messages)"})
    replace_dir(tmp, final)
    log(f"dataset: {len(train)} train, {len(val)} validation rows")
    return 0
