"""How stages speak: progress and summaries go to stderr, so stdout stays free for a command's
answer and DVC's log shows every stage the same way."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
