"""`serve.capture`: every request and its answer appended to a JSON Lines file, masked first.

A record is what `distill import-logs` reads (`messages`: the user turn) and what `distill drift`
reads (`id`, `text`), plus what the server knew: the student's label and confidence, whether the
route sent it to the teacher, and the teacher's label when it gave one. The text is masked by the
spec's `data.scrub` rules before anything is written. The id is the request's own (random, the
one in its response's `id` and in the shadow log): the same text asked twice is two records, as
traffic has it. The writing happens on a thread of its own, off the
response path; a record is on disk within a second, and all of them when the server stops.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

_STOP = object()


def capture_record(request_id: str, masked: str, answer, model: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "text": masked,
        "messages": [{"role": "user", "content": masked}],
        "label": answer.label,
        "confidence": round(answer.confidence, 6),
        "routed": answer.routed,
        "teacher_label": answer.teacher_label,
        "model": model,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class Appender:
    """JSON Lines appended on a thread of its own: `add` only queues; `render` turns what was
    queued into a record (there, off the response path)."""

    def __init__(self, path: Path, render: Callable[[Any], dict[str, Any]]):
        self.path, self.render = path, render
        path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name=f"append:{path.name}", daemon=True)
        self.written = 0
        self._thread.start()

    def add(self, item: Any) -> None:
        self._queue.put(item)

    def _write(self) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            while True:
                batch = [self._queue.get()]
                while not self._queue.empty() and len(batch) < 1024:  # what queued meanwhile, one write
                    batch.append(self._queue.get())
                items = [i for i in batch if i is not _STOP]
                fh.writelines(json.dumps(self.render(i), ensure_ascii=False) + "\n" for i in items)
                fh.flush()
                self.written += len(items)
                if len(items) < len(batch):
                    return

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=60)


def open_capture(path: Path, scrubber: Callable[[str], str]) -> Appender:
    """The capture file: add((request_id, text, answer, model)) per answered request."""
    return Appender(path, lambda item: capture_record(item[0], scrubber(item[1]), item[2], item[3]))
