"""Production chat logs as a pipeline's inputs: `distill import-logs`.

Reads OpenAI-format logs as users export them: a gateway's JSON Lines of `{"messages": [...]}`
(LiteLLM, Helicone, a fine-tuning file), or OpenAI stored completions (`{"id", "request":
{"messages": [...]}, ...}` or `{"input": [...]}`). Each record's last user message becomes one
input `{"id", "text"}` after the spec's `data.scrub` rules (distillbuild/privacy/) have masked it; system
prompts and answers are not kept. Ids are hashes of the masked text: a log's own ids (which may
carry user names or addresses) never reach the repository. Exact repeats are kept once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from distillbuild.privacy.scrubber import Scrubber

BATCH = 512  # texts masked at a time: the NLP pipeline works in batches


def _messages(record: Any) -> list | None:
    if not isinstance(record, dict):
        return None
    for holder in (record, record.get("request"), record.get("body")):
        if isinstance(holder, dict):
            for key in ("messages", "input"):
                if isinstance(holder.get(key), list):
                    return holder[key]
    return None


def _last_user_text(messages: list) -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
            return content if isinstance(content, str) and content.strip() else None
    return None


def import_logs(paths: Iterable[Path], scrubber: Scrubber) -> tuple[list[dict], dict[str, Any]]:
    """(inputs, report): the masked last user message of every record, once each."""
    texts: list[str] = []
    skipped: Counter = Counter()
    records = 0
    for path in paths:
        with Path(path).open(encoding="utf-8", errors="replace") as fh:  # a stray byte spoils a row, not the run
            for line in fh:
                if not line.strip():
                    continue
                records += 1
                try:
                    messages = _messages(json.loads(line))
                except ValueError:
                    skipped["unreadable"] += 1
                    continue
                text = _last_user_text(messages) if messages is not None else None
                if text is None:
                    skipped["no_user_message" if messages is not None else "not_a_chat_record"] += 1
                    continue
                texts.append(text.strip())
    rows: list[dict] = []
    seen: set[str] = set()
    for i in range(0, len(texts), BATCH):
        for masked in scrubber.mask_many(texts[i : i + BATCH]):
            if masked in seen:
                skipped["repeated"] += 1
                continue
            seen.add(masked)
            rows.append({"id": "log-" + hashlib.sha256(masked.encode()).hexdigest()[:12], "text": masked})
    report = {"records": records, "inputs": len(rows), "skipped": dict(skipped), "scrub": scrubber.report()}
    return rows, report
