"""A session as one vector in the title-embedding space: the one definition every semantic part uses.

The title-kNN recommender, the graph's semantic retrieval, the LLM agent's fallback and the Chroma
index's session queries all pool a session's item vectors here, so a change of pooling reaches all of
them. Modes: the last item only (or, with ``lag``, the single item ``lag`` steps before it: the title
sources "similar to each of the last items"), the plain mean, or a recency-weighted mean whose weight
falls as ``decay ** distance`` from the most recent item (distance 0). Rows come back L2-normalised; a
session too short for its ``lag`` gets a zero row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

PoolingMode = Literal["last", "mean", "recency"]


def position_weights(length: int, mode: PoolingMode = "recency", decay: float = 0.5, lag: int = 0) -> np.ndarray:
    """Weights of positions 0..length-1 (oldest first) under ``mode`` (``lag``: 'last' only)."""
    if mode == "last":
        weights = np.zeros(length)
        if lag < length:
            weights[length - 1 - lag] = 1.0
        return weights
    if mode == "mean":
        return np.ones(length)
    if mode != "recency":
        raise ValueError(f"unknown pooling mode {mode!r}; use 'last', 'mean' or 'recency'")
    return decay ** np.arange(length - 1, -1, -1, dtype=np.float64)


def session_vectors(
    item_vectors: np.ndarray,
    sessions: Sequence[Sequence[int]],
    mode: PoolingMode = "recency",
    decay: float = 0.5,
    lag: int = 0,
) -> np.ndarray:
    """(len(sessions), dim) unit rows: each session's pooled item vectors (rows of ``item_vectors``)."""
    out = np.zeros((len(sessions), item_vectors.shape[1]), dtype=np.float32)
    for row, session in enumerate(sessions):
        items = np.asarray(session, dtype=np.int64)
        if items.size:
            out[row] = position_weights(items.size, mode, decay, lag).astype(np.float32) @ item_vectors[items]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
