"""How stages speak: progress and summaries go to stderr, so stdout stays free for a command's
answer and DVC's log shows every stage the same way.

Long work reports through `Progress`: a rich progress bar (done/total, rate, ETA and a line of
extra figures such as dollars spent) when stderr is a terminal, and otherwise, in CI logs and
files, one plain line every few seconds and a last one at the end, so logs stay readable.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

PLAIN_INTERVAL_S = 2.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interactive() -> bool:
    """Whether stderr is a terminal a person watches (DISTILL_PROGRESS=plain forces plain lines)."""
    if os.environ.get("DISTILL_PROGRESS") == "plain":
        return False
    return sys.stderr.isatty()


class Progress:
    """Progress of `total` units of work named `what`.

    `line(done, total, rate, eta_s)` renders the plain line (and the bar's trailing figures), so
    each caller keeps its own wording: "teacher: 40/100 answered, 12/s, ETA 5s, $0.0100".
    """

    def __init__(
        self,
        what: str,
        total: int,
        line: Callable[[int, int, float, float | None], str],
        log: Callable[[str], None] = log,
        bar: bool | None = None,
    ):
        self.what, self.total, self.line, self.log = what, total, line, log
        self.done = 0
        self.started = self._last = time.monotonic()
        self._bar = self._task = None
        if (interactive() if bar is None else bar) and total > 0:
            self._start_bar()

    def _start_bar(self) -> None:
        from rich.console import Console  # rich only where a terminal will show it
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=self.total, figures="")

    def _figures(self) -> tuple[int, int, float, float | None]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        return self.done, self.total, rate, eta

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, figures=self.line(*self._figures()))
        elif time.monotonic() - self._last >= PLAIN_INTERVAL_S:
            self._last = time.monotonic()
            self.log(self.line(*self._figures()))

    def stop(self) -> None:
        """Stop the bar, if any, and print nothing more (the work failed; its error says why)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def close(self) -> None:
        """Stop the bar and leave the last figures as one plain line, on a terminal or not."""
        self.stop()
        self.log(self.line(*self._figures()))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close() if exc_type is None else self.stop()


def eta_text(eta_s: float | None) -> str:
    return f"{eta_s:.0f}s" if eta_s is not None else "?"


def rate_number(per_s: float) -> str:
    """A rate a person can read at any speed: 340, 2.5, 0.34 (a slow teacher is not 0)."""
    if per_s >= 10:
        return f"{per_s:.0f}"
    return f"{per_s:.1f}" if per_s >= 1 else f"{per_s:.2f}"


def rate_text(per_s: float) -> str:
    return f"{rate_number(per_s)}/s"
