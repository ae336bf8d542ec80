"""SQLite cache of LLM responses, for cheap reruns and reproducible (replay-only) evaluations.

The key is a hash of everything that decides the answer: endpoint identity, model, sampling parameters,
the prompt version, the rendered prompt and the output schema. Modes:

- ``live``: no cache at all (every call goes to the model);
- ``record``: a hit is reused, a miss is sent to the model and stored once its reply passed validation;
- ``replay``: hits only; a miss raises :class:`~agents.errors.CacheMiss` (an evaluation that is not
  exactly the recorded one must not pass silently).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agents.config import CacheMode
from agents.errors import CacheMiss
from sessiondata.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RawReply(BaseModel):
    """What came back from one chat completion, before validation against the output schema."""

    tool_args: dict[str, Any] | None = None  # parsed arguments of the first tool call
    tool_arguments_text: str | None = None  # raw arguments when they were not valid JSON
    content: str = ""
    finish_reason: str | None = None
    usage: Usage = Usage()


def cache_key(
    *,
    endpoint: str,
    model: str,
    params: dict[str, Any],
    prompt_version: str,
    prompt_digest: str,
    schema: dict[str, Any],
) -> str:
    """Stable hash of everything that decides a response."""
    payload = json.dumps(
        {
            "endpoint": endpoint,
            "model": model,
            "params": params,
            "prompt_version": prompt_version,
            "prompt": prompt_digest,
            "schema": schema,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A thread-safe SQLite file of responses; ``mode`` decides whether it is read, written or both."""

    def __init__(self, path: Path, mode: CacheMode = "record") -> None:
        if mode not in ("live", "record", "replay"):
            raise ConfigError("llm.cache_mode", mode, "must be 'live', 'record' or 'replay'")
        self.path = Path(path)
        self.mode: CacheMode = mode
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        if mode == "replay" and not self.path.exists():
            raise ConfigError("llm.cache_path", str(self.path), "replay-only mode needs an existing response cache")

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            connection.commit()
            self._connection = connection
        return self._connection

    def get(self, key: str) -> RawReply | None:
        """The stored reply, or None (always None in live mode)."""
        if self.mode == "live":
            return None
        with self._lock:
            row = self._db().execute("SELECT reply FROM responses WHERE key = ?", (key,)).fetchone()
        return RawReply.model_validate_json(row[0]) if row else None

    def lookup(self, key: str, what: str) -> RawReply | None:
        """Like :meth:`get`, but a miss in replay mode raises :class:`CacheMiss`."""
        reply = self.get(key)
        if reply is None and self.mode == "replay":
            raise CacheMiss(key, what)
        return reply

    def put(self, key: str, reply: RawReply, *, endpoint: str, model: str, prompt_name: str, version: str) -> None:
        """Store a reply (record mode only; live and replay never write)."""
        if self.mode != "record":
            return
        with self._lock:
            db = self._db()
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, endpoint, model, prompt_name, version, reply.model_dump_json(), time.time()),
            )
            db.commit()

    def forget(self, key: str) -> None:
        """Drop a stored reply (one that no longer passes validation); replay mode never writes."""
        if self.mode != "record":
            return
        with self._lock:
            db = self._db()
            db.execute("DELETE FROM responses WHERE key = ?", (key,))
            db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
