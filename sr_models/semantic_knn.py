"""V-SKNN with semantic neighbours (``vsknn-sem``): neighbour sessions found by title vectors as well as by
shared items.

V-SKNN (:class:`sr_models.knn.SessionKNN`) only ever compares the prompt with training sessions that share
one of its items, so a session of rarely bought items has few neighbours and one of new items has none.
Here every training session also has a session vector (:func:`embeddings.session.session_vectors`, the
one pooling code, over the title kNN's post-processed item vectors: centred and whitened as tuned for
``title-knn``), kept as one unit-row matrix. A prompt's vector against that matrix (one matrix product)
gives every training session's cosine; the candidate neighbours are V-SKNN's (sessions sharing an item,
sampled as V-SKNN samples) plus the ``vector_neighbours`` sessions of highest cosine, and each candidate's
similarity is ``(1 - blend) * overlap + blend * max(cosine, 0)``. The ``k`` most similar are the
neighbours and their items are scored by V-SKNN's own code (STAN position decay, IDF, back-fill). With
``blend=0`` the vector-only candidates have similarity 0 and never compete: the scores are V-SKNN's.

The V-SKNN part (k aside) and the vectors' post-processing are inherited from the ``vsknn`` and
``title-knn`` tuning records (:data:`sr_models.registry.INHERITS`); this model's own grid tunes the
session-vector choices (the prompt's pooling and decay, the training sessions' pooling), ``blend``,
``vector_neighbours`` and ``k`` on the validation fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field

from embeddings.config import EmbedderConfig
from embeddings.session import PoolingMode, session_vectors
from sr_models.base import TrainData
from sr_models.env import ModelEnv
from sr_models.knn import KNNConfig, SessionKNN
from sr_models.title_knn import TitleKNN, TitleKNNConfig

# the title vectors' space: the same fields (and meaning) as the title kNN's, inherited from its tuning
SPACE_FIELDS = ("center", "whiten", "keep", "adapter_epochs", "adapter_window", "adapter_lr", "embedder")
_space = TitleKNNConfig.model_fields


class SemanticKNNConfig(KNNConfig):
    """V-SKNN's hyper-parameters plus how session vectors are made and weighed."""

    blend: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the session-vector cosine in similarity.")
    vector_neighbours: int = Field(100, ge=1, description="Candidate neighbours added by highest cosine.")
    vector_mode: PoolingMode = Field("recency", description="The prompt's session vector (embeddings.session).")
    vector_decay: float = Field(0.7, gt=0.0, le=1.0, description="'recency': weight decay**distance from the end.")
    neighbour_pooling: Literal["same", "mean"] = Field(
        "same", description="Training sessions' vectors: pooled as the prompt is, or their plain mean."
    )
    center: bool = copy(_space["center"])
    whiten: float = copy(_space["whiten"])
    keep: float = copy(_space["keep"])
    adapter_epochs: int = copy(_space["adapter_epochs"])
    adapter_window: int = copy(_space["adapter_window"])
    adapter_lr: float = copy(_space["adapter_lr"])
    embedder: EmbedderConfig | None = copy(_space["embedder"])

    def title_config(self) -> TitleKNNConfig:
        """The title kNN whose item vectors (and prompt pooling) this model uses."""
        space = {name: getattr(self, name) for name in SPACE_FIELDS}
        return TitleKNNConfig(mode=self.vector_mode, decay=self.vector_decay, **space)


class SemanticKNN(SessionKNN):
    """V-SKNN whose neighbours come from item overlap and session-vector cosine (see the module docstring)."""

    name = "vsknn-sem"
    config: SemanticKNNConfig

    def __init__(
        self, config: SemanticKNNConfig | None = None, *, env: ModelEnv | None = None, **overrides: Any
    ) -> None:
        base = config or SemanticKNNConfig()
        self.config = SemanticKNNConfig.model_validate({**base.model_dump(), **overrides})
        self.env = env or ModelEnv()
        self.titles = TitleKNN(self.config.title_config(), env=self.env)

    def params(self) -> dict[str, Any]:
        params = self.config.model_dump(mode="json", exclude={"embedder"})
        params["embedder"] = self.titles.params()["embedder"]
        return params

    def fit(self, data: TrainData) -> Self:
        super().fit(data)
        self.titles.fit(data)
        self.vectors = self.titles.vectors
        pooling: PoolingMode = self.config.vector_mode if self.config.neighbour_pooling == "same" else "mean"
        self.session_matrix = session_vectors(
            self.vectors, [session.items for session in data.sessions], pooling, self.config.vector_decay
        )
        return self

    def session_cosines(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """(len(prompts), training sessions): cosine of each prompt's session vector to every training
        session's (one matrix product)."""
        return self.titles.session_vectors(prompts) @ self.session_matrix.T

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        cfg = self.config
        cosines = np.maximum(self.session_cosines(prompts), 0.0).astype(np.float64)
        n_vector = min(cfg.vector_neighbours, cosines.shape[1])
        out = np.empty((len(prompts), self.n_items), dtype=np.float64)
        for row, prompt in enumerate(prompts):
            prompt_arr = np.asarray(prompt, dtype=np.int64)
            overlap = self._candidates(np.unique(prompt_arr))
            nearest = np.argpartition(-cosines[row], n_vector - 1)[:n_vector]
            # V-SKNN's candidates first, in V-SKNN's order, then the vector-only ones
            candidates = np.concatenate([overlap, np.setdiff1d(nearest, overlap, assume_unique=True)])
            out[row] = self._score_neighbours(prompt_arr, candidates, (cosines[row, candidates], cfg.blend))
        return out

    _STATE = (*SessionKNN._STATE, "session_matrix")

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), **{f"titles__{k}": v for k, v in self.titles.state().items()}}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        super().restore(state)
        self.titles.restore({k.removeprefix("titles__"): v for k, v in state.items() if k.startswith("titles__")})
        self.vectors = self.titles.vectors
