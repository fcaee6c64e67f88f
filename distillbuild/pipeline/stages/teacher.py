"""`teacher`: ask the teacher about every input and every held-out text.

Held-out answers go to their own file, read only by `evaluate` (for retention): they never
reach training. Answers come from the repository's teacher cache when it has them. This stage
turns the spec into settings, opens the endpoint (distillbuild.endpoints.open) and writes the
files; asking, parsing and reporting are the teacher engine's.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from distillbuild import layout
from distillbuild.console import log
from distillbuild.curate.fitting import contextual_calibration
from distillbuild.curate.input_checks import INPUT_REASONS, InputChecks, OnRay, check_inputs
from distillbuild.endpoints.llamacpp import has_chat_template
from distillbuild.endpoints.open import SettingsFor, endpoint_id, open_endpoint, upstream_spec
from distillbuild.errors import StageError
from distillbuild.io import read_jsonl, write_jsonl
from distillbuild.llm.cache import TeacherCache, cached_keys, request_key
from distillbuild.llm.engine import Canary, answer_all, recorded_responses
from distillbuild.llm.estimate import estimate
from distillbuild.llm.results import CallResult, RunStats
from distillbuild.llm.run_report import MEASURED, report, summary
from distillbuild.llm.settings import RayCalls, TeacherSettings
from distillbuild.markup import charts
from distillbuild.markup.tables import fmt, table
from distillbuild.measurements import read_report, write_report
from distillbuild.pipeline.contract import Out, posix
from distillbuild.pipeline.execution import cluster_for
from distillbuild.pipeline.privacy_doors import spec_rows, stage_report
from distillbuild.protocol.answers import answer_row
from distillbuild.protocol.canary import CanaryContext, canary_check, canary_context
from distillbuild.protocol.choice import body_fields, form_for
from distillbuild.protocol.explain import attach_rationales, explain_requests, explain_settings, in_reply
from distillbuild.protocol.normalize import normalize_text
from distillbuild.protocol.prompts import messages_for
from distillbuild.spec import Spec
from distillbuild.spec.inputs import Example, load_examples
from distillbuild.spec.model import Task, thaw
from distillbuild.spec.model_files import PACKAGE_PREFIX, resolve_model_file

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

# `teacher` whole, terms (the model card's) too: declared key by key, a key added to distill.yaml
# would go unseen by `dvc repro` until `distill compile`.
READS = (
    "data.scrub",  # rows masked as they are read (pipeline/privacy_doors.py)
    "data.inputs",
    "data.heldout",
    "data.heldout_sets",  # the input checks decontaminate against every held-out set
    "task.type",
    "task.instruction",
    "task.labels",
    "task.output_schema",
    "task.examples",
    "task.input_template",
    "teacher",
    "filters.confidence",
    "filters.calibration.method",
    "filters.calibration.content_free",
    # The input checks, run before any call (curate/input_checks.py): a change asks other inputs.
    "filters.dedup",
    "filters.decontaminate",
    "filters.decontaminate_threshold",
    "filters.rules.min_input_chars",
    "filters.rules.max_input_chars",
)
# Contextual calibration asks the teacher about content-free inputs too.
READS_WHEN = {
    key: lambda spec: contextual(spec)
    for key in ("filters.confidence", "filters.calibration.method", "filters.calibration.content_free")
}


def deps(spec: Spec) -> list[str]:
    files = [posix(spec.data_files.inputs), posix(spec.data_files.heldout)]
    files += [posix(path) for path in spec.data_files.heldout_sets.values()]  # decontaminated against
    if isinstance(spec.task.examples, str):  # a file of few-shot examples
        files.append(posix(spec.task.examples))
    if spec.seed is not None:  # generated inputs, answered beside data.inputs
        files.append(layout.SEED_INPUTS)
    if spec.teacher.provider == "simulated":  # the stand-in's answer key
        files.append(posix(spec.teacher.simulated.answers))
    local = spec.teacher.llamacpp
    if local is not None and not local.model.startswith(PACKAGE_PREFIX):  # a GGUF in the repository
        files.append(posix(local.model))
    if (
        spec.teacher.pipeline is not None
    ):  # the teacher pipeline's spec and what it serves: rebuilt there, asked again here
        upstream = upstream_spec(spec.teacher, spec.dir)
        served = [layout.MODEL_DIR] + ([layout.EXPORT_DIR] if upstream.export is not None else [])
        files += [posix(os.path.relpath(p, spec.dir)) for p in (upstream.path, *(upstream.dir / s for s in served))]
    return files


def outs(spec: Spec) -> list[Out]:
    files: list[Out] = [layout.TEACHER_ANSWERS, layout.TEACHER_HELDOUT, layout.TEACHER_RESPONSES, layout.TEACHER_REPORT]
    return files + [layout.TEACHER_CONTENT_FREE] if contextual(spec) else files


def contextual(spec: Spec) -> bool:
    """Contextual calibration (filters.calibration): the teacher also answers content-free inputs."""
    return contextual_calibration(spec.task, spec.filters)


def choice(spec: Spec) -> str | None:
    """The label constraint's form this teacher's answers are asked with (protocol/choice.py)."""
    return form_for(spec.teacher, spec.task.type, in_reply(spec.teacher.reasoning) is not None)


def teacher_settings(spec: Spec) -> SettingsFor:
    """The teacher's settings once its endpoint is known: (base_url, endpoint_id, api_key) -> settings."""
    t, structured, form = spec.teacher, response_format(spec.task), choice(spec)
    constraint = body_fields(form, spec.task.labels) if form else None
    return lambda base_url, endpoint_id, api_key: TeacherSettings.from_section(
        t,
        base_url=base_url,
        endpoint_id=endpoint_id,
        api_key=api_key,
        top_logprobs=t.top_logprobs,
        seed=t.seed,
        response_format=structured,
        batch=t.batch,
        samples=t.samples,
        token_ids=t.token_ids,
        constraint=constraint,
        api=t.api,
    )


def response_format(task: Task) -> dict[str, Any] | None:
    """Structured output for extraction: the answer must match task.output_schema."""
    if task.type != "extraction":
        return None
    schema = thaw(task.output_schema)  # plain JSON: the request body is hashed into cache keys
    return {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": schema}}


def load_inputs(spec: Spec, on_ray: OnRay | None = None) -> tuple[list[dict], list[tuple[str, str] | None]]:
    """Every input row (less those that are few-shot examples; then the seed stage's generated
    ones, once it has run) and, for each, the input checks' verdict: (reason, detail) for a row
    they drop before any call, None for one the teacher is asked about."""
    template = spec.task.input_template
    examples = load_examples(spec.task.examples, template, spec.dir)
    inputs = spec_rows(spec, spec.data_files.inputs, need_label=False)
    inputs = _without_examples(inputs, examples) + seed_rows(spec)
    sets = [spec.data_files.heldout, *spec.data_files.heldout_sets.values()]  # every held-out set
    checks = InputChecks.from_spec(spec.filters, on_ray)
    heldout = (
        [r["text"] for path in sets for r in spec_rows(spec, path, need_label=False)] if checks.decontaminate else []
    )
    return inputs, check_inputs(inputs, heldout, checks)


def load_requests(
    spec: Spec, checked: tuple[list[dict], list[tuple[str, str] | None]] | None = None
) -> tuple[list[dict], list[dict], list[list[dict[str, str]]]]:
    """The inputs the teacher is asked about (load_inputs' rows the input checks keep), held-out
    rows, and the messages for each (inputs first), the examples' turns before every input; with
    contextual calibration, the content-free inputs' messages last (content_free_rows)."""
    template = spec.task.input_template
    examples = load_examples(spec.task.examples, template, spec.dir)
    inputs, verdicts = checked or load_inputs(spec)
    asked = [row for row, verdict in zip(inputs, verdicts) if verdict is None]
    heldout = spec_rows(spec, spec.data_files.heldout, need_label=True)
    reasoning = spec.teacher.reasoning  # prompt mode asks for the rationale in the system prompt
    every = asked + heldout + content_free_rows(spec)
    return asked, heldout, [messages_for(spec.task, r["text"], examples, reasoning) for r in every]


def input_checks_report(verdicts: list[tuple[str, str] | None]) -> dict[str, Any]:
    """How many inputs the input checks kept from the teacher, by reason (the filter counts them too)."""
    reasons = Counter(v[0] for v in verdicts if v is not None)
    return {
        "inputs": len(verdicts),
        "asked": len(verdicts) - sum(reasons.values()),
        "not_asked": sum(reasons.values()),
        "by_reason": {r: reasons[r] for r in INPUT_REASONS if reasons[r]},
    }


def input_rows(inputs: list[dict], verdicts: list[tuple[str, str] | None], answered: list[dict]) -> list[dict]:
    """answers.jsonl: one row per input, in input order; a row the input checks dropped says why
    (`skipped`, `skipped_detail`) and has no answer, and the filter rejects it for that reason."""
    answers = iter(answered)
    rows = []
    for source, verdict in zip(inputs, verdicts):
        if verdict is None:
            rows.append(next(answers))
            continue
        row = {"id": source["id"], "text": source["text"], "answer": None, "skipped": verdict[0]}
        rows.append({**row, "skipped_detail": verdict[1]})
    return rows


def content_free_rows(spec: Spec) -> list[dict]:
    """Contextual calibration's content-free inputs ("N/A", "", "[MASK]"), asked as any input is."""
    if not contextual(spec):
        return []
    return [{"id": f"content_free:{i}", "text": text} for i, text in enumerate(spec.filters.calibration.content_free)]


def seed_rows(spec: Spec) -> list[dict]:
    """The seed stage's inputs ({id, text, seed: {label, ...}}): none without a seed section, or
    before the stage has run (`distill estimate` then counts the generation apart)."""
    path = spec.resolve(layout.SEED_INPUTS)
    return read_jsonl(path) if spec.seed is not None and path.exists() else []


def _without_examples(rows: list[dict], examples: tuple[Example, ...]) -> list[dict]:
    """Inputs that are not a few-shot example: the teacher saw those answers written for it, and
    training on them would teach the student the examples, not the teacher."""
    if not examples:
        return rows
    shown = {normalize_text(e.text) for e in examples}
    kept = [r for r in rows if normalize_text(r["text"]) not in shown]
    log(
        f"teacher: {len(examples)} few-shot example(s) before each input; "
        f"{len(rows) - len(kept)} input(s) equal to an example left out"
    )
    return kept


def estimate_for(spec: Spec):
    """`distill estimate`: the cost of this spec's teacher run, net of the cache."""
    _, _, requests = load_requests(spec)
    settings = teacher_settings(spec)(None, endpoint_id(spec.teacher, spec.dir, "teacher"), "")
    keys = [request_key(settings.endpoint_id, settings.body(m)) for m in requests]
    cached = cached_keys(spec.repo_root, keys)
    t = spec.teacher
    labels = None if in_reply(t.reasoning) else spec.task.labels  # a rationale is longer than a label
    return estimate(
        requests,
        keys,
        cached,
        model=t.model,
        max_tokens=t.max_tokens,
        labels=labels,
        price_in=t.price.input_per_mtok if t.price else None,
        price_out=t.price.output_per_mtok if t.price else None,
        budget_usd=t.budget_usd,
    )


def explanations_estimate_for(spec: Spec, answers_usd: float | None):
    """`distill estimate` in explain mode: one explanation per training input whose answer is a
    label. Answers already in the cache are read from it (their explanations may be cached too);
    one not asked yet is priced as if it were the first label. The budget left is what the
    answers (`answers_usd`, at most) leave of teacher.budget_usd, as the run gives it."""
    t = spec.teacher
    inputs, _, requests = load_requests(spec)
    base = teacher_settings(spec)(None, endpoint_id(t, spec.dir, "teacher"), "")
    answer_keys = [request_key(base.endpoint_id, base.body(m)) for m in requests[: len(inputs)]]
    cache = TeacherCache.for_repo(spec.repo_root)
    try:
        cached = cache.get_many(list(dict.fromkeys(answer_keys)))
    finally:
        cache.close()
    rows = [
        answer_row(r, CallResult(cached[k], True), spec.task, in_reply(t.reasoning), choice(spec))
        if k in cached
        else {**r, "answer": spec.task.labels[0], "error": None}
        for r, k in zip(inputs, answer_keys)
    ]
    examples = load_examples(spec.task.examples, spec.task.input_template, spec.dir)
    requests = [m for _, m in explain_requests(spec.task, rows, examples, t.reasoning)]
    settings = explain_settings(base, t.reasoning, answers_usd or 0.0)
    keys = [request_key(settings.endpoint_id, settings.body(m)) for m in requests]
    return estimate(
        requests,
        keys,
        cached_keys(spec.repo_root, keys),
        model=t.model,
        max_tokens=settings.max_tokens,
        labels=None,
        price_in=t.price.input_per_mtok if t.price else None,
        price_out=t.price.output_per_mtok if t.price else None,
        budget_usd=settings.budget_usd,
    )


def run_canary(spec: Spec) -> list[dict]:
    """The canary alone (`distill estimate --canary`): the first teacher.canary.requests prompts
    asked and checked, nothing else; StageError (exit 3) when the teacher fails it. Returns
    their answer rows, for the confidence figures `distill estimate` prints."""
    canary = spec.teacher.canary
    if canary is None or canary.requests == 0:
        raise StageError("teacher.canary.requests is 0: there is no canary to run")
    _, _, requests = load_requests(spec)
    first = list({json.dumps(m, sort_keys=True): m for m in requests}.values())[: canary.requests]
    results, *_ = ask(spec, first)  # the answers alone: explain mode's rationales follow a whole run
    return [
        answer_row({"id": i, "text": ""}, res, spec.task, in_reply(spec.teacher.reasoning), choice(spec))
        for i, res in enumerate(results)
    ]


def _canary_context(spec: Spec) -> CanaryContext:
    """The held-out set's label spread (what a reader of the inputs expects the answers to look
    like) and whether a llama.cpp teacher's model file goes without a chat template."""
    labels, t = spec.task.labels, spec.teacher
    heldout = spec_rows(spec, spec.data_files.heldout, need_label=True) if labels else []
    expected = [str(r["label"]) for r in heldout]
    # The canary asks the first inputs: when they carry gold labels, theirs is the spread to expect
    # (an input file sorted by label shows the canary one label, rightly).
    first = (
        spec_rows(spec, spec.data_files.inputs, need_label=False)[: t.canary.requests] if labels and t.canary else []
    )
    if first and all(r.get("label") in labels for r in first):
        expected = [str(r["label"]) for r in first]
    local = t.llamacpp
    bare = (
        t.provider == "llamacpp"
        and local is not None
        and local.chat_format is None
        and t.api == "chat"
        and has_chat_template(resolve_model_file(local.model, spec.dir)) is False
    )
    return canary_context(labels, expected, bare)


FollowUp = Callable[[list["CallResult | None"]], list[list[dict[str, str]]]]


def ask(
    spec: Spec, requests: list[list[dict[str, str]]], follow_up: FollowUp | None = None
) -> tuple[list[CallResult | None], RunStats, list[dict], list[CallResult | None]]:
    """Every request answered (or not) through the spec's teacher endpoint and the repository's
    cache; the first ones checked by the canary before the rest is asked. Also the cache's
    entries for them ({key, endpoint, model, response}): build/teacher/responses.jsonl, which
    DVC pushes with the build, so `distill reproduce` in a fresh clone asks the teacher nothing.
    `follow_up` (explain mode) turns the answers into more requests, asked with the rationale's
    settings while the endpoint is still open; their results come last."""
    t = spec.teacher
    canary = (
        Canary(
            t.canary.requests,
            canary_check(
                spec.task,
                t.max_tokens,
                t.canary.min_usable,
                log,
                in_reply(t.reasoning),
                choice=choice(spec),
                context=_canary_context(spec),
            ),
        )
        if t.canary
        else None
    )
    with (
        cluster_for(spec, "teacher") as on_ray,
        open_endpoint(
            t,
            spec.dir,
            spec.repo_root,
            kind="teacher",
            where="teacher",
            settings_for=teacher_settings(spec),
            labels=spec.task.labels or [],
        ) as (settings, cache),
    ):
        # On Ray, the calls spread over the cluster and every endpoint (vLLM replicas place themselves).
        if on_ray is not None and not settings.batch and settings.vllm is None:
            endpoints = (settings.base_url, *spec.execution.teacher.endpoints)
            key_env = t.api_key_env if t.provider == "openai" else None  # a stand-in's or local server's: no secret
            settings = replace(settings, ray=RayCalls(endpoints, on_ray.workers, on_ray.num_cpus, key_env))
        results, stats = answer_all(requests, settings, cache, log=log, canary=canary)
        entries = recorded_responses(requests, settings, cache)
        more = follow_up(results) if follow_up is not None and not stats.budget_stopped else []
        followed: list[CallResult | None] = []
        if more:
            log(f"teacher: explaining {len(more)} answers (teacher.reasoning: explain)")
            explaining = explain_settings(settings, t.reasoning, stats.cost_usd)
            followed, more_stats = answer_all(more, explaining, cache, log=log)
            stats.add(more_stats)
            entries += recorded_responses(more, explaining, cache)
    return results, stats, entries, followed


def check_unanswered(allowed_share: float, retries: int, results: list[CallResult | None]) -> None:
    """Fail the stage when more calls are left unanswered than teacher.max_error_share allows,
    before any output is written: DVC then records no partial answer set, and the answers so far
    stay cached, so a rerun asks for the missing rows alone."""
    lost = [r.error or "" for r in results if r is None or r.response is None]
    if not lost or len(lost) <= allowed_share * len(results):
        return
    kinds: dict[str, int] = {}
    for error in lost:
        kind = error.split(":", 1)[0] or "not asked"
        kinds[kind] = kinds.get(kind, 0) + 1
    raise StageError(
        f"{len(lost):,} of {len(results):,} teacher calls unanswered "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}; each after up to {retries} retries), more "
        f"than teacher.max_error_share ({allowed_share:g}) allows. Nothing was written, so DVC records no partial "
        f"answer set; the {len(results) - len(lost):,} answers are cached: rerun `dvc repro` to ask for the "
        f"missing ones alone (raise teacher.max_retries for a flaky endpoint, or let a share go with "
        "teacher.max_error_share)"
    )


def soft_label_counts(rows: list[dict]) -> dict[str, int]:
    """How each answered row's label probabilities were read (protocol/softlabels.py)."""
    answered = [r for r in rows if r.get("error") is None]
    mapped = [r for r in answered if r.get("label_probs")]
    bounded = sum(1 for r in mapped if r.get("soft_label_bounded"))
    return {
        "exact": len(mapped) - bounded,
        "bounded": bounded,
        "unmapped": len(answered) - len(mapped),
        "ambiguous": sum(1 for r in answered if r.get("soft_label_ambiguous")),
    }


def run(spec: Spec) -> int:
    with cluster_for(spec, "teacher"):  # one Ray session for the input checks and the calls (engine: ray)
        return _run(spec)


def _run(spec: Spec) -> int:
    t = spec.teacher
    with cluster_for(spec, "filter") as on_ray:  # the input checks: local, or spread over the Ray cluster
        every_input, verdicts = load_inputs(spec, on_ray)
    inputs, heldout, requests = load_requests(spec, (every_input, verdicts))
    rows: list[dict] = []
    explained: list[int] = []

    def answered(results: list[CallResult | None]) -> list[list[dict[str, str]]]:
        rows[:] = [
            answer_row(r, res, spec.task, in_reply(t.reasoning), choice(spec))
            for r, res in zip(inputs + heldout, results)
        ]
        if t.reasoning is None or t.reasoning.mode != "explain":
            return []
        examples = load_examples(spec.task.examples, spec.task.input_template, spec.dir)
        asked = explain_requests(spec.task, rows[: len(inputs)], examples, t.reasoning)  # training inputs only
        explained[:] = [i for i, _ in asked]
        return [m for _, m in asked]

    results, stats, responses, explanations = ask(spec, requests, answered)
    if not rows:  # the follow-up is skipped when the budget stopped the answers
        rows = [
            answer_row(r, res, spec.task, in_reply(t.reasoning), choice(spec))
            for r, res in zip(inputs + heldout, results)
        ]
    attach_rationales(rows, explained, explanations)
    held = rows[len(inputs) :]
    rows = input_rows(every_input, verdicts, rows[: len(inputs)])
    generated = len(seed_rows(spec))  # the last of the inputs (load_inputs)
    for n, (row, source) in enumerate(zip(rows, every_input)):
        if source.get("label") is not None:  # an input's gold label: never asked about, audited by the filter
            row["gold_label"] = source["label"]
        if (
            n >= len(every_input) - generated
        ):  # generated: the filter checks the teacher's label against the one asked for
            row.update(source="seed", seed_label=(source.get("seed") or {}).get("label"))
    ambiguous = sum(1 for r in rows + held if r.get("soft_label_ambiguous"))
    if stats.budget_stopped:
        missing = sum(1 for r in results if r is None) + sum(1 for r in explanations if r is None)
        raise StageError(
            f"budget reached: ${stats.cost_usd:.4f} of teacher.budget_usd ${t.budget_usd} spent; "
            f"{stats.billed_calls} answers kept in the cache, {missing} not asked. "
            "Raise the budget and rerun: cached answers cost nothing."
        )
    rep = report(t.provider, t.model, stats, len(inputs), len(heldout), ambiguous)
    rep["input_checks"] = input_checks_report(verdicts)
    masked = stage_report(spec)  # data.scrub: values masked before anything was sent, by door and kind
    if masked is not None:
        rep["scrub"] = masked
    if rep["input_checks"]["not_asked"]:
        skipped = rep["input_checks"]["by_reason"]
        log(
            f"teacher: {rep['input_checks']['not_asked']:,} of {len(every_input):,} inputs not asked "
            f"(the input checks: {', '.join(f'{k} {v:,}' for k, v in skipped.items())})"
        )
    if spec.task.labels:
        rep["soft_labels"] = soft_label_counts([r for r in rows + held if not r.get("skipped")])
    log(summary(rep))
    if "soft_labels" in rep:
        log("  soft labels " + ", ".join(f"{k} {v}" for k, v in rep["soft_labels"].items()))
    check_unanswered(t.max_error_share, t.max_retries, [*results, *explanations])
    write_jsonl(Path(layout.TEACHER_ANSWERS), rows)
    write_jsonl(Path(layout.TEACHER_HELDOUT), held)
    free = content_free_rows(spec)
    if free:
        offset = len(inputs) + len(heldout)
        write_jsonl(
            Path(layout.TEACHER_CONTENT_FREE),
            [answer_row(r, res, spec.task, None, choice(spec)) for r, res in zip(free, results[offset:])],
        )
    write_jsonl(Path(layout.TEACHER_RESPONSES), responses)
    write_report(Path(layout.TEACHER_REPORT), rep, MEASURED)
    if all(r.get("error") is not None for r in rows + held if not r.get("skipped")):  # explanations aside
        raise StageError(f"every teacher call failed: {rep['errors']}")
    return 0


def summary_lines(spec: Spec) -> list[str]:
    """Its lines in `distill summary`: who answered, and what the calls cost."""
    report = read_report(spec.dir / layout.TEACHER_REPORT)
    if not report:
        return ["  teacher    not run yet"]
    who = f"{report['provider']}:{report['model']}" + (
        " (SIMULATED stand-in, not a real model)" if report["simulated"] else ""
    )
    c = report["calls"]
    lines = [
        f"  teacher    {who}",
        f"  calls      {c['requested']} requested, {c['from_cache']} from cache, {c['billed']} billed, "
        f"${report['cost_usd']:.4f}",
    ]
    checked = report.get("input_checks") or {}
    if checked.get("not_asked"):
        reasons = ", ".join(f"{k} {v}" for k, v in checked["by_reason"].items())
        lines.append(f"  not asked  {checked['not_asked']} of {checked['inputs']} inputs ({reasons})")
    return lines


def spend(spec: Spec) -> dict[str, Any]:
    """What the stage will pay, net of the cache (pipeline/spend.py): its answers and, in explain
    mode, its explanations."""
    answers = estimate_for(spec)
    explains = spec.teacher.reasoning is not None and spec.teacher.reasoning.mode == "explain"
    return {
        "answers": answers,
        "explanations": explanations_estimate_for(spec, answers.cost_usd_max) if explains else None,
    }


def headline_html(spec: Spec) -> str:
    """Its part of the page's first screen: a warning when the answers came from the stand-in."""
    report = read_report(spec.dir / layout.TEACHER_REPORT)
    if not (report and report.get("simulated")):
        return ""
    return (
        "<p class=warn>The teacher was the <b>simulated stand-in</b> (an offline server answering from an "
        "answer key): these figures test the pipeline, not a real model.</p>"
    )


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the calls, the cache and the cost."""
    teacher = read_report(spec.dir / layout.TEACHER_REPORT)
    if not teacher:
        return ""
    c, lat = teacher["calls"], teacher.get("latency_s") or {}
    chart = charts.bars(
        [("from the cache", c["from_cache"]), ("billed calls", c["billed"]), ("deduplicated", c["deduplicated"])],
        title="Teacher requests",
        color=charts.PALETTE[1],
    )
    rows = [
        ["requested", c["requested"]],
        ["from the cache", c["from_cache"]],
        ["billed", c["billed"]],
        ["cost (USD)", teacher.get("cost_usd")],
        ["prompt tokens", (teacher.get("tokens") or {}).get("prompt")],
        ["completion tokens", (teacher.get("tokens") or {}).get("completion")],
        ["latency p50 / p95 (s)", " / ".join(fmt(lat.get(q)) for q in ("p50", "p95"))],
        ["errors", json.dumps(teacher.get("errors") or {})],
    ]
    return "<h2>Teacher</h2><div class=charts>" + table(rows, ["", ""]) + chart + "</div>"
