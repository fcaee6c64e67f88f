"""Files and Batches for the stand-in servers: OpenAI's Batch API, in memory.

`POST /v1/files` (multipart, purpose=batch) stores a JSON Lines file of requests
`{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`; `POST /v1/batches`
answers them in a background thread at a set pace (validating -> in_progress -> finalizing ->
completed) and writes an output file of `{"id", "custom_id", "response": {"status_code": 200,
"request_id", "body"}, "error": null}` lines in a shuffled (seeded) order, plus an error file for
lines whose body is not a valid request. Everything lives in the server object, so a client that
restarts can poll a batch still in flight on the same server.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from typing import Any, Callable

BATCH_ENDPOINTS = ("/v1/chat/completions",)
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


class ApiError(Exception):
    """An error answered as OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


_DISPOSITION = re.compile(r'([a-zA-Z*]+)="((?:[^"\\]|\\.)*)"')


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body: {name: (filename or None, data)}."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or not match:
        raise ApiError(400, "expected a multipart/form-data body with a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, tuple[str | None, bytes]] = {}
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "malformed multipart part")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        params: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                params = {k.lower(): v for k, v in _DISPOSITION.findall(line)}
        if "name" in params:
            parts[params["name"]] = (params.get("filename"), data)
    return parts


class BatchStore:
    """Files and batches of one simulated server.

    `answer(body) -> completion dict` answers one valid request body and bills it (lines that go to
    the error file are not billed; `failed()` counts them). `rows_per_s` paces the processing (None or 0: as fast as it
    can); `closing` stops the workers when the server closes.
    """

    def __init__(
        self,
        answer: Callable[[dict[str, Any]], dict[str, Any]],
        seed: int,
        rows_per_s: float | None,
        closing: threading.Event,
        failed: Callable[[], None] = lambda: None,
    ):
        self._answer, self.seed, self.rows_per_s, self._closing = answer, seed, rows_per_s, closing
        self._failed = failed
        self._lock = threading.Lock()
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._next_file = 0
        self._next_batch = 0
        self._next_line = 0

    # --- files -------------------------------------------------------------------------------

    def _add_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        with self._lock:
            self._next_file += 1
            fid = f"file-sim{self._next_file:06d}"
            meta = {
                "id": fid,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "expires_at": None,
                "status_details": None,
            }
            self._files[fid] = (meta, data)
            return dict(meta)

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        parts = parse_multipart(content_type, raw)
        if "file" not in parts:
            raise ApiError(400, "missing the 'file' part", param="file")
        purpose = parts.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", param="purpose")
        filename, data = parts["file"]
        if purpose == "batch":
            if not (filename or "").endswith(".jsonl"):
                raise ApiError(400, "Invalid file format for Batch API. Must be .jsonl", param="file")
            if len(data) > 200 * 1024 * 1024:
                raise ApiError(400, "File is larger than the 200 MB a batch may read", param="file")
        return self._add_file(filename or "upload", purpose, data)

    def _file(self, fid: str) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            found = self._files.get(fid)
        if found is None:
            raise ApiError(404, f"No such File object: {fid}", param="id")
        return found

    def file_meta(self, fid: str) -> dict[str, Any]:
        return dict(self._file(fid)[0])

    def file_content(self, fid: str) -> bytes:
        return self._file(fid)[1]

    def list_files(self, purpose: str | None = None) -> dict[str, Any]:
        with self._lock:
            data = [dict(m) for m, _ in reversed(self._files.values()) if purpose in (None, "", m["purpose"])]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }

    def delete_file(self, fid: str) -> dict[str, Any]:
        with self._lock:
            if self._files.pop(fid, None) is None:
                raise ApiError(404, f"No such File object: {fid}", param="id")
        return {"id": fid, "object": "file", "deleted": True}

    # --- batches -----------------------------------------------------------------------------

    def create_batch(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise ApiError(400, "body must be a JSON object")
        fid, endpoint = request.get("input_file_id"), request.get("endpoint")
        window = request.get("completion_window")
        if endpoint not in BATCH_ENDPOINTS:
            raise ApiError(
                400, f"endpoint must be one of {list(BATCH_ENDPOINTS)} for the simulated teacher", param="endpoint"
            )
        if window != "24h":
            raise ApiError(400, "completion_window must be '24h'", param="completion_window")
        meta, data = self._file(str(fid))
        if meta["purpose"] != "batch":
            raise ApiError(400, f"File {fid} has purpose '{meta['purpose']}', not 'batch'", param="input_file_id")
        now = int(time.time())
        with self._lock:
            self._next_batch += 1
            bid = f"batch_sim{self._next_batch:06d}"
            batch = {
                "id": bid,
                "object": "batch",
                "endpoint": endpoint,
                "errors": None,
                "input_file_id": fid,
                "completion_window": window,
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "expires_at": now + 24 * 3600,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": request.get("metadata"),
                "model": None,
                "usage": None,
            }
            self._batches[bid] = batch
            snapshot = json.loads(json.dumps(batch))
            thread = threading.Thread(target=self._run, args=(bid, data), name=f"sim-{bid}", daemon=True)
            self._threads.append(thread)
        thread.start()
        return snapshot

    def get_batch(self, bid: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batches.get(bid)
            if batch is None:
                raise ApiError(404, f"No such Batch object: {bid}", param="batch_id")
            return json.loads(json.dumps(batch))

    def cancel_batch(self, bid: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batches.get(bid)
            if batch is None:
                raise ApiError(404, f"No such Batch object: {bid}", param="batch_id")
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["status"], batch["cancelling_at"] = "cancelling", int(time.time())
            elif batch["status"] != "cancelling":
                raise ApiError(400, f"Cannot cancel a batch with status '{batch['status']}'.")
            return json.loads(json.dumps(batch))

    def list_batches(self, limit: int = 20, after: str | None = None) -> dict[str, Any]:
        with self._lock:
            ids = list(reversed(self._batches))  # newest first
            if after in self._batches:
                ids = ids[ids.index(after) + 1 :]
            page = [json.loads(json.dumps(self._batches[i])) for i in ids[:limit]]
            more = len(ids) > limit
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": more,
        }

    def join(self, timeout: float = 5.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    # --- the worker --------------------------------------------------------------------------

    def _set(self, bid: str, **fields: Any) -> str:
        with self._lock:
            batch = self._batches[bid]
            batch.update(fields)
            return batch["status"]

    def _status(self, bid: str) -> str:
        with self._lock:
            return self._batches[bid]["status"]

    def _fail(self, bid: str, errors: list[dict[str, Any]]) -> None:
        self._set(bid, status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors[:100]})

    def _validate(self, data: bytes, endpoint: str) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
        lines, errors, seen = [], [], set()
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                errors.append(
                    {
                        "code": "invalid_json_line",
                        "message": "This line is not parseable as valid JSON.",
                        "param": None,
                        "line": n,
                    }
                )
                continue
            if not isinstance(row, dict) or not isinstance(row.get("custom_id"), str):
                errors.append(
                    {
                        "code": "missing_required_parameter",
                        "message": "Missing required parameter: 'custom_id'.",
                        "param": "custom_id",
                        "line": n,
                    }
                )
            elif row["custom_id"] in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id",
                        "message": "The custom_id for this request is a duplicate "
                        "of another request. The custom_id parameter must be unique for each request in a batch.",
                        "param": "custom_id",
                        "line": n,
                    }
                )
            elif row.get("method") != "POST":
                errors.append(
                    {"code": "invalid_method", "message": "Only POST is supported.", "param": "method", "line": n}
                )
            elif row.get("url") != endpoint:
                errors.append(
                    {
                        "code": "invalid_url",
                        "message": f"The URL provided for this request does not match the batch endpoint {endpoint}.",
                        "param": "url",
                        "line": n,
                    }
                )
            else:
                seen.add(row["custom_id"])
                lines.append((row["custom_id"], row.get("body")))
        if not lines and not errors:
            errors.append(
                {"code": "empty_file", "message": "The batch input file is empty.", "param": None, "line": None}
            )
        return lines, errors

    def _line_id(self) -> int:
        with self._lock:
            self._next_line += 1
            return self._next_line

    def _run(self, bid: str, data: bytes) -> None:
        lines, errors = self._validate(data, self.get_batch(bid)["endpoint"])
        if errors:
            self._fail(bid, errors)
            return
        model = next((b.get("model") for _, b in lines if isinstance(b, dict) and b.get("model")), None)
        self._advance(
            bid,
            "validating",
            "in_progress",
            model=model,
            request_counts={"total": len(lines), "completed": 0, "failed": 0},
        )
        answered = self._answer_lines(bid, lines)
        if answered is None:  # the server closed
            return
        self._advance(bid, "in_progress", "finalizing")
        self._finish(bid, data, *answered)

    def _advance(self, bid: str, expected: str, status: str, **fields: Any) -> None:
        """Set `fields` and, unless a cancel came first, move the batch from `expected` to `status`
        (stamping `<status>_at`)."""
        with self._lock:
            batch = self._batches[bid]
            batch.update(fields)
            if batch["status"] == expected:
                batch.update({"status": status, f"{status}_at": int(time.time())})

    def _answer_lines(
        self, bid: str, lines: list[tuple[str, Any]]
    ) -> tuple[list[str], list[str], dict[str, int]] | None:
        """(output lines, error lines, token usage), up to a cancel; None if the server closes first."""
        outputs: list[str] = []
        failures: list[str] = []
        usage = {"input_tokens": 0, "output_tokens": 0}
        start = time.monotonic()
        for i, (custom_id, body) in enumerate(lines):
            if self._closed_while_pacing(start, i):
                return None
            if self._status(bid) == "cancelling":
                break
            n = self._line_id()
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list) or not messages:
                failures.append(self._refused_line(bid, n, custom_id, body))
            else:
                outputs.append(self._answered_line(bid, n, custom_id, body, usage))
        return outputs, failures, usage

    def _closed_while_pacing(self, start: float, i: int) -> bool:
        """Wait for line i's turn at rows_per_s; True if the server closes meanwhile."""
        if self.rows_per_s:
            wait = start + (i + 1) / self.rows_per_s - time.monotonic()
            return wait > 0 and self._closing.wait(wait)
        return self._closing.is_set()

    def _refused_line(self, bid: str, n: int, custom_id: str, body: Any) -> str:
        error = {
            "error": {
                "message": "'messages' must be a non-empty list"
                if isinstance(body, dict)
                else "'body' must be a JSON object",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
        }
        line = _result_line(n, custom_id, 400, error)
        with self._lock:
            self._batches[bid]["request_counts"]["failed"] += 1
        self._failed()
        return line

    def _answered_line(self, bid: str, n: int, custom_id: str, body: dict[str, Any], usage: dict[str, int]) -> str:
        completion = self._answer(body)
        usage["input_tokens"] += completion["usage"]["prompt_tokens"]
        usage["output_tokens"] += completion["usage"]["completion_tokens"]
        line = _result_line(n, custom_id, 200, completion)
        with self._lock:
            self._batches[bid]["request_counts"]["completed"] += 1
        return line

    def _finish(self, bid: str, data: bytes, outputs: list[str], failures: list[str], usage: dict[str, int]) -> None:
        """Write the output and error files (in a seeded shuffled order) and close the batch."""
        digest = hashlib.sha256(f"{self.seed}\0{bid}".encode() + data).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        rng.shuffle(outputs)  # the Batch API promises no order
        rng.shuffle(failures)
        out_id = self._result_file(f"{bid}_output.jsonl", outputs)
        err_id = self._result_file(f"{bid}_error.jsonl", failures)
        now = int(time.time())
        usage_body = {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        }
        with self._lock:
            batch = self._batches[bid]
            batch.update(output_file_id=out_id, error_file_id=err_id, usage=usage_body)
            if batch["status"] == "cancelling":  # partial results, as OpenAI gives
                batch.update(status="cancelled", cancelled_at=now)
            else:
                batch.update(status="completed", completed_at=now)

    def _result_file(self, filename: str, lines: list[str]) -> str | None:
        return (
            self._add_file(filename, "batch_output", "".join(l + "\n" for l in lines).encode())["id"] if lines else None
        )


def _result_line(n: int, custom_id: str, status: int, body: dict[str, Any]) -> str:
    """One line of a batch's output or error file."""
    return json.dumps(
        {
            "id": f"batch_req_sim{n:08d}",
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": f"req_simb{n:08d}", "body": body},
            "error": None,
        }
    )
