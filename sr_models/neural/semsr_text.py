"""SemSR's two uses of text embeddings of item titles, shared by every torch model.

* **SemSR-I** (:func:`init_from_text`): the trainable item embedding table starts from the titles' text
  embeddings, reduced to the model's size by PCA and rescaled to the table's initial spread, so items with
  similar titles start close together (the LLM2BERT4Rec idea).
* **SemSR-F** (:class:`FusedEncoder`): frozen text embeddings and the trainable interaction (id) model are
  combined: a learned projection of the frozen vectors, attention over the session's projected vectors
  (query: the last item), concatenation with the id model's session representation, and a scaled cosine
  between the fused session vector and fused item vectors, trained with softmax cross-entropy.

The vectors come from one place, ``embeddings.catalog.embed_space`` (post-processing included) with the
project's embedder (MiniLM by default, cached on disk); the ``"random"`` source exists for fast tests and
development only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embeddings.catalog import embed_space
from embeddings.config import default_provider
from embeddings.postprocess import space_id
from sessiondata.errors import ConfigError
from sessiondata.schema import Catalog, Session
from sr_models.env import ModelEnv
from sr_models.neural.encoder import SessionEncoder

SemanticSource = Literal["catalog", "random"]


def title_vectors(catalog: Catalog, source: SemanticSource, env: ModelEnv) -> np.ndarray:
    """(n_items, d_text) float32 L2-normalised title embeddings, row = dense item index.

    ``"catalog"`` embeds the titles with the project's embedder (``env.embedder``, through the embedding
    cache in ``env.embeddings_dir``: the one source of title vectors), post-processed as the embedder config
    says (``env.embedder.postprocess``: :mod:`embeddings.postprocess`); ``"random"`` is for fast tests only.
    """
    if source == "random":
        rng = np.random.default_rng(12345)
        vectors = rng.standard_normal((len(catalog), 384)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    if source != "catalog":
        raise ConfigError("semantic_source", source, "choose 'catalog' (the configured embedder) or 'random'")
    provider = default_provider(env.embedder, threads=env.threads)
    vectors, _ = embed_space(
        catalog, provider, env.embedder.postprocess, cache_dir=env.embeddings_dir, progress=env.progress
    )
    if vectors.shape[0] != len(catalog):
        raise ConfigError("semantic_source", source, f"gave {vectors.shape[0]} rows for {len(catalog)} items")
    return np.asarray(vectors, dtype=np.float32)


def text_source_id(source: SemanticSource, env: ModelEnv) -> str:
    """Which vectors a SemSR model was trained on (part of its artefact key: other vectors, other model)."""
    if source == "random":
        return "random"
    return space_id(default_provider(env.embedder, threads=env.threads).id, env.embedder.postprocess)


def init_from_text(embedding: nn.Embedding, vectors: np.ndarray) -> None:
    """SemSR-I: overwrite rows 1..n of ``embedding`` with a PCA of ``vectors`` scaled to the current spread."""
    n_items, dim = vectors.shape[0], embedding.embedding_dim
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    keep = min(dim, components.shape[0])
    reduced = np.zeros((n_items, dim), dtype=np.float32)
    reduced[:, :keep] = centred @ components[:keep].T
    with torch.no_grad():
        current = embedding.weight[1 : n_items + 1]
        target_std = float(current.std())
        scaled = torch.from_numpy(reduced) * (target_std / max(float(reduced[:, :keep].std()), 1e-12))
        if keep < dim:  # more dimensions than the text vectors have: keep random values there
            scaled[:, keep:] = current[:, keep:]
        embedding.weight[1 : n_items + 1] = scaled


class FusedEncoder(SessionEncoder):
    """SemSR-F: a base id encoder fused with frozen semantic item vectors (see the module docstring)."""

    def __init__(
        self,
        base: SessionEncoder,
        vectors: np.ndarray | None,
        *,
        text_dim: int = 384,
        sem_dim: int = 64,
        fused_dim: int = 128,
        scale: float = 16.0,
        dropout: float = 0.1,
        residual: bool = False,
    ) -> None:
        super().__init__(base.n_items, fused_dim)
        if base.example_mode == "cloze":
            raise ConfigError("semantic", "fusion", f"{type(base).__name__} (cloze training) has no fused variant")
        self.example_mode = base.example_mode  # type: ignore[misc]
        self.base = base
        table = torch.zeros(base.n_items + 1, text_dim)
        if vectors is not None:
            table[1:] = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
        self.register_buffer("text", table)  # frozen: saved with the artefact, never trained
        self.project = nn.Linear(text_dim, sem_dim)
        self.query = nn.Linear(sem_dim, sem_dim)
        self.session_head = nn.Linear(base.dim + 2 * sem_dim, fused_dim)
        self.item_head = nn.Linear(base.dim + sem_dim, fused_dim)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        # optional: add the raw text cosine of the last item to every item (LLMSeqSim's score), weighted by a
        # learned scalar, so the fused model keeps the full text geometry the 64-d projection may lose
        self.residual = nn.Parameter(torch.tensor(1.0)) if residual else None
        self._table_cache: torch.Tensor | None = None

    def input_embedding(self) -> nn.Embedding:
        return self.base.input_embedding()

    def prepare_training(self, sessions: Sequence[Session]) -> None:
        self.base.prepare_training(sessions)

    def _semantic_channel(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        projected = self.dropout(self.project(self.text[inputs]))  # (B, L, s)
        valid = inputs > 0
        keys = projected.transpose(1, 2)  # (B, s, L)
        if self.example_mode == "prefix":
            last = projected[torch.arange(inputs.shape[0], device=inputs.device), (lengths - 1).clamp(min=0)]
            weights = (self.query(last).unsqueeze(1) @ keys).squeeze(1) / math.sqrt(keys.shape[1])  # (B, L)
            weights = weights.masked_fill(~valid, float("-inf")).softmax(-1)
            context = (weights.unsqueeze(-1) * projected).sum(1)
            return torch.cat([context, last], dim=-1)
        width = inputs.shape[1]
        weights = (self.query(projected) @ keys) / math.sqrt(keys.shape[1])  # (B, L, L)
        future = torch.ones(width, width, dtype=torch.bool, device=inputs.device).triu(1)
        weights = weights.masked_fill(future | ~valid.unsqueeze(1), float("-inf"))
        weights = weights.masked_fill(~valid.unsqueeze(-1), 0.0).softmax(-1)  # padded queries: uniform, unused
        context = weights @ projected
        return torch.cat([context, projected], dim=-1)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.base(inputs, lengths)
        fused = F.normalize(self.session_head(torch.cat([hidden, self._semantic_channel(inputs, lengths)], -1)), dim=-1)
        if self.residual is None:
            return fused
        if self.example_mode == "prefix":
            last = inputs[torch.arange(inputs.shape[0], device=inputs.device), (lengths - 1).clamp(min=0)]
        else:
            last = inputs  # each position's own item is the last item of that prefix
        return torch.cat([fused, self.text[last]], dim=-1)  # the text part is split off again in logits

    def _residual_scores(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.residual is None:
            return hidden, None
        fused, text = hidden[..., : self.dim], hidden[..., self.dim :]
        return fused, self.residual * self.scale * (text @ self.text[1 : self.n_items + 1].T)

    def item_table(self) -> torch.Tensor:
        text = self.project(self.text[1 : self.n_items + 1])
        return F.normalize(self.item_head(torch.cat([self.base.item_table(), text], dim=-1)), dim=-1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden, extra = self._residual_scores(hidden)
        scores = self.scale * hidden @ self._scoring_table().T
        return scores if extra is None else scores + extra

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        fused, text = (hidden, None) if self.residual is None else (hidden[..., : self.dim], hidden[..., self.dim :])
        rows = torch.cat([self.base.item_table()[items], self.project(self.text[items + 1])], dim=-1)
        scores = self.scale * fused @ F.normalize(self.item_head(rows), dim=-1).T
        if text is None:
            return scores
        return scores + self.residual * self.scale * (text @ self.text[items + 1].T)

    def _scoring_table(self) -> torch.Tensor:
        """:meth:`item_table`, computed once at inference (it is fixed then) and afresh while training."""
        if self.training or torch.is_grad_enabled():
            self._table_cache = None
            return self.item_table()
        if self._table_cache is None:
            self._table_cache = self.item_table()
        return self._table_cache

    def train(self, mode: bool = True) -> FusedEncoder:
        if mode:  # weights may change from here on; eval() keeps a valid cache
            self._table_cache = None
        return super().train(mode)

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        self._table_cache = None
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[arg-type]


class LateFusedEncoder(FusedEncoder):
    """SemSR-F, late variant (``fusion_head="late"``): the id model keeps its own scores (dot product, so
    item popularity stays in the norms) and the semantic channel adds a learned-weight, scaled cosine
    between the session's attention-pooled frozen title vectors and each item's projected title vector.

    The concatenating head of :class:`FusedEncoder` puts both sides through one cosine, which on Beauty
    scored below SemSR-I on validation; this head can only add the text signal to the id model's scores.
    """

    def __init__(
        self,
        base: SessionEncoder,
        vectors: np.ndarray | None,
        *,
        text_dim: int = 384,
        sem_dim: int = 64,
        scale: float = 16.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(base, vectors, text_dim=text_dim, sem_dim=sem_dim, scale=scale, dropout=dropout)
        self.session_head = nn.Linear(2 * sem_dim, sem_dim)
        self.item_head = None  # type: ignore[assignment]
        self.weight = nn.Parameter(torch.tensor(1.0))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.base(inputs, lengths)
        semantic = F.normalize(self.session_head(self._semantic_channel(inputs, lengths)), dim=-1)
        return torch.cat([hidden, semantic], dim=-1)

    def item_table(self) -> torch.Tensor:
        return F.normalize(self.project(self.text[1 : self.n_items + 1]), dim=-1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        own, semantic = hidden[..., : self.base.dim], hidden[..., self.base.dim :]
        return self.base.logits(own) + self.weight * self.scale * semantic @ self._scoring_table().T

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        own, semantic = hidden[..., : self.base.dim], hidden[..., self.base.dim :]
        table = F.normalize(self.project(self.text[items + 1]), dim=-1)
        return self.base.candidate_scores(own, items, sparse=sparse) + self.weight * self.scale * semantic @ table.T
