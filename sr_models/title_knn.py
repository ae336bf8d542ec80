"""Title kNN (the LLMSeqSim idea of Harte et al., RecSys 2023): items scored by how close their titles'
embeddings are to the session's.

A session becomes one vector (:func:`embeddings.session.session_vectors`: the last item, the plain mean, or
a recency-weighted mean; ``mode='last'`` with ``lag`` = 1, 2 is the item one or two before the last, so one
source per recent item, as strong KDD Cup 2023 solutions use) and every catalogue item is scored by cosine
similarity to it: one numpy matmul over the unit-row matrix from :func:`embeddings.embed_catalog`, so it
ranks the full catalogue exactly. Above ``env.ann.above_items`` items it searches an inverted-file index
built at fit time instead (:mod:`sr_models.ivf`: the probed lists scored exactly, the rest never listed,
the probe chosen on the training fold for a recall of the exact lists that the artefact records).
The catalogue's vectors can first be post-processed
(:mod:`embeddings.postprocess`: centring, PCA to a share ``keep`` of the directions, whitening of strength
``whiten``), which removes the anisotropy of pretrained text embeddings; all three are tuned on validation
like the pooling. An optional popularity prior (``popularity_weight * log1p(count) / log1p(max count)`` over
training events) breaks the near-ties of many similar titles in favour of items people actually chose, and
``candidates='train'`` restricts the ranking to items seen in training (the protocol's targets always are).

This is the project's semantic source in every role: the ``semantic`` pipeline, the graph's
session-semantics source and the fallback of the LLM agent all use this class with its tuned settings.
SemSR-I/-F (title vectors inside torch models) live in :mod:`sr_models.neural.semsr_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings.adapter import AdapterConfig, adapted_vectors
from embeddings.base import EmbeddingProvider
from embeddings.catalog import embed_catalog, postprocess_catalog
from embeddings.config import EmbedderConfig, embedder_label, fold_provider
from embeddings.postprocess import PostprocessConfig, space_id
from embeddings.session import PoolingMode, position_weights, session_vectors
from sr_models.base import Evidence, Recommender, TrainData
from sr_models.env import ModelEnv
from sr_models.ivf import IVFIndex
from sr_models.popularity import item_counts
from sr_models.ranking import NEVER, top_k, top_k_among


class TitleKNNConfig(BaseModel):
    """Hyper-parameters of :class:`TitleKNN`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: PoolingMode = Field("recency", description="How prompt items form the query.")
    decay: float = Field(0.5, gt=0.0, le=1.0, description="'recency': weight decay**distance from the last item.")
    lag: int = Field(0, ge=0, le=10, description="'last': the item this many steps before the last one.")
    popularity_weight: float = Field(0.0, ge=0.0, description="Weight of the log-popularity prior added to cosine.")
    candidates: Literal["all", "train"] = Field("all", description="'train': only items seen in training sessions.")
    center: bool = Field(False, description="Post-processing: subtract the catalogue's mean title vector.")
    whiten: float = Field(0.0, ge=0.0, le=1.0, description="Whitening strength alpha (singular value^-alpha).")
    keep: float = Field(1.0, gt=0.0, le=1.0, description="Share of leading principal directions kept (PCA).")
    adapter_epochs: int = Field(0, ge=0, le=100, description="Contrastive adapter epochs on training pairs (0 = none).")
    adapter_window: int = Field(1, ge=1, le=10, description="Adapter pairs: items at most this many steps apart.")
    adapter_lr: float = Field(1e-3, gt=0.0, le=1.0, description="Adapter learning rate (Adam).")
    embedder: EmbedderConfig | None = Field(None, description="Title embedder; None = the project's (settings).")

    @property
    def adapter(self) -> AdapterConfig:
        return AdapterConfig(epochs=self.adapter_epochs, window=self.adapter_window, lr=self.adapter_lr)

    @property
    def postprocess(self) -> PostprocessConfig:
        return PostprocessConfig(center=self.center, alpha=self.whiten, keep=self.keep)


class TitleKNN(Recommender):
    """Cosine similarity of catalogue titles to the session's (pooled) title embedding."""

    name = "title-knn"

    def __init__(self, config: TitleKNNConfig | None = None, *, env: ModelEnv | None = None, **overrides: Any) -> None:
        base = config or TitleKNNConfig()
        self.config = TitleKNNConfig.model_validate({**base.model_dump(), **overrides})
        self.env = env or ModelEnv()
        self.index: IVFIndex | None = None

    @property
    def embedder_config(self) -> EmbedderConfig:
        return self.config.embedder or self.env.embedder

    def provider(self, train_digest: str) -> EmbeddingProvider:
        """The title embedder for the fold whose training sessions ``train_digest`` names (a fine-tuned
        ``minilm-adapted`` is that fold's own model; see :func:`embeddings.finetuned.resolve_embedder`)."""
        env = self.env
        return fold_provider(
            self.embedder_config, train_digest=train_digest, embeddings_dir=env.embeddings_dir, threads=env.threads
        )

    def params(self) -> dict[str, Any]:
        params = self.config.model_dump(mode="json", exclude={"embedder"})
        digest = getattr(self, "train_digest", "")
        if digest:
            vectors_id = self.provider(digest).id
        else:  # not fitted: a fine-tuned embedder's fold is not known yet
            vectors_id = embedder_label(self.embedder_config, threads=self.env.threads)
        adapter = self.config.adapter.id
        params["embedder"] = space_id(f"{vectors_id}+{adapter}" if adapter else vectors_id, self.config.postprocess)
        if self.index is not None:  # how it searched: the artefact says it is approximate, and how close
            params["index"] = self.index.describe()
        return params

    def fit(self, data: TrainData) -> Self:
        self.train_digest = data.digest
        provider = self.provider(data.digest)
        env = self.env
        vectors = embed_catalog(data.catalog, provider, cache_dir=env.embeddings_dir, progress=env.progress)
        vectors_id = provider.id
        if self.config.adapter_epochs:  # trained on these training sessions only; keyed by their digest
            vectors = adapted_vectors(
                vectors,
                [session.items for session in data.sessions],
                self.config.adapter,
                embedder_id=provider.id,
                train_digest=data.digest,
                cache_dir=env.embeddings_dir,
                progress=env.progress,
            )
            vectors_id = f"{provider.id}+{self.config.adapter.id}-{data.digest[:16]}"
        self.vectors, _ = postprocess_catalog(
            vectors, data.catalog, vectors_id, self.config.postprocess, cache_dir=env.embeddings_dir
        )
        self.n_items = data.n_items
        counts = item_counts(data.sessions, data.n_items)
        self.prior = self.config.popularity_weight * np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
        self.mask = np.where(counts > 0, 0.0, NEVER) if self.config.candidates == "train" else np.zeros(self.n_items)
        self.index = None
        if env.ann.applies(self.n_items):
            self.index = self._build_index(data)
        self.embedder_id = str(self.params()["embedder"])
        return self

    def _build_index(self, data: TrainData) -> IVFIndex:
        """The IVF index over the catalogue, its probe chosen on prefixes of training sessions."""
        rule = self.env.ann
        index = IVFIndex.build(self.vectors, rule)
        rng = np.random.default_rng(rule.seed)
        long = [s.items for s in data.sessions if len(s.items) >= 2]
        picked = rng.choice(len(long), size=min(rule.recall_prompts, len(long)), replace=False) if long else []
        prompts = [list(long[i][: int(rng.integers(1, len(long[i])))]) for i in picked]
        queries = self.session_vectors(prompts)
        n = rule.recall_at

        def exact(q: np.ndarray) -> list[set[int]]:
            rows = (q @ self.vectors.T).astype(np.float64) + self.prior + self.mask
            return [set(top_k(row, n)[0].tolist()) for row in rows]

        def approx(q: np.ndarray, probe: int) -> list[set[int]]:
            found = []
            for row in q:
                items, scores = self._probe_scores(row, index.candidates(row, probe), every_item=False)
                found.append(set(top_k_among(items, scores, n)[0].tolist()))
            return found

        if prompts:
            index.choose_probe(queries, exact, approx, rule.min_recall)
        return index

    def _probe_scores(self, query: np.ndarray, items: np.ndarray, *, every_item: bool) -> tuple[np.ndarray, np.ndarray]:
        """Cosine (+ prior, + mask unless ``every_item``) of ``items`` only."""
        scores = (self.vectors[items] @ query).astype(np.float64) + self.prior[items]
        if not every_item:
            scores += self.mask[items]
        return items, scores

    def session_vectors(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """One unit vector per prompt (rows of the same space as the catalogue matrix)."""
        return session_vectors(self.vectors, prompts, self.config.mode, self.config.decay, self.config.lag)

    def score(self, prompts: Sequence[Sequence[int]], *, every_item: bool = False) -> np.ndarray:
        """Cosine (+ prior) of every catalogue item; ``every_item`` lifts ``candidates='train'`` (the graph
        does so for a session none of whose items was seen in training, which only titles can answer); a
        prompt too short for ``lag`` scores nothing."""
        self._check_fitted()
        queries = self.session_vectors(prompts)
        if self.index is None:
            scores = (queries @ self.vectors.T).astype(np.float64)
            scores += self.prior
            if not every_item:
                scores += self.mask
        else:  # the probed lists only, exactly as :meth:`top` ranks them
            scores = np.full((len(prompts), self.n_items), NEVER)
            for row, query in enumerate(queries):
                items, values = self._probe_scores(query, self.index.candidates(query), every_item=every_item)
                scores[row, items] = values
        scores[self._too_short(prompts)] = NEVER
        return scores

    def _too_short(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """Prompts too short for ``lag`` (they score nothing)."""
        if not (self.config.mode == "last" and self.config.lag):
            return np.zeros(len(prompts), dtype=bool)
        return np.fromiter((len(p) <= self.config.lag for p in prompts), dtype=bool, count=len(prompts))

    def top(
        self,
        prompts: Sequence[Sequence[int]],
        excludes: Sequence[Sequence[int]],
        n: int,
        *,
        every_item: bool = False,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each prompt's top ``n`` (items, scores): ``top_k`` of :meth:`score`'s rows, the same lists; with
        an index, ranked among the probed items without a catalogue-length row (what the graph serves)."""
        if self.index is None:
            scores = self.score(prompts, every_item=every_item)
            return [top_k(row, n, exclude=exclude) for row, exclude in zip(scores, excludes, strict=True)]
        self._check_fitted()
        short = self._too_short(prompts)
        out = []
        for query, exclude, silent in zip(self.session_vectors(prompts), excludes, short, strict=True):
            if silent:
                out.append((np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)))
                continue
            items, values = self._probe_scores(query, self.index.candidates(query), every_item=every_item)
            out.append(top_k_among(items, values, n, exclude=exclude))
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {
            "vectors": self.vectors,
            "prior": self.prior,
            "mask": self.mask,
            "train_digest": np.asarray(getattr(self, "train_digest", "")),
            **(self.index.state() if self.index is not None else {}),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
        self.prior, self.mask = state["prior"], state["mask"]
        self.n_items = int(self.vectors.shape[0])
        if "train_digest" in state:  # which fold's embedder made the vectors (a fine-tuned one is per fold)
            self.train_digest = str(state["train_digest"])
        self.index = IVFIndex.from_state(state)
        self.embedder_id = str(self.params()["embedder"])

    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        """The session item whose title is closest to each item's, weighted as the session vector weighs
        them (with ``mode='last'``: the last item), i.e. "similar to"."""
        prompt_arr = np.asarray(prompt, dtype=np.int64)
        weights = position_weights(prompt_arr.size, self.config.mode, self.config.decay, self.config.lag)
        if not len(items):
            return []
        similarity = (self.vectors[np.asarray(items, dtype=np.int64)] @ self.vectors[prompt_arr].T) * weights[None, :]
        columns = np.argmax(similarity, axis=1)  # per item, the first session item of the largest similarity
        values = similarity[np.arange(similarity.shape[0]), columns]
        return [
            Evidence(int(prompt_arr[column]), "similar-title", value) if value > 0 else None
            for column, value in zip(columns.tolist(), values.tolist(), strict=True)
        ]
