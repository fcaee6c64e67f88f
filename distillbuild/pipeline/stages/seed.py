"""`seed` (when the spec has a `seed` section): new inputs, written by a generator, for the teacher.

In rounds: the requests that fill every quota cell (distillbuild/seed/requests.py) go
through the teacher engine (cache, budget, retries, the generator's own endpoint or the
teacher's); each reply is read into candidate inputs; the selection keeps the new, usable ones
and gives every other a reason; cells still short are asked again in the next round, with new
examples. Outputs: the kept inputs (the teacher stage answers them beside data.inputs), the
dropped ones with their reasons, the generator's raw replies (for `distill reproduce`) and a
report with the diversity of what was kept.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.endpoints.open import open_endpoint
from distillbuild.errors import StageError
from distillbuild.io import write_jsonl
from distillbuild.llm.engine import answer_all, recorded_responses
from distillbuild.llm.results import CallResult, RunStats
from distillbuild.llm.settings import TeacherSettings
from distillbuild.measurements import write_report
from distillbuild.pipeline.contract import Out, posix
from distillbuild.pipeline.privacy_doors import masked_responses, masked_rows, spec_rows
from distillbuild.seed.diversity import diversity
from distillbuild.seed.replies import content_text, read_reply
from distillbuild.seed.requests import Cell, SeedRequest, instruction_lines, plan, quotas
from distillbuild.seed.selection import REASONS, Candidate, Selection
from distillbuild.spec import Spec
from distillbuild.spec.inputs import load_examples
from distillbuild.spec.model import Teacher
from distillbuild.spec.model_files import PACKAGE_PREFIX

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

# The teacher's keys a generator inherits (spec/model.py Generator.over): not its answer settings.
_INHERITED = tuple(
    f"teacher.{k}"
    for k in (
        "provider",
        "model",
        "base_url",
        "api_key_env",
        "concurrency",
        "timeout_s",
        "max_retries",
        "rate_limit",
        "price",
        "budget_usd",
        "llamacpp",
        "simulated",
        "tokenizer",
        "reasoning",
    )
)
READS = (
    "data.scrub",  # rows masked as they are read (pipeline/privacy_doors.py)
    "seed",
    "task.type",
    "task.instruction",
    "task.labels",
    "task.examples",
    "task.input_template",
    "data.inputs",
    "data.human",
    "filters.decontaminate",
    "data.heldout",
    "data.heldout_sets",
    "filters.decontaminate_threshold",
    *_INHERITED,
)


def _decontaminates(spec: Spec) -> bool:
    return spec.filters.decontaminate


READS_WHEN = {
    "data.human": lambda spec: spec.data_files.human is not None,
    "data.heldout": _decontaminates,
    "filters.decontaminate_threshold": _decontaminates,
    "data.heldout_sets": lambda spec: _decontaminates(spec) and bool(spec.data_files.heldout_sets),
    # the stand-in needs no key
    "teacher.api_key_env": lambda spec: generator(spec).provider != "simulated",
}


def applies(spec: Spec) -> bool:
    return spec.seed is not None


def generator(spec: Spec) -> Teacher:
    """The endpoint section the stage opens: the teacher's, with seed.generator's keys in place."""
    return spec.seed.endpoint(spec.teacher)


def deps(spec: Spec) -> list[str]:
    data = spec.data_files
    files = [posix(data.inputs)]
    if spec.filters.decontaminate:  # generated inputs that copy a held-out one are dropped
        files += [posix(data.heldout), *(posix(p) for p in data.heldout_sets.values())]
    if data.human:
        files.append(posix(data.human))
    if isinstance(spec.task.examples, str):
        files.append(posix(spec.task.examples))
    section = generator(spec)
    if section.provider == "simulated":  # the stand-in's pool
        files.append(posix(section.simulated.answers))
    if section.provider == "llamacpp" and not section.llamacpp.model.startswith(PACKAGE_PREFIX):
        files.append(posix(section.llamacpp.model))
    return list(dict.fromkeys(files))


def outs(spec: Spec) -> list[Out]:
    return [layout.SEED_INPUTS, layout.SEED_DROPPED, layout.SEED_RESPONSES, layout.SEED_REPORT]


# --- what the stage reads ---


def example_pool(spec: Spec) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(text, label or None) the requests show as examples (few-shot examples and human rows
    labelled, inputs not: their gold labels only audit the teacher), and every existing text
    a generated input must not repeat."""
    template = spec.task.input_template
    labelled = [(e.text, e.answer) for e in load_examples(spec.task.examples, template, spec.dir)]
    if spec.data_files.human:
        labelled += [
            (r["text"], r["label"]) for r in spec_rows(spec, spec.data_files.human, need_label=True, door="human")
        ]
    inputs = [(r["text"], None) for r in spec_rows(spec, spec.data_files.inputs, need_label=False)]
    pool: dict[str, str | None] = {}
    for text, label in labelled + inputs:  # a text once, labelled where anyone labelled it
        pool.setdefault(text, label)
    return list(pool.items()), list(pool)


def heldout_texts(spec: Spec) -> list[str]:
    paths = [spec.data_files.heldout, *spec.data_files.heldout_sets.values()]
    return [r["text"] for p in paths for r in spec_rows(spec, p, need_label=False)]


def seed_log(line: str) -> None:
    """The teacher engine's lines, as this stage's (it speaks of `teacher:` for any endpoint)."""
    log("seed: " + line.removeprefix("teacher: "))


def generator_settings(section: Teacher):
    return lambda base_url, endpoint_id, api_key: TeacherSettings.from_section(
        section, base_url=base_url, endpoint_id=endpoint_id, api_key=api_key, top_logprobs=0, seed=None
    )


# --- the rounds ---


def _candidates(request: SeedRequest, result: CallResult | None, selection: Selection) -> list[Candidate]:
    """The request's reply as candidates; a failed call or an unreadable reply dropped whole, and
    of a reply cut off at seed.max_tokens, the last (unfinished) input."""
    meta = {
        "label": request.cell.label,
        "attributes": dict(request.cell.attributes),
        "topic": request.topic,
        "round": request.round,
    }
    echo = instruction_lines(request)

    def candidate(text: str) -> Candidate:
        return Candidate(text, request.cell, request.examples, meta, echo)

    if result is None or result.response is None:
        selection.drop(
            candidate(""),
            "generator_error",
            (result.error if result else "not asked: the budget stopped the run") or "",
        )
        return []
    choice = (result.response.get("choices") or [None])[0] or {}
    content = content_text((choice.get("message") or {}).get("content"))
    cut = choice.get("finish_reason") == "length"
    texts = read_reply(content, request.asked, cut_off=cut)
    if texts is None:
        reason = "cut_off" if cut else "unparsable_reply"
        selection.drop(
            candidate(content or ""),
            reason,
            f"asked for {request.asked}; the reply "
            + ("stopped at seed.max_tokens" if cut else "is neither a JSON array nor a list"),
        )
        return []
    if cut:  # the last input is unfinished (a salvaged JSON array's complete items are all kept)
        salvaged = request.asked > 1 and "[" in content and not content.rstrip().endswith("]")
        unfinished = "(the unfinished rest of a JSON array)" if salvaged else texts.pop()
        selection.drop(candidate(unfinished), "cut_off", "the reply stopped at seed.max_tokens")
    return [candidate(t) for t in texts]


def generate(
    spec: Spec, settings: TeacherSettings, cache, selection: Selection, pool: list[tuple[str, str | None]]
) -> tuple[dict[Cell, int], RunStats, list[dict], int]:
    """Rounds until every cell is full or seed.max_rounds: (quotas, the calls' stats, the
    generator's recorded replies, rounds run)."""
    seed, quota = spec.seed, quotas(spec.task, spec.seed)
    kept: Counter = Counter()
    total = RunStats()
    responses: dict[str, dict] = {}
    asked_so_far, rounds = 0, 0
    for round_no in range(1, seed.max_rounds + 1):
        short = {cell: q - kept[cell] for cell, q in quota.items() if kept[cell] < q}
        if not short:
            break
        rounds = round_no
        requests = plan(spec.task, seed, short, round_no, pool, topic_offset=asked_so_far)
        asked_so_far += len(requests)
        log(
            f"seed: round {round_no}: {sum(short.values())} inputs short in {len(short)} cell(s), "
            f"{len(requests)} requests"
        )
        messages, seeds = [r.messages for r in requests], [r.sampling_seed for r in requests]
        if settings.budget_usd is not None:  # one budget for the whole stage, not one a round
            settings = replace(settings, budget_usd=max(settings.budget_usd - total.cost_usd, 0.0))
        results, stats = answer_all(messages, settings, cache, log=seed_log, seeds=seeds)
        total.add(stats)
        responses.update((e["key"], e) for e in recorded_responses(messages, settings, cache, seeds))
        candidates = [c for request, result in zip(requests, results) for c in _candidates(request, result, selection)]
        for c in selection.add(candidates):
            kept[c.cell] += 1
        if stats.budget_stopped:
            raise StageError(
                f"budget reached: ${total.cost_usd:.4f} spent on generation; what was generated is "
                "cached. Raise the budget (seed.generator.budget_usd or teacher.budget_usd) and rerun."
            )
    return quota, total, list(responses.values()), rounds


def _over_quota(selection: Selection, quota: dict[Cell, int]) -> list[Candidate]:
    """The kept candidates within each cell's quota, in order; the rest dropped over_quota."""
    seen: Counter = Counter()
    final = []
    for c in selection.kept:
        seen[c.cell] += 1
        if seen[c.cell] > quota[c.cell]:
            selection.drop(c, "over_quota", f"{c.cell.name} already has its {quota[c.cell]}")
        else:
            final.append(c)
    return final


def _report(
    spec: Spec,
    section: Teacher,
    selection: Selection,
    final: list[Candidate],
    quota: dict[Cell, int],
    stats: RunStats,
    rounds: int,
    existing: list[str],
) -> dict[str, Any]:
    reasons = Counter(reason for _, reason, _ in selection.dropped)
    kept_by_cell = Counter(c.cell for c in final)
    written = len(final) + sum(n for r, n in reasons.items() if r not in ("generator_error", "unparsable_reply"))
    unusable = sum(reasons[r] for r in ("empty", "too_short", "too_long", "cut_off"))
    from distillbuild.evaluate.drift import minilm_embedder  # torch: seconds to load, only here

    return {
        "generator": {
            "provider": section.provider,
            "model": section.model,
            "stand_in": section.provider == "simulated",
        },
        "quota": sum(quota.values()),
        "rounds": rounds,
        "requests": stats.requested,
        "written": written,
        "usable": written - unusable,
        "kept": len(final),
        "dropped": len(selection.dropped),
        "by_reason": {r: reasons.get(r, 0) for r in REASONS},
        "shortfall": {cell.name: q - kept_by_cell[cell] for cell, q in quota.items() if kept_by_cell[cell] < q},
        "label_balance": dict(sorted(Counter(c.cell.label for c in final if c.cell.label is not None).items())) or None,
        "calls": {
            "billed": stats.billed_calls,
            "cache_hits": stats.cache_hits,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "cost_usd": round(stats.cost_usd, 6),
            "errors": dict(stats.errors),
            "seconds": round(stats.seconds, 3),
        },
        "diversity": diversity([c.text for c in final], existing, minilm_embedder() if final else None),
    }


def estimate_for(spec: Spec):
    """`distill estimate`: the first round's generation calls, net of the cache (later rounds ask
    only for what dropped inputs left short, at most seed.max_rounds - 1 more)."""
    from distillbuild.endpoints.open import endpoint_id
    from distillbuild.llm.cache import cached_keys, request_key
    from distillbuild.llm.estimate import estimate

    section = generator(spec)
    pool, _ = example_pool(spec)
    planned = plan(spec.task, spec.seed, quotas(spec.task, spec.seed), 1, pool)
    requests = [r.messages for r in planned]
    settings = generator_settings(section)(None, endpoint_id(section, spec.dir, "teacher"), "")
    keys = [request_key(settings.endpoint_id, settings.body(r.messages, r.sampling_seed)) for r in planned]
    cached = cached_keys(spec.repo_root, keys)
    price = section.price
    return estimate(
        requests,
        keys,
        cached,
        model=section.model,
        max_tokens=spec.seed.max_tokens,
        labels=None,
        price_in=price.input_per_mtok if price else None,
        price_out=price.output_per_mtok if price else None,
        budget_usd=section.budget_usd,
    )


def _row(c: Candidate) -> dict[str, Any]:
    return {"id": f"seed-{hashlib.sha256(c.text.encode()).hexdigest()[:16]}", "text": c.text, "seed": c.meta}


def run(spec: Spec) -> int:
    seed, section = spec.seed, generator(spec)
    pool, existing = example_pool(spec)
    threshold = spec.filters.decontaminate_threshold if spec.filters.decontaminate else None
    selection = Selection(
        existing,
        heldout_texts(spec) if threshold is not None else [],
        seed.min_chars,
        seed.max_chars,
        seed.near_threshold,
        threshold,
    )
    with open_endpoint(
        section,
        spec.dir,
        spec.repo_root,
        kind="teacher",
        where="seed.generator",
        settings_for=generator_settings(section),
        labels=spec.task.labels or [],
        log=seed_log,
    ) as (settings, cache):
        quota, stats, responses, rounds = generate(spec, settings, cache, selection, pool)
    final = _over_quota(selection, quota)
    # data.scrub at the `seed` door: a generator may write a name or a number into an input
    write_jsonl(Path(layout.SEED_INPUTS), masked_rows(spec, [_row(c) for c in final], "seed"))
    dropped = [{**_row(c), "reason": reason, "detail": detail} for c, reason, detail in selection.dropped]
    write_jsonl(Path(layout.SEED_DROPPED), masked_rows(spec, dropped, "seed"))
    write_jsonl(Path(layout.SEED_RESPONSES), masked_responses(spec, responses, "seed"))
    report = _report(spec, section, selection, final, quota, stats, rounds, existing)
    write_report(Path(layout.SEED_REPORT), report, ("calls",))
    by_reason = ", ".join(f"{k} {v}" for k, v in report["by_reason"].items() if v) or "none"
    stand_in = " (the SIMULATED stand-in: inputs drawn from its pool)" if section.provider == "simulated" else ""
    log(
        f"seed: {report['written']} inputs written by {section.model}{stand_in}, {report['usable']} usable, "
        f"{report['kept']} kept of a quota of {report['quota']} in {rounds} round(s); dropped: {by_reason}"
    )
    if report["shortfall"]:
        log(
            f"seed: short after {rounds} rounds: "
            + ", ".join(f"{k} {v}" for k, v in list(report["shortfall"].items())[:8])
        )
    if not final and stats.requested and sum(stats.errors.values()) == stats.requested:
        raise StageError(f"every generator call failed: {dict(stats.errors)}")
    return 0


def spend(spec: Spec) -> dict[str, Any]:
    """What the stage will pay, net of the cache (pipeline/spend.py): the generator's first round."""
    return {"seed": estimate_for(spec)}
