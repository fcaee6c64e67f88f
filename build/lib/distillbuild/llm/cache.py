"""The teacher cache: one SQLite row per request, keyed by everything that changes the answer.

It sits outside DVC's outputs (`.distill/cache/` at the repository root, or
$DISTILL_CACHE_DIR), so DVC deleting a stage's outputs never throws a paid answer away.
WAL mode with a commit per answer: a crash or `kill -9` loses at most the answers in flight.
No secret is part of a key or a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from distillbuild import layout

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    response TEXT NOT NULL
)
"""


def request_key(endpoint: str, body: dict[str, Any]) -> str:
    """sha256 of the endpoint identity and the full request body (model, messages, every parameter)."""
    canonical = json.dumps(
        {"endpoint": endpoint, "body": body}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_dir(repo_root: Path) -> Path:
    override = os.environ.get("DISTILL_CACHE_DIR")
    return Path(override) if override else repo_root / layout.CACHE_DIR


class TeacherCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        self.db.execute(SCHEMA)

    @classmethod
    def for_repo(cls, repo_root: Path) -> "TeacherCache":
        return cls(cache_dir(repo_root) / "teacher.sqlite")

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, response in self.db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk):
                found[key] = json.loads(response)
        return found

    def missing(self, keys: list[str]) -> list[str]:
        held = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            held |= {
                k
                for (k,) in self.db.execute(
                    f"SELECT key FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
            }
        return [k for k in keys if k not in held]

    def put(self, key: str, endpoint: str, model: str, response: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO responses (key, endpoint, model, created, response) VALUES (?, ?, ?, ?, ?)",
            (key, endpoint, model, time.time(), json.dumps(response, separators=(",", ":"))),
        )

    def stats(self) -> dict[str, Any]:
        count, first, last = self.db.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
        by_model = dict(self.db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model"))
        by_endpoint = dict(
            self.db.execute("SELECT endpoint, COUNT(*) FROM responses GROUP BY endpoint ORDER BY endpoint")
        )
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {
            "path": str(self.path),
            "entries": count,
            "bytes": size,
            "first": first,
            "last": last,
            "by_model": by_model,
            "by_endpoint": by_endpoint,
        }

    def prune(
        self,
        older_than_s: float | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete entries matching every given condition; returns how many (would be) deleted."""
        where, args = [], []
        if older_than_s is not None:
            where.append("created < ?")
            args.append(time.time() - older_than_s)
        if model is not None:
            where.append("model = ?")
            args.append(model)
        if endpoint is not None:
            where.append("endpoint = ?")
            args.append(endpoint)
        clause = " WHERE " + " AND ".join(where) if where else ""
        (count,) = self.db.execute(f"SELECT COUNT(*) FROM responses{clause}", args).fetchone()
        if not dry_run and count:
            self.db.execute(f"DELETE FROM responses{clause}", args)
            self.db.execute("VACUUM")
        return count

    def close(self) -> None:
        self.db.close()


def cached_keys(repo_root: Path, keys: list[str]) -> set[str]:
    """Which of `keys` the repository's cache holds (for estimates: nothing is asked)."""
    cache = TeacherCache.for_repo(repo_root)
    try:
        return set(cache.get_many(list(dict.fromkeys(keys))))
    finally:
        cache.close()
