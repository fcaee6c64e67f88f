"""The checks that need only the input: its length, exact and near duplicates, and copies of
held-out inputs. The teacher stage runs them before any call (a row they drop is never paid
for), and the filter engine runs the set passes again over what the teacher answered (people's
labels from data.human go first there). Same order and the same reasons in both places:
input length, exact duplicates (NFKC, case folding, whitespace), decontamination against every
held-out set, near-duplicates (MinHash LSH over word 3-grams; the earliest of a cluster stays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from distillbuild.protocol.normalize import normalize_text
from distillbuild.spec.model import Filters

Row = dict[str, Any]
Reject = Callable[[Row, str, str], None]

INPUT_REASONS = ("input_length", "duplicate", "contaminated", "near_duplicate")


@dataclass(frozen=True)
class OnRay:
    """The near-duplicate and contamination checks spread over the Ray cluster the stage joined
    (curate/neardup_ray.py: the same answers as the local engine)."""

    workers: int
    num_cpus: float = 1.0

    def task_options(self) -> dict[str, Any]:
        return {"workers": self.workers, "num_cpus": self.num_cpus}


@dataclass(frozen=True)
class InputChecks:
    min_chars: int | None = None
    max_chars: int | None = None
    exact_dedup: bool = True
    decontaminate: bool = True
    decontaminate_threshold: float = 0.8
    near_threshold: float | None = None
    on_ray: OnRay | None = None

    @classmethod
    def from_spec(cls, filters: Filters, on_ray: OnRay | None = None) -> "InputChecks":
        return cls(
            on_ray=on_ray,
            min_chars=filters.rules.min_input_chars,
            max_chars=filters.rules.max_input_chars,
            exact_dedup=filters.dedup.exact,
            decontaminate=filters.decontaminate,
            decontaminate_threshold=filters.decontaminate_threshold,
            near_threshold=filters.dedup.near_threshold,
        )


def check_inputs(rows: list[Row], heldout_texts: list[str], checks: InputChecks) -> list[tuple[str, str] | None]:
    """For each input row, (reason, detail) when a check drops it, else None (the teacher asks it)."""
    verdicts: dict[int, tuple[str, str]] = {}
    position = {id(row): i for i, row in enumerate(rows)}

    def reject(row: Row, reason: str, detail: str) -> None:
        verdicts[position[id(row)]] = (reason, detail)

    survivors = [row for row in rows if not _length(row, checks, reject)]
    if checks.exact_dedup:
        survivors = drop_exact_duplicates(survivors, reject)
    if checks.decontaminate and heldout_texts and survivors:
        survivors = drop_contaminated(survivors, heldout_texts, checks.decontaminate_threshold, reject, checks.on_ray)
    if checks.near_threshold is not None and survivors:
        drop_near_duplicates(survivors, checks.near_threshold, reject, checks.on_ray)
    return [verdicts.get(i) for i in range(len(rows))]


def _length(row: Row, checks: InputChecks, reject: Reject) -> bool:
    n = len(row["text"])
    if checks.min_chars is not None and n < checks.min_chars:
        reject(row, "input_length", f"the input has {n} characters < {checks.min_chars}")
        return True
    if checks.max_chars is not None and n > checks.max_chars:
        reject(row, "input_length", f"the input has {n} characters > {checks.max_chars}")
        return True
    return False


def drop_exact_duplicates(rows: list[Row], reject: Reject) -> list[Row]:
    seen: dict[str, Any] = {}
    unique = []
    for row in rows:
        key = normalize_text(row["text"])
        if key in seen:
            reject(row, "duplicate", f"same text as {seen[key]}")
        else:
            seen[key] = row["id"]
            unique.append(row)
    return unique


def drop_contaminated(
    rows: list[Row], heldout_texts: list[str], threshold: float, reject: Reject, on_ray: OnRay | None = None
) -> list[Row]:
    texts = [r["text"] for r in rows]
    if on_ray is not None:
        from distillbuild.curate import neardup_ray

        hits = neardup_ray.contaminated_by(texts, heldout_texts, threshold, **on_ray.task_options())
    else:
        from distillbuild.curate.neardup import contaminated_by  # datasketch and numpy: 0.5 s, only when used

        hits = contaminated_by(texts, heldout_texts, threshold)
    clean = []
    for row, hit in zip(rows, hits):
        if hit is not None:
            reject(row, "contaminated", f"near-duplicates held-out input #{hit}: {heldout_texts[hit][:60]!r}")
        else:
            clean.append(row)
    return clean


def drop_near_duplicates(rows: list[Row], threshold: float, reject: Reject, on_ray: OnRay | None = None) -> list[Row]:
    texts = [r["text"] for r in rows]
    if on_ray is not None:
        from distillbuild.curate import neardup_ray

        reps = neardup_ray.near_duplicate_representatives(texts, threshold, **on_ray.task_options())
    else:
        from distillbuild.curate.neardup import near_duplicate_representatives  # datasketch: only when used

        reps = near_duplicate_representatives(texts, threshold)
    clean = []
    for i, (row, rep) in enumerate(zip(rows, reps)):
        if rep != i:
            reject(row, "near_duplicate", f"near-duplicates {rows[rep]['id']}")
        else:
            clean.append(row)
    return clean
