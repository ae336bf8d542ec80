"""On-disk embedding cache: one SQLite file, keyed by (embedder id, sha256 of the normalised text).

Rebuilding an index, re-tuning a model or re-running an evaluation then never embeds the same title
twice. Vectors are stored as raw float32 bytes. SQLite (WAL mode, busy timeout) lets several processes
share one cache safely. :class:`CachedProvider` wraps any provider with it, so queries are cached too.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from embeddings.base import EmbeddingProvider, check_texts
from sessiondata.errors import ConfigError

CACHE_FILE = "cache.sqlite"
_LOOKUP_CHUNK = 500  # SQLite's default limit on host parameters is 999


def text_key(text: str) -> str:
    """sha256 of the whitespace-normalised text (callers pass normalised text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by (embedder id, text key) in ``<directory>/cache.sqlite``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = self.directory / CACHE_FILE
            self._connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " embedder TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (embedder, key))"
            )
            self._connection.commit()
        except (OSError, sqlite3.Error) as error:
            raise ConfigError("cache_dir", str(directory), f"cannot open the embedding cache: {error}") from None
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connection:
            yield self._connection

    def get(self, embedder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``keys`` present."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._transaction() as connection:
            for start in range(0, len(unique), _LOOKUP_CHUNK):
                chunk = unique[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, dim, vector FROM vectors WHERE embedder = ? AND key IN ({marks})",
                    [embedder, *chunk],
                )
                for key, dim, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put(self, embedder: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        rows = [(embedder, key, int(vector.size), vector.tobytes()) for key, vector in zip(keys, vectors, strict=True)]
        with self._transaction() as connection:
            connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def count(self, embedder: str | None = None) -> int:
        with self._transaction() as connection:
            if embedder is None:
                return int(connection.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
            return int(connection.execute("SELECT COUNT(*) FROM vectors WHERE embedder = ?", [embedder]).fetchone()[0])

    def close(self) -> None:
        self._connection.close()


class CachedProvider(EmbeddingProvider):
    """``inner`` with a cache in front: only texts never embedded before by that embedder reach it."""

    def __init__(self, inner: EmbeddingProvider, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.misses = 0  # texts that had to be embedded

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, batch: int = 4096, progress: bool = False) -> np.ndarray:
        clean = check_texts(texts)
        keys = [text_key(text) for text in clean]
        found = self.cache.get(self.id, keys)
        todo = list(dict.fromkeys(text for text, key in zip(clean, keys, strict=True) if key not in found))
        if todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc=f"embed {self.id}", unit="text", disable=not progress)
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                vectors = self.inner.embed(chunk)
                chunk_keys = [text_key(text) for text in chunk]
                self.cache.put(self.id, chunk_keys, vectors)
                found.update(zip(chunk_keys, vectors, strict=True))
                self.misses += len(chunk)
                bar.update(len(chunk))
            bar.close()
        if not clean:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)

    def _embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - embed() is overridden
        return self.embed(texts)
