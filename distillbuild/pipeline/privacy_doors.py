"""The spec's data files as stages read them, masked by `data.scrub` at the doors it names.

A stage never sees the original of a masked value: the rows the teacher is asked about (inputs
and held-out sets: door `inputs`) and human rows (`human`) are masked as they are read, so no
request, answer file, dataset, report or DVC output under build/ holds one. Every string field
of a row is masked (a template's fields as well as the rendered text), its id and label aside.
Without a `data.scrub` section nothing is masked here (import-logs and the capture still are).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from distillbuild.privacy.scrubber import Scrubber, ScrubSettings
from distillbuild.spec import Spec
from distillbuild.spec.inputs import read_rows

KEEP = ("id", "label")  # never personal: an id the user chose, a label of task.labels

# Values masked in this process, by door and kind: what a stage's report counts (a stage runs in
# a process of its own under `dvc repro`; stage_report() is read once the stage has its rows).
MASKED: dict[str, Counter] = {}


def written_scrub(spec: Spec):
    """The spec's data.scrub when the document writes one (the typed spec fills an absent section
    with its defaults), else None."""
    return spec.data_files.scrub if "scrub" in (spec.raw.get("data") or {}) else None


def applies(spec: Spec, door: str) -> bool:
    scrub = written_scrub(spec)
    return scrub is not None and door in scrub.apply_to


def masked_rows(spec: Spec, rows: list[dict[str, Any]], door: str) -> list[dict[str, Any]]:
    """`rows` with every string field masked, when `data.scrub.apply_to` names `door`."""
    if not rows or not applies(spec, door):
        return rows
    scrubber = Scrubber.from_spec(written_scrub(spec))
    places = [(i, k) for i, row in enumerate(rows) for k, v in row.items() if k not in KEEP and isinstance(v, str)]
    texts = scrubber.mask_many([rows[i][k] for i, k in places])
    MASKED.setdefault(door, Counter()).update(scrubber.counts)
    out = [dict(row) for row in rows]
    for (i, k), text in zip(places, texts):
        out[i][k] = text
    return out


def stage_report(spec: Spec) -> dict[str, Any] | None:
    """For a stage's report: the NER model the masking used (`ner: auto` depends on what is
    installed, so a build records it) and the values masked per door and kind (counts only)."""
    scrub = written_scrub(spec)
    if scrub is None:
        return None
    settings = ScrubSettings.from_spec(scrub)
    return {
        "ner": settings.ner_model if settings.uses_ner() else None,
        "masked": {door: dict(sorted(counts.items())) for door, counts in sorted(MASKED.items())},
    }


def spec_rows(spec: Spec, path: str, *, need_label: bool, door: str = "inputs") -> list[dict[str, Any]]:
    """read_rows of a data file named in the spec, masked at `door`. A file is masked once per
    process for the same door and rules (a stage reads its held-out rows more than once)."""
    file = spec.resolve(path)
    if not applies(spec, door):
        return read_rows(file, spec.task.input_template, need_label)
    stat = file.stat()
    key = (
        str(file),
        stat.st_size,
        stat.st_mtime_ns,
        door,
        need_label,
        spec.task.input_template,
        repr(written_scrub(spec)),
    )
    if key not in _MASKED_FILES:
        _MASKED_FILES[key] = masked_rows(spec, read_rows(file, spec.task.input_template, need_label), door)
    return [dict(row) for row in _MASKED_FILES[key]]


_MASKED_FILES: dict[tuple, list[dict[str, Any]]] = {}


def masked_responses(spec: Spec, entries: list[dict[str, Any]], door: str) -> list[dict[str, Any]]:
    """Recorded responses ({key, endpoint, model, response}) with each answer's text masked: what
    a stage writes beside its rows for `distill reproduce`, which masks its rows again the same way."""
    if not entries or not applies(spec, door):
        return entries
    scrubber = Scrubber.from_spec(written_scrub(spec))
    out = []
    for entry in entries:
        choices = [dict(c, message=dict(c.get("message") or {})) for c in entry["response"].get("choices") or []]
        texts = [c["message"].get("content") for c in choices]
        masked = scrubber.mask_many([t for t in texts if isinstance(t, str)])
        for choice, text in zip((c for c, t in zip(choices, texts) if isinstance(t, str)), masked):
            choice["message"]["content"] = text
            choice.pop("logprobs", None)  # per-token text of the original answer
        out.append({**entry, "response": {**entry["response"], "choices": choices}})
    return out
