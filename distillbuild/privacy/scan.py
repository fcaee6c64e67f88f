"""Files: `distill scan FILE...` reports what personal or secret data they hold, by kind, with
line numbers and never a value; `distill scrub FILE...` masks it. JSON Lines files are read
field by field (every string in a record, nested ones too, an `id` and a `label` aside); other
text files line by line; binary files are passed over."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from distillbuild.privacy.scrubber import Scrubber

BATCH = 512  # texts analysed at a time


@dataclass
class FileFindings:
    path: Path
    lines: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # tag -> line numbers
    counts: Counter = field(default_factory=Counter)
    skipped: str | None = None  # why the file was not read

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "found": {
                tag: {"count": self.counts[tag], "lines": sorted(set(lines))} for tag, lines in self.lines.items()
            },
            **({"skipped": self.skipped} if self.skipped else {}),
        }


KEEP = ("id", "label")  # a record's own id and its gold label: never personal


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in KEEP:
                yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _replaced(value: Any, masked: Iterator[str]) -> Any:
    """`value` with its strings (in _strings' order) taken from `masked`."""
    if isinstance(value, str):
        return next(masked)
    if isinstance(value, dict):
        return {k: v if k in KEEP else _replaced(v, masked) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, masked) for v in value]
    return value


def _texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a file: each string of a JSON Lines record, or each line."""
    as_json = path.suffix in (".jsonl", ".ndjson")
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if as_json:
                try:
                    for text in _strings(json.loads(line)):
                        yield n, text
                    continue
                except ValueError:
                    pass  # not JSON after all: the line as text
            yield n, line.rstrip("\n")


def scan_file(path: Path, scrubber: Scrubber) -> FileFindings:
    found = FileFindings(path)
    try:
        pending: list[tuple[int, str]] = []
        for item in _texts(path):
            pending.append(item)
            if len(pending) >= BATCH:
                _analyse(pending, scrubber, found)
                pending = []
        _analyse(pending, scrubber, found)
    except UnicodeDecodeError:
        found.skipped = "not UTF-8 text"
    return found


def _analyse(items: list[tuple[int, str]], scrubber: Scrubber, found: FileFindings) -> None:
    if not items:
        return
    for (line, _), findings in zip(items, scrubber.find_many([text for _, text in items])):
        for f in findings:
            found.counts[f.tag] += 1
            found.lines[f.tag].append(line)


def scan_text(results: list[FileFindings], max_lines: int = 10) -> str:
    out = []
    for r in results:
        if r.skipped:
            out.append(f"{r.path}: skipped ({r.skipped})")
            continue
        if not r.counts:
            continue
        out.append(f"{r.path}: {sum(r.counts.values())} found")
        for tag in sorted(r.counts, key=lambda t: -r.counts[t]):
            lines = sorted(set(r.lines[tag]))
            more = f" and {len(lines) - max_lines} more" if len(lines) > max_lines else ""
            out.append(f"  {tag:<12} {r.counts[tag]:>5}  line {', '.join(map(str, lines[:max_lines]))}{more}")
    total = Counter()
    for r in results:
        total.update(r.counts)
    holding = sum(1 for r in results if r.counts)
    kinds = ", ".join(f"{tag.lower()} {n}" for tag, n in total.most_common()) or "none"
    out.append(f"scan: {sum(total.values())} found in {holding} of {len(results)} file(s) ({kinds})")
    return "\n".join(out)


def scrub_file(path: Path, scrubber: Scrubber) -> str:
    """The file's text with every value masked: JSON Lines record by record (keys, ids, labels
    and layout kept), other files line by line."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records: list[Any] = []
    texts: list[str] = []
    for line in lines:
        record = None
        if path.suffix in (".jsonl", ".ndjson") and line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
        strings = list(_strings(record)) if record is not None else ([line.rstrip("\n")] if line.strip() else [])
        records.append((record, len(texts), len(strings)))
        texts += strings
    masked = [m for i in range(0, len(texts), BATCH) for m in scrubber.mask_many(texts[i : i + BATCH])]
    out = []
    for line, (record, start, n) in zip(lines, records):
        if n == 0:
            out.append(line)
        elif record is not None:
            out.append(json.dumps(_replaced(record, iter(masked[start : start + n])), ensure_ascii=False) + "\n")
        else:
            out.append(masked[start] + ("\n" if line.endswith("\n") else ""))
    return "".join(out)
