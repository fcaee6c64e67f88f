"""`teacher`: ask the teacher about every input and every held-out text.

Held-out answers go to their own file, read only by `evaluate` (for retention): they never
reach training. Answers come from the repository's teacher cache when it has them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.errors import StageError
from distillbuild.stats import percentile
from distillbuild.curate.normalize import normalize_label, normalize_text
from distillbuild.io import read_jsonl, write_json, write_jsonl
from distillbuild.spec import Spec
from distillbuild.stages.contract import Out, posix
from distillbuild.console import log
from distillbuild.teacher.cache import TeacherCache
from distillbuild.teacher.client import CallResult, RunStats, TeacherSettings, answer_all
from distillbuild.teacher.prompts import messages_for
from distillbuild.teacher.token_logprobs import kd_targets
from distillbuild.teacher.softlabels import answer_confidence, label_distribution


# --- contract: what compile.py declares in dvc.yaml for this stage (see stages/contract.py) ---

READS = ("data", "task.type", "task.instruction", "task.labels", "task.output_schema", "teacher")


def deps(spec: Spec) -> list[str]:
    files = [posix(spec.data_files.inputs), posix(spec.data_files.heldout)]
    if spec.teacher.provider == "simulated":  # the stand-in's answer key
        files.append(posix(spec.teacher.simulated.answers))
    return files


def outs(spec: Spec) -> list[Out]:
    return [layout.TEACHER_ANSWERS, layout.TEACHER_HELDOUT, layout.TEACHER_REPORT]


def _rows(path: Path, need_label: bool) -> list[dict[str, Any]]:
    rows = read_jsonl(path)
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        if not isinstance(row.get("id"), (str, int)) or not isinstance(row.get("text"), str):
            raise StageError(f"{path}: row {n} needs an 'id' and a string 'text'")
        if need_label and row.get("label") is None:
            raise StageError(f"{path}: row {n} needs a 'label' (the gold answer)")
        if str(row["id"]) in seen:
            raise StageError(f"{path}: id {row['id']!r} appears twice")
        seen.add(str(row["id"]))
    if not rows:
        raise StageError(f"{path}: no rows")
    return rows


def settings_for(spec: Spec, base_url: str | None, endpoint_id: str, api_key: str) -> TeacherSettings:
    t = spec["teacher"]
    price = t.get("price") or {}
    return TeacherSettings(
        endpoint_id=endpoint_id, base_url=base_url, model=t["model"], temperature=t["temperature"],
        max_tokens=t["max_tokens"], top_logprobs=t["top_logprobs"], seed=t.get("seed"),
        concurrency=t["concurrency"], timeout_s=t["timeout_s"], max_retries=t["max_retries"],
        price_in_per_mtok=price.get("input_per_mtok"), price_out_per_mtok=price.get("output_per_mtok"),
        budget_usd=t.get("budget_usd"), rpm=(t.get("rate_limit") or {}).get("rpm"),
        tpm=(t.get("rate_limit") or {}).get("tpm"), batch=t["batch"], samples=t["samples"],
        response_format=response_format(spec["task"]), token_ids=t["token_ids"], api_key=api_key,
    )


def response_format(task: dict[str, Any]) -> dict[str, Any] | None:
    """Structured output for extraction: the answer must match task.output_schema."""
    if task["type"] != "extraction":
        return None
    return {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": task["output_schema"]}}


def simulated_endpoint_id(spec: Spec) -> str:
    """Stable across runs (the server's port is not): the key file's content and the stand-in's settings."""
    sim = spec["teacher"]["simulated"]
    digest = hashlib.sha256(spec.resolve(sim["answers"]).read_bytes()).hexdigest()[:16]
    from distillbuild.teacher.simulated import BEHAVIOUR_VERSION

    identity = f"simulated-v{BEHAVIOUR_VERSION}:{digest}:accuracy={sim['accuracy']}:seed={sim['seed']}"
    tokenizer = spec["teacher"].get("tokenizer")
    if spec["teacher"].get("token_ids") and tokenizer:  # its token ids are the tokenizer's
        path = spec.resolve(tokenizer)
        files = sorted(path.glob("tokenizer*.json")) if path.is_dir() else []
        tok = hashlib.sha256(b"".join(f.read_bytes() for f in files) or tokenizer.encode()).hexdigest()[:16]
        identity += f":tokenizer={tok}"
    return identity


def _comparable(answer: str | None, task: dict[str, Any]) -> Any:
    """What two answers are compared by, for agreement: the label, the JSON value, or the text."""
    if answer is None:
        return None
    if task["type"] == "classification":
        return normalize_label(answer, task["labels"])
    if task["type"] == "extraction":
        try:
            return json.dumps(json.loads(answer), sort_keys=True)
        except ValueError:
            return None
    return normalize_text(answer)


def answer_row(row: dict[str, Any], result: CallResult | None, task: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "text": row["text"]}
    if result is None or result.response is None:
        out.update(answer=None, error=result.error if result else "not asked: the budget stopped the run")
        return out
    choices = result.response.get("choices") or [{}]
    contents = [(c.get("message") or {}).get("content") for c in choices]
    chosen, agreement = 0, None
    if len(choices) > 1:  # self-consistency: keep the majority answer
        keys = [_comparable(c, task) for c in contents]
        votes = Counter(k for k in keys if k is not None)
        if votes:
            top, count = votes.most_common(1)[0]
            chosen, agreement = keys.index(top), count / len(choices)
        else:
            agreement = 0.0
    choice = choices[chosen]
    message = choice.get("message") or {}
    logprobs = choice.get("logprobs")
    labels = task.get("labels") or []
    probs, ambiguous = _mean_distribution([c.get("logprobs") for c in choices], labels) if labels else (None, False)
    first = ((logprobs or {}).get("content") or [{}])[0]
    out.update(
        answer=message.get("content"),
        refusal=message.get("refusal"),
        finish_reason=choice.get("finish_reason"),
        confidence=answer_confidence(logprobs),
        label_probs=probs,
        soft_label_ambiguous=ambiguous,
        top_logprobs=[[a.get("token"), a.get("logprob")] for a in first.get("top_logprobs") or []],
        usage=result.response.get("usage"),
        system_fingerprint=result.response.get("system_fingerprint"),
        error=None,
    )
    if len(choices) > 1:
        out.update(samples=contents, agreement=agreement)
    kd = kd_targets(logprobs)
    if kd is not None:  # per-token distributions with ids: logit distillation's targets
        out["kd"] = kd
    if task["type"] == "extraction":
        try:
            out.update(parsed=json.loads(message.get("content") or ""), parse_error=None)
        except ValueError as exc:
            out.update(parsed=None, parse_error=f"not JSON: {exc}")
    return out


def _mean_distribution(logprobs_per_choice: list[Any], labels: list[str]) -> tuple[dict[str, float] | None, bool]:
    """The label distribution averaged over the sampled answers (one answer: its own)."""
    dists, ambiguous = [], False
    for logprobs in logprobs_per_choice:
        dist, amb = label_distribution(logprobs, labels)
        ambiguous |= amb
        if dist:
            dists.append(dist)
    if not dists:
        return None, ambiguous
    if len(dists) == 1:
        return dists[0], ambiguous
    mean = {l: sum(d.get(l, 0.0) for d in dists) / len(dists) for l in labels}
    return {l: p for l, p in sorted(mean.items(), key=lambda kv: -kv[1]) if p > 0}, ambiguous


def report(spec: Spec, stats: RunStats, inputs: int, heldout: int, ambiguous: int) -> dict[str, Any]:
    t = spec["teacher"]
    return {
        "provider": t["provider"],
        "model": t["model"],
        "simulated": t["provider"] == "simulated",
        "rows": {"inputs": inputs, "heldout": heldout},
        "calls": {
            "requested": stats.requested,
            "from_cache": stats.cache_hits,
            "billed": stats.billed_calls,
            "deduplicated": stats.requested - stats.unique,
            "answered": stats.answered,
            "retries": dict(sorted(stats.retries.items())),
            "rate_limit_pauses": stats.rate_limit_pauses,
        },
        "errors": dict(sorted(stats.errors.items())),
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
        "cost_usd": round(stats.cost_usd, 6),
        "latency_s": {"p50": percentile(stats.latencies, 0.5) if stats.latencies else None,
                      "p95": percentile(stats.latencies, 0.95) if stats.latencies else None},
        "system_fingerprints": sorted(stats.fingerprints),
        "soft_labels_ambiguous_rows": ambiguous,
        "seconds": round(stats.seconds, 3),
    }


def load_requests(spec: Spec) -> tuple[list[dict], list[dict], list[list[dict[str, str]]]]:
    """Input rows, held-out rows, and the messages for each (inputs first)."""
    inputs = _rows(spec.resolve(spec.get("data.inputs")), need_label=False)
    heldout = _rows(spec.resolve(spec.get("data.heldout")), need_label=True)
    return inputs, heldout, [messages_for(spec["task"], r["text"]) for r in inputs + heldout]


def endpoint_id(spec: Spec) -> str:
    if spec.get("teacher.provider") == "simulated":
        return simulated_endpoint_id(spec)
    return spec.get("teacher.base_url") or "https://api.openai.com/v1"


def estimate_for(spec: Spec):
    """`distill estimate`: the cost of this spec's teacher run, net of the cache."""
    from distillbuild.teacher.cache import request_key
    from distillbuild.teacher.estimate import estimate

    _, _, requests = load_requests(spec)
    settings = settings_for(spec, None, endpoint_id(spec), "")
    keys = [request_key(settings.endpoint_id, settings.body(m)) for m in requests]
    cache = TeacherCache.for_repo(spec.repo_root)
    try:
        cached = set(cache.get_many(list(dict.fromkeys(keys))))
    finally:
        cache.close()
    t = spec["teacher"]
    price = t.get("price") or {}
    return estimate(requests, keys, cached, model=t["model"], max_tokens=t["max_tokens"],
                    labels=spec.get("task.labels"), price_in=price.get("input_per_mtok"),
                    price_out=price.get("output_per_mtok"), budget_usd=t.get("budget_usd"))


def summary(rep: dict[str, Any]) -> str:
    """The one-screen summary printed when the stage ends."""
    c, lat = rep["calls"], rep["latency_s"]
    kinds = lambda d: ", ".join(f"{k} {v}" for k, v in d.items()) or "none"  # noqa: E731
    ms = lambda v: f"{v * 1000:.0f} ms" if v is not None else "-"  # noqa: E731
    rate = c["billed"] / rep["seconds"] if rep["seconds"] and c["billed"] else 0
    who = f"{rep['provider']}:{rep['model']}" + (" (SIMULATED stand-in)" if rep["simulated"] else "")
    return "\n".join([
        f"teacher summary: {who}",
        f"  requests    {c['requested']:,}: {c['from_cache']:,} from cache, {c['billed']:,} billed, "
        f"{c['deduplicated']:,} duplicates sent once",
        f"  retries     {kinds(c['retries'])}; rate-limit pauses {c['rate_limit_pauses']}",
        f"  errors      {kinds(rep['errors'])}",
        f"  tokens      {rep['tokens']['prompt']:,} prompt, {rep['tokens']['completion']:,} completion; ${rep['cost_usd']:.4f}",
        f"  latency     p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}; {rate:.0f} calls/s over {rep['seconds']:.1f} s",
        f"  fingerprint {', '.join(rep['system_fingerprints']) or '-'}",
    ])


def run(spec: Spec) -> int:
    task, t = spec["task"], spec["teacher"]
    inputs, heldout, requests = load_requests(spec)

    with ExitStack() as stack:
        if t["provider"] == "simulated":
            from distillbuild.teacher.simulated import server_from_spec

            server = stack.enter_context(server_from_spec(spec))
            settings = settings_for(spec, server.base_url, simulated_endpoint_id(spec), "simulated")
            log(f"teacher: SIMULATED stand-in ({t['model']}) on {server.base_url}")
        else:
            api_key = os.environ.get(t["api_key_env"], "")
            if not api_key:
                raise StageError(f"the teacher's API key is not set: export {t['api_key_env']}=... (teacher.api_key_env)")
            base_url = t.get("base_url")
            settings = settings_for(spec, base_url, endpoint_id(spec), api_key)
        cache = TeacherCache.for_repo(spec.repo_root)
        stack.callback(cache.close)
        results, stats = answer_all(requests, settings, cache, log=log)

    rows = [answer_row(r, res, task) for r, res in zip(inputs + heldout, results)]
    ambiguous = sum(1 for r in rows if r.get("soft_label_ambiguous"))
    if stats.budget_stopped:
        missing = sum(1 for r in results if r is None)
        raise StageError(
            f"budget reached: ${stats.cost_usd:.4f} of teacher.budget_usd ${t['budget_usd']} spent; "
            f"{stats.billed_calls} answers kept in the cache, {missing} not asked. "
            "Raise the budget and rerun: cached answers cost nothing."
        )
    write_jsonl(Path(layout.TEACHER_ANSWERS), rows[: len(inputs)])
    write_jsonl(Path(layout.TEACHER_HELDOUT), rows[len(inputs):])
    rep = report(spec, stats, len(inputs), len(heldout), ambiguous)
    write_json(Path(layout.TEACHER_REPORT), rep)
    log(summary(rep))
    if sum(stats.errors.values()) == len(rows):
        raise StageError(f"every teacher call failed: {rep['errors']}")
    return 0
