"""Values and tables as the report page shows them, and the build files its sections read."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any


def fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if isinstance(c, (int, float)) else ''}>{fmt(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def rows_of(path: Path) -> list[dict]:
    """A JSON Lines file's rows; none when it is not written."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
