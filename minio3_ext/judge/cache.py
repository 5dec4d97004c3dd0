"""Persistent verdict cache in sqlite.

Keyed by ``sha256(judge settings, question, ground truth, normalised prediction)``,
where the judge settings are :meth:`JudgeConfig.key_settings` (preset, URL, model, prompt and
parser version, every field that decides a verdict): another preset, URL or parser never
reads this judge's verdicts. Only LLM verdicts are stored (never unscorable ones), so a failure is
retried on the next run. WAL journal + a busy timeout make it safe for several
processes (e.g. Ray reward workers) to read and write one file; every write is one
short transaction with ``INSERT OR IGNORE`` (two processes that judged the same key
agree, the first one wins).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable, Mapping

__all__ = ["VerdictCache", "cache_key"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    score REAL NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    reply TEXT,
    created REAL NOT NULL
)"""


def cache_key(settings: Mapping[str, Any], question: str, ground_truth: str, norm_prediction: str) -> str:
    """The cache key of one verdict: ``settings`` (:meth:`JudgeConfig.key_settings`) and the inputs."""
    payload = json.dumps([dict(sorted(settings.items())), question, ground_truth, norm_prediction],
                         ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """Thread-safe, fork-safe handle on one sqlite cache file."""

    def __init__(self, path: str, busy_timeout_s: float = 30.0):
        self.path = os.fspath(path)
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._connection()  # fail early on an unwritable path

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross fork(): reopen in a child process.
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, check_same_thread=False,
                                   isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, keys: Iterable[str], on_bad: Callable[[str, object], None] | None = None) -> dict[str, float]:
        """Cached scores by key. An entry whose score is not a number in [0, 1] (a file
        edited or written by something else) is not a verdict: it is left out (judged
        again), removed so the new verdict can be stored, and reported to ``on_bad``."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, float] = {}
        bad: list[tuple[str, object]] = []
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, score in conn.execute(f"SELECT key, score FROM verdicts WHERE key IN ({marks})", chunk):
                    if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score) \
                            and 0.0 <= score <= 1.0:
                        found[key] = float(score)
                    else:
                        bad.append((key, score))
            if bad:
                conn.executemany("DELETE FROM verdicts WHERE key = ?", [(k,) for k, _ in bad])
        for key, score in bad:
            if on_bad is not None:
                on_bad(key, score)
        return found

    def put_many(self, rows: Iterable[tuple[str, float, str, str, str | None]]) -> None:
        """Store ``(key, score, model, prompt_version, reply)`` rows in one transaction."""
        now = time.time()
        data = [(k, s, m, v, r, now) for k, s, m, v, r in rows]
        if not data:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR IGNORE INTO verdicts (key, score, model, prompt_version, reply, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)", data)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
