"""Bounded conversation threads: expiry and checkpoint pruning of ``<home>/threads.sqlite``.

LangGraph's SQLite checkpointer keeps every checkpoint of every thread forever (about 190 KB a turn).
After each turn on a thread, :class:`ThreadJanitor` records when the thread was last used, keeps only its
``keep`` latest checkpoints (what the thread's state and a pending question need) and deletes every
thread untouched for ``ttl_days`` (``Settings.thread_ttl_days``, default 30).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = "CREATE TABLE IF NOT EXISTS semsr_thread_seen (thread_id TEXT PRIMARY KEY, last_used REAL NOT NULL)"


class ThreadJanitor:
    """Keeps one checkpointer database bounded (its own connection; SQLite serialises the writers)."""

    def __init__(self, path: Path, *, ttl_days: float, keep: int) -> None:
        self.path = path
        self.ttl_s = ttl_days * 86_400
        self.keep = keep
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(str(self.path), timeout=30)
        connection.execute(_SCHEMA)
        return connection

    def touched(self, thread_id: str, *, now: float | None = None) -> None:
        """After a turn on ``thread_id``: stamp it, prune its old checkpoints, drop expired threads."""
        now = time.time() if now is None else now
        with self._lock, self._connect() as db:
            db.execute("INSERT OR REPLACE INTO semsr_thread_seen VALUES (?, ?)", (thread_id, now))
            if _has_table(db, "checkpoints"):
                kept = "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC LIMIT ?"
                for table in ("writes", "checkpoints"):
                    if _has_table(db, table):
                        db.execute(
                            f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id NOT IN ({kept})",
                            (thread_id, thread_id, self.keep),
                        )
            self.expire(db, now)

    def sweep(self, *, now: float | None = None) -> list[str]:
        """Drop expired threads now (before a thread is read, so an expired one reads as unknown)."""
        if not self.path.exists():
            return []
        with self._lock, self._connect() as db:
            return self.expire(db, time.time() if now is None else now)

    def expire(self, db: sqlite3.Connection, now: float) -> list[str]:
        """Delete every thread last used more than ``ttl_days`` ago; return their ids."""
        expired = [
            row[0]
            for row in db.execute("SELECT thread_id FROM semsr_thread_seen WHERE last_used < ?", (now - self.ttl_s,))
        ]
        for thread_id in expired:
            for table in ("writes", "checkpoints", "semsr_thread_seen"):
                if _has_table(db, table):
                    db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
        return expired


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
