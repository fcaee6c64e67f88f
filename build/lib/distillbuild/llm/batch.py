"""The batch processor: the OpenAI Batch API (upload JSONL, create, poll, download, match by custom_id).

Each request's custom_id is its cache key, so outputs land in the same cache as online
answers, in any order. The ids of batches in flight are written to a state file beside the
cache (fsynced before polling starts), so a run killed while the provider works resumes
polling the same batches instead of submitting, and paying for, new ones. Files use the
format `vllm run-batch -i in.jsonl -o out.jsonl` reads and writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.results import CallResult, RunStats, estimated_tokens, record_answer
from distillbuild.llm.settings import TeacherSettings
from distillbuild.secrets import redact

MAX_REQUESTS_PER_FILE = 50_000
ENDPOINT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def request_lines(items: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, separators=(",", ":")) + "\n"
        for key, body in items
    )


class BatchState:
    """Batches in flight for one endpoint and model: {batch_id: [custom_id, ...]}."""

    def __init__(self, path: Path):
        self.path = path
        self.batches: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def for_endpoint(cls, cache_path: Path, endpoint_id: str, model: str) -> "BatchState":
        name = hashlib.sha256(f"{endpoint_id}\0{model}".encode()).hexdigest()[:16]
        return cls(cache_path.parent / "batches" / f"{name}.json")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump(self.batches, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        if not self.batches:
            self.path.unlink(missing_ok=True)


class BatchProcessor:
    """Processor (distillbuild.llm.engine): the requests in batches the provider answers in its own time."""

    def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: RunStats,
        log: Callable[[str], None],
    ) -> dict[str, CallResult]:
        return run_batches(items, settings, cache, stats, log)


def run_batches(
    items: list[tuple[str, dict[str, Any]]],
    settings: TeacherSettings,
    cache: TeacherCache,
    stats: RunStats,
    log: Callable[[str], None],
    poll_cap_s: float = 30.0,
) -> dict[str, CallResult]:
    """Answer `items` through the Batch API; returns {key: CallResult} like the online path."""
    import openai  # loads lazily (~0.5 s)

    client = openai.OpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key or "unused",
        max_retries=settings.max_retries,
        timeout=max(settings.timeout_s, 120),
    )
    state = BatchState.for_endpoint(cache.path, settings.endpoint_id, settings.model)
    wanted = dict(items)
    results: dict[str, CallResult] = {}
    try:
        in_flight = {k for ids in state.batches.values() for k in ids}
        if state.batches:
            log(f"teacher (batch): resuming {len(state.batches)} batch(es) in flight, {len(in_flight)} requests")
        todo = [(k, b) for k, b in items if k not in in_flight]
        if settings.budget_usd is not None and todo and settings.price_in_per_mtok is not None:
            worst = (
                sum(estimated_tokens(b) for _, b in todo)
                * max(settings.price_in_per_mtok, settings.price_out_per_mtok or 0)
                / 1e6
            )
            if worst > settings.budget_usd:
                stats.budget_stopped = True
                raise StageError(
                    f"batch of {len(todo)} requests may cost up to ${worst:.2f}, over teacher.budget_usd "
                    f"${settings.budget_usd}; nothing was submitted"
                )
        for start in range(0, len(todo), MAX_REQUESTS_PER_FILE):
            chunk = todo[start : start + MAX_REQUESTS_PER_FILE]
            uploaded = client.files.create(file=("requests.jsonl", request_lines(chunk).encode()), purpose="batch")
            batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
            state.batches[batch.id] = [k for k, _ in chunk]
            state.save()  # before waiting: a restart must find this batch, not pay for a new one
            log(f"teacher (batch): submitted {batch.id} with {len(chunk)} requests")
        _wait_and_collect(client, state, wanted, cache, settings, stats, results, log, poll_cap_s)
    except openai.AuthenticationError as exc:
        raise StageError(
            f"the teacher endpoint refused the request: {redact(str(exc), settings.api_key)[:300]}"
        ) from None
    finally:
        client.close()
    return results


def _wait_and_collect(client, state, wanted, cache, settings, stats, results, log, poll_cap_s) -> None:
    delay, last_log = 0.2, 0.0
    while state.batches:
        for batch_id in list(state.batches):
            batch = client.batches.retrieve(batch_id)
            if time.monotonic() - last_log > 5:
                counts = batch.request_counts
                done = f"{counts.completed}/{counts.total}" if counts else "?"
                log(f"teacher (batch): {batch_id} {batch.status}, {done} done")
                last_log = time.monotonic()
            if batch.status not in TERMINAL:
                continue
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    _ingest(client.files.content(file_id).text, wanted, cache, settings, stats, results)
            for key in state.batches.pop(batch_id):
                if key not in results:  # expired, cancelled or failed before it ran
                    stats.bump(stats.errors, f"batch_{batch.status}")
                    results[key] = CallResult(None, False, f"batch_{batch.status}: no output for this request")
            state.save()
        if state.batches:
            time.sleep(delay)
            delay = min(poll_cap_s, delay * 1.5)


def _ingest(text: str, wanted, cache, settings, stats, results) -> None:
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        key = row.get("custom_id")
        if key not in wanted or key in results:
            continue
        response = row.get("response") or {}
        body = response.get("body")
        if response.get("status_code") == 200 and isinstance(body, dict) and body.get("choices"):
            stats.billed_calls += 1
            results[key] = record_answer(key, body, settings, cache, stats)
        else:
            error = (
                row.get("error") or (body or {}).get("error") or {"message": f"status {response.get('status_code')}"}
            )
            stats.bump(stats.errors, "batch_error")
            results[key] = CallResult(None, False, f"batch_error: {str(error.get('message', error))[:300]}")
