"""SemSR's embedding function, registered with Chroma so collections never fall back to Chroma's default.

A collection created without an embedding function gets Chroma's ONNX default, which downloads a model on
first use and fails offline. Collections made by :mod:`tools.chroma_index` carry this function instead;
its persisted config is the :class:`~embeddings.config.EmbedderConfig`, so a new process that imports this
module can reopen a collection (Chroma rebuilds the function from the registry by name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from embeddings.base import EmbeddingProvider
from embeddings.catalog import cached
from embeddings.config import EmbedderConfig, default_provider

NAME = "semsr"


@register_embedding_function
class SemsrEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma-facing wrapper of an :class:`EmbeddingProvider` (through the on-disk embedding cache)."""

    def __init__(
        self,
        provider: EmbeddingProvider | None = None,
        config: EmbedderConfig | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.config = config or EmbedderConfig()
        self.provider = cached(provider or default_provider(self.config), cache_dir)

    def __call__(self, input: Documents) -> Embeddings:
        return list(np.asarray(self.provider.embed(list(input)), dtype=np.float32))

    @staticmethod
    def name() -> str:
        return NAME

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> SemsrEmbeddingFunction:
        return SemsrEmbeddingFunction(config=EmbedderConfig.model_validate(config.get("embedder", {})))

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.config.model_dump(mode="json"), "provider_id": self.provider.id}

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip"]
