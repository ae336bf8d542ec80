"""Shared pieces of the embedding, Chroma and semantic-recommender tests.

The real MiniLM model embeds small slices of Beauty titles; the vectors land in one on-disk cache under
pytest's session base temp dir, so every test module (and every fixture instance) after the first reads
them from the cache instead of re-embedding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.base import EmbeddingProvider
from embeddings.config import EmbedderConfig, default_provider
from sessiondata.schema import Catalog

SLICE = 300  # catalogue items used by index tests


def shared_cache_dir(factory: pytest.TempPathFactory) -> Path:
    """One embedding cache per test run (the same path from every module)."""
    path = factory.getbasetemp() / "embedding-cache"
    path.mkdir(exist_ok=True)
    return path


def minilm() -> EmbeddingProvider:
    """The process-wide MiniLM provider with one torch thread (tests share 2 cores)."""
    return default_provider(EmbedderConfig(), threads=1)


def catalog_slice(catalog: Catalog, n: int = SLICE) -> Catalog:
    """The first ``n`` items of ``catalog`` with their metadata."""
    return Catalog(
        ids=catalog.ids[:n],
        titles=catalog.titles[:n],
        metadata={column: values[:n] for column, values in catalog.metadata.items()},
    )


class CountingProvider(EmbeddingProvider):
    """A deterministic fake embedder (hashed trigrams) that counts the texts it was asked to embed."""

    def __init__(self, dim: int = 32, name: str = "counting") -> None:
        self._dim = dim
        self._name = name
        self.texts_embedded = 0
        self.calls = 0

    @property
    def id(self) -> str:
        return f"test:{self._name}-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: list[str]) -> np.ndarray:
        from fakes.openai_http import hashed_embedding

        self.calls += 1
        self.texts_embedded += len(texts)
        return np.asarray([hashed_embedding(text, self._dim) for text in texts], dtype=np.float32) + 1e-3
