"""A candidate build beside the current one: `--shadow PATH` and `--canary SHARE`.

Shadow: each request the current build answers is also put to the candidate's student, after the
answer has gone (off the response path, never calling the teacher: a shadow costs no API
money). Canary: a share of requests is answered by the candidate (its own route and threshold,
the teacher behind it), and the current student is asked the same off the path. Either way one
record per request goes to the shadow log: both students' labels and confidences, which one
served, whether the request was routed and the teacher's label when it gave one. No text is
written, only the id the capture file gives the same request.

`distill shadow-report LOG` reads it: the candidate's agreement with the current student, and
each student's with the teacher on the routed requests, with 95% Wilson intervals.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from distillbuild.curate.threshold import wilson
from distillbuild.serve.capture import Appender

MAX_BEHIND = 256  # shadow answers waiting at most; past that a request is not shadowed (counted as shed)


def canary_pick(text: str, share: float) -> bool:
    """Whether the candidate answers this text: a hash of it, so the same input always goes the same way."""
    return share > 0 and int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") < share * 2**64


class Shadow:
    """The candidate (its Router and batcher) and the log its comparisons go to."""

    def __init__(self, router, log_path: Path, telemetry):
        self.router = router  # the candidate's Router: its own student, threshold and teacher
        self.log = Appender(log_path, lambda record: record)
        self.telemetry = telemetry
        self.behind = 0
        self.shed = 0
        self._tasks: set[asyncio.Task] = set()

    def compare(self, text: str, served, by_candidate: bool, other) -> None:
        """After `served` has gone: ask the other student off the path, then log both."""
        if self.behind >= MAX_BEHIND:
            self.shed += 1
            return
        self.behind += 1
        task = asyncio.create_task(self._compare(text, served, by_candidate, other))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compare(self, text: str, served, by_candidate: bool, other) -> None:
        try:
            said = await other.answer(text)  # the other student's batcher: no teacher call
        except Exception:  # noqa: BLE001 - a shadow that fails costs the request nothing
            self.shed += 1
            return
        finally:
            self.behind -= 1
        current, candidate = (said, served) if by_candidate else (served, said)
        agreed = current.label is not None and current.label == candidate.label
        self.telemetry.shadow.labels("yes" if agreed else "no").inc()
        self.log.add(
            {
                "id": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
                "served_by": "candidate" if by_candidate else "current",
                "current": current.label,
                "current_confidence": round(current.confidence, 6),
                "candidate": candidate.label,
                "candidate_confidence": round(candidate.confidence, 6),
                "routed": served.routed,
                "teacher": served.teacher_label,
            }
        )

    async def drain(self, grace_s: float = 30) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        self.log.close()


# ---------------------------------------------------------------------------------------------
# distill shadow-report


def _share(right: int, n: int) -> dict[str, Any]:
    low, high = wilson(right, n)
    return {"agree": right, "of": n, "share": round(right / n, 6) if n else None, "ci_low": low, "ci_high": high}


def shadow_summary(path: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    if not records:
        raise ValueError(f"{path} holds no shadow records: was the server started with --shadow?")
    both = [r for r in records if r.get("current") is not None and r.get("candidate") is not None]
    taught = [r for r in records if r.get("routed") and r.get("teacher") is not None]
    return {
        "records": len(records),
        "served_by_candidate": sum(r.get("served_by") == "candidate" for r in records),
        "candidate_vs_current": _share(sum(r["current"] == r["candidate"] for r in both), len(both)),
        "candidate_vs_teacher": _share(sum(r["candidate"] == r["teacher"] for r in taught), len(taught)),
        "current_vs_teacher": _share(sum(r["current"] == r["teacher"] for r in taught), len(taught)),
    }


def shadow_text(summary: dict[str, Any]) -> str:
    def line(name: str, s: dict[str, Any]) -> str:
        if not s["of"]:
            return f"{name}: no requests to compare"
        return (
            f"{name}: {s['share']:.1%} ({s['agree']:,} of {s['of']:,}; 95% interval "
            f"{s['ci_low']:.1%} to {s['ci_high']:.1%})"
        )

    lines = [
        f"shadow: {summary['records']:,} requests ({summary['served_by_candidate']:,} answered by the candidate)",
        line("candidate agrees with the current student", summary["candidate_vs_current"]),
        line("on routed requests, candidate agrees with the teacher", summary["candidate_vs_teacher"]),
        line("on routed requests, current agrees with the teacher", summary["current_vs_teacher"]),
    ]
    return "\n".join(lines)
