"""The embedder interface every part of SemSR uses to turn texts into unit vectors.

An :class:`EmbeddingProvider` has a stable ``id`` (it keys the on-disk cache and names Chroma collections,
so two different models or settings never share vectors) and a ``dim``. ``embed`` returns float32 rows
of unit length, so a dot product is the cosine similarity everywhere downstream.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from sessiondata.errors import ConfigError


class EmbeddingProvider(ABC):
    """Texts in, L2-normalised float32 vectors of shape (n, dim) out."""

    @property
    @abstractmethod
    def id(self) -> str:
        """Stable identity of the model *and* every setting that changes its vectors."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; empty or whitespace-only texts are a :class:`ConfigError`."""
        clean = check_texts(texts)
        if not clean:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._embed(clean), dtype=np.float32)
        if vectors.shape != (len(clean), self.dim):
            raise ConfigError(
                "embedder", self.id, f"returned shape {vectors.shape}, expected ({len(clean)}, {self.dim})"
            )
        return l2_normalise(vectors)

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed already-checked, whitespace-normalised texts (rows need not be normalised yet)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


def normalise_text(text: str) -> str:
    """Collapse runs of whitespace; the cache key and the embedder both see this form."""
    return " ".join(text.split())


def check_texts(texts: Sequence[str]) -> list[str]:
    """Whitespace-normalised texts; a non-string, empty or blank entry is a :class:`ConfigError`."""
    if isinstance(texts, str):
        raise ConfigError("texts", texts[:60], "pass a list of texts, not one string")
    clean = []
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(f"texts[{position}]", text, "must be a string")
        normalised = normalise_text(text)
        if not normalised:
            raise ConfigError(f"texts[{position}]", text, "is empty or whitespace; there is nothing to embed")
        clean.append(normalised)
    return clean


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); an all-zero row is a :class:`ConfigError` (no direction)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if vectors.size and not np.all(np.isfinite(norms)):
        raise ConfigError("vectors", "non-finite", "an embedding contains NaN or infinity")
    zero = np.flatnonzero(norms[:, 0] == 0) if vectors.size else np.empty(0, dtype=np.int64)
    if zero.size:
        raise ConfigError("vectors", f"row {int(zero[0])}", "is all zeros and cannot be normalised")
    return (vectors / norms).astype(np.float32, copy=False)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    """``text`` reduced to characters safe in file and collection names."""
    return _UNSAFE.sub("-", text).strip("-._") or "x"
