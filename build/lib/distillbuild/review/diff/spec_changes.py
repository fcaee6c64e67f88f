"""The spec's semantic diff: both sides parsed and compared as data, one row per key path."""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

from distillbuild.secrets import SECRET_KEY_NAMES, looks_like_secret
from distillbuild.spec.loader import join_path


class _Absent:
    """A key that one side of the diff does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


def _equal(a: Any, b: Any) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def semantic_diff(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(key path, old, new) for every changed, added (old is ABSENT) and removed (new is ABSENT) key.

    Mappings are compared key by key, lists element-wise when both have the same length and
    as a whole value otherwise. Key order does not count; the new side's order is kept.
    """
    out: list[tuple[str, Any, Any]] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in b:
                walk(a[key] if key in a else ABSENT, b[key], join_path(path, key))
            for key in a:
                if key not in b:
                    out.append((join_path(path, key), a[key], ABSENT))
            return
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, join_path(path, i))
            return
        if not _equal(a, b):
            out.append((path, a, b))

    walk(old, new, "")
    return out


def _safe(value: Any, key: str = "") -> Any:
    """JSON-able, with anything that looks like a secret replaced (an old spec may predate the checks)."""
    last = re.split(r"[.\[]", key)[-1] if key else ""
    if value is ABSENT:
        return None
    if last and SECRET_KEY_NAMES.match(last) and value is not None:
        return "***"
    if isinstance(value, dict):
        return {str(k): _safe(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    if isinstance(value, str):
        if looks_like_secret(value):
            return "***"
        return re.sub(r"(://)[^/@\s]+@", r"\1***@", value)  # credentials inside a URL
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return str(value)


def change_record(key: str, old: Any, new: Any) -> dict[str, Any]:
    status = "added" if old is ABSENT else "removed" if new is ABSENT else "changed"
    return {"key": key, "status": status, "old": _safe(old, key), "new": _safe(new, key)}
