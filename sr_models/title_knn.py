"""Semantic session recommender (the LLMSeqSim idea of Harte et al., RecSys 2023) over title embeddings.

A session becomes one vector built from its items' title embeddings — the last item only, the plain mean,
or a recency-weighted mean (weight ``decay ** distance`` from the last item) — and every catalogue item is
scored by cosine similarity to it: one numpy matmul over the unit-row matrix from
:func:`embeddings.embed_catalog`, so it ranks the full catalogue exactly. An optional popularity prior
(``popularity_weight * log1p(count) / log1p(max count)`` over training events) breaks the near-ties of
many similar titles in favour of items people actually chose, and ``candidates='train'`` restricts the
ranking to items seen in training (the protocol's targets always are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings.catalog import embed_catalog
from embeddings.config import EmbedderConfig, default_provider
from sr_models.base import Recommender, TrainData
from sr_models.popularity import item_counts
from sr_models.ranking import NEVER


class SemanticConfig(BaseModel):
    """Hyper-parameters of :class:`SemanticRecommender`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["last", "mean", "recency"] = Field("recency", description="How prompt items form the query.")
    decay: float = Field(0.5, gt=0.0, le=1.0, description="'recency': weight decay**distance from the last item.")
    popularity_weight: float = Field(0.0, ge=0.0, description="Weight of the log-popularity prior added to cosine.")
    candidates: Literal["all", "train"] = Field("all", description="'train': only items seen in training sessions.")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, description="Title embedder (default MiniLM).")


def session_weights(length: int, mode: str, decay: float) -> np.ndarray:
    """Weights of prompt positions 0..length-1 (oldest first) for ``mode``."""
    if mode == "last":
        weights = np.zeros(length)
        weights[-1] = 1.0
        return weights
    if mode == "mean":
        return np.ones(length)
    distance = np.arange(length - 1, -1, -1, dtype=np.float64)
    return decay**distance


class SemanticRecommender(Recommender):
    """Cosine similarity of catalogue titles to the session's (weighted) title embedding."""

    name = "semantic"

    def __init__(self, config: SemanticConfig | None = None, **overrides: Any) -> None:
        base = config or SemanticConfig()
        merged = {**base.model_dump(), **overrides}
        self.config = SemanticConfig.model_validate(merged)

    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def fit(self, data: TrainData) -> Self:
        provider = default_provider(self.config.embedder)
        self.vectors = embed_catalog(data.catalog, provider)
        self.embedder_id = provider.id
        self.n_items = data.n_items
        counts = item_counts(data)
        self.prior = self.config.popularity_weight * np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
        self.mask = np.where(counts > 0, 0.0, NEVER) if self.config.candidates == "train" else np.zeros(self.n_items)
        return self

    def session_vectors(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """One unit vector per prompt (rows of the same space as the catalogue matrix)."""
        queries = np.zeros((len(prompts), self.vectors.shape[1]), dtype=np.float32)
        for row, prompt in enumerate(prompts):
            items = np.asarray(prompt, dtype=np.int64)
            weights = session_weights(len(items), self.config.mode, self.config.decay).astype(np.float32)
            queries[row] = weights @ self.vectors[items]
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        return queries / np.maximum(norms, 1e-12)

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        scores = (self.session_vectors(prompts) @ self.vectors.T).astype(np.float64)
        scores += self.prior
        scores += self.mask
        return scores
