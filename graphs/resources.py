"""The heavy objects behind the graph's nodes, loaded once per process and shared by every request.

State stays small and serialisable; models, the catalogue, title embeddings, the semantic index, the
LLM client and the fitted fusion live here, keyed by (dataset, fold), in a :class:`GraphServices` built
from the project settings by each entry point (CLI, harness, LangGraph server, :mod:`graphs.api`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from graphs.context import Context
from graphs.fusion import FusionModel, rrf_model
from graphs.state import Candidate, Intent, RecommendedItem
from semsr.settings import Settings
from sessiondata.errors import ConfigError, InvalidRequest
from sessiondata.loaders import load_dataset
from sessiondata.protocol import Protocol, build_protocol
from sessiondata.schema import Catalog
from sr_models.base import Recommender, train_data
from sr_models.popularity import item_counts
from sr_models.ranking import top_k
from sr_models.registry import build_model

InvalidSession = InvalidRequest  # the graph's name for the one bad-request error


class GraphServices:
    """Every :class:`GraphResources` of one process, keyed by (dataset, fold), built from one settings object.

    The compiled graph is bound to one of these (:func:`graphs.graph.compile_graph`); entry points build it
    from the settings they loaded once, so nothing here reads the environment.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._resources: dict[tuple[str, str], GraphResources] = {}
        self._lock = threading.Lock()

    def resources(self, context: Context) -> GraphResources:
        key = (context.dataset, context.fold)
        with self._lock:
            if key not in self._resources:
                self._resources[key] = GraphResources(context.dataset, context.fold, self.settings)
            return self._resources[key]


def fusion_dir(settings: Settings, dataset: str) -> Path:
    return settings.paths.fusion / dataset


def fusion_key(sources: Sequence[str], strategy: str, signature: str = "") -> str:
    """File name of a fitted fusion: its sources, strategy and the signature of what produced the sources."""
    return "+".join(sorted(sources)) + f".{strategy}" + (f".{signature}" if signature else "") + ".json"


class GraphResources:
    """Models, catalogue and indexes for one (dataset, fold); everything is built on first use."""

    max_k = 100

    def __init__(self, dataset: str, fold: str, settings: Settings) -> None:
        if fold not in ("test", "valid"):
            raise ConfigError("fold", fold, "must be 'test' or 'valid'")
        self.dataset_name = dataset
        self.fold = fold
        self.settings = settings
        self._models: dict[str, Recommender] = {}
        self._model_lock = threading.Lock()
        self._fusions: dict[Path, FusionModel] = {}

    # ------------------------------------------------------------------ data
    @cached_property
    def protocol(self) -> Protocol:
        return build_protocol(load_dataset(self.dataset_name), self.settings.protocol)

    @property
    def catalog(self) -> Catalog:
        return self.protocol.dataset.catalog

    @cached_property
    def train_items(self) -> frozenset[int]:
        return frozenset(self.protocol.fold(self.fold).train_items)  # type: ignore[arg-type]

    @cached_property
    def popularity(self) -> np.ndarray:
        return item_counts(self.protocol.fold(self.fold).train, len(self.catalog), unit="session")  # type: ignore[arg-type]

    def popular_fallback(self, exclude: set[int], k: int) -> list[RecommendedItem]:
        items, scores = top_k(self.popularity, k, exclude=exclude)
        return [
            RecommendedItem(
                rank=r + 1,
                item_id=self.catalog.ids[i],
                title=self.catalog.titles[i],
                score=float(s),
                contributions={"popularity": float(s)},
            )
            for r, (i, s) in enumerate(zip(items.tolist(), scores.tolist(), strict=True))
        ]

    # ------------------------------------------------------------------ SR models
    def model(self, name: str) -> Recommender:
        with self._model_lock:
            if name not in self._models:
                model = build_model(name, self.protocol.dataset.name, env=self.settings.model_env(progress=False))
                model.fit(train_data(self.protocol, self.fold))  # type: ignore[arg-type]
                self._models[name] = model
            return self._models[name]

    @cached_property
    def sr_tool(self) -> Any:
        """The ``sr_rerank`` LangChain tool over this fold's session models (loaded on first request)."""
        from tools.sr_reranker import SRReranker, make_sr_rerank_tool

        return make_sr_rerank_tool(SRReranker(self._models, self.catalog, self.train_items))

    def sr_candidates(self, name: str, session: list[int], n: int) -> list[Candidate]:
        """Top ``n`` items of session model ``name`` through the ``sr_rerank`` tool (session items excluded)."""
        self.model(name)
        call = {
            "name": "sr_rerank",
            "args": {"item_ids": [self.catalog.ids[i] for i in session], "k": n, "models": [name]},
            "id": f"sr-{name}",
            "type": "tool_call",
        }
        result = self.sr_tool.invoke(call).artifact["models"].get(name, {"items": [], "scores": []})
        return [Candidate(item=int(i), score=float(s)) for i, s in zip(result["items"], result["scores"], strict=True)]

    # ------------------------------------------------------------------ semantics
    @cached_property
    def embedder(self) -> Any:
        from embeddings.config import default_provider

        return default_provider(self.settings.embedder, threads=self.settings.threads)

    @cached_property
    def title_vectors(self) -> np.ndarray:
        from embeddings.catalog import embed_catalog

        return embed_catalog(self.catalog, self.embedder, cache_dir=self.settings.paths.embeddings)

    @cached_property
    def semantic_index(self) -> Callable[[np.ndarray, int, set[int]], list[Candidate]]:
        """``query(vector, n, exclude) -> candidates`` over the catalogue (Chroma, or exact cosine)."""
        if self.settings.semantic_index == "exact":
            matrix = self.title_vectors

            def exact(vector: np.ndarray, n: int, exclude: set[int]) -> list[Candidate]:
                items, values = top_k(matrix @ vector, n, exclude=exclude)
                return [Candidate(item=int(i), score=float(s)) for i, s in zip(items, values, strict=True)]

            return exact
        from graphs.semantic_index import chroma_query

        return chroma_query(self)

    def session_vector(self, session: list[int], decay: float = 2.0) -> np.ndarray:
        """Recency-weighted mean of the session's title vectors (the most recent weighs most)."""
        vectors = self.title_vectors[session]
        weights = np.exp(-np.arange(len(session) - 1, -1, -1) / decay)
        vector = weights @ vectors
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def semantic_by_session(self, session: list[int], n: int, exclude: set[int]) -> list[Candidate]:
        return self.semantic_index(self.session_vector(session), n, exclude)

    def semantic_by_text(self, queries: list[str], n: int, exclude: set[int]) -> list[Candidate]:
        vectors = self.embedder.embed(queries)
        vector = vectors.mean(axis=0)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return self.semantic_index(vector, n, exclude)

    # ------------------------------------------------------------------ LLM
    @cached_property
    def intent_agent(self) -> Any:
        from graphs.intent_adapter import IntentAdapter

        return IntentAdapter(self.settings)

    def infer_intent(self, session: list[int], *, timeout: float) -> Intent:
        titles = [self.catalog.titles[i] for i in session]
        return self.intent_agent(titles, timeout=timeout)

    # ------------------------------------------------------------------ fusion
    def fusion_path(self, context: Context, strategy: str) -> Path:
        key = fusion_key(configured_sources(context), strategy, source_signature(self, context))
        return fusion_dir(self.settings, self.protocol.dataset.name) / key

    def fusion(self, context: Context) -> tuple[FusionModel, str | None]:
        """The fusion fitted on the validation fold for the context's sources, and a note when there is none.

        Without a fitted model for exactly these sources (or with strategy 'rrf'), reciprocal-rank fusion
        is used: it needs no fitting and never lets one source's scale dominate.
        """
        sources = configured_sources(context)
        if context.fusion == "rrf":
            return rrf_model(sources), None
        path = self.fusion_path(context, context.fusion)
        if not path.exists():
            return rrf_model(sources), f"no {context.fusion} fusion fitted for {sorted(sources)}; used RRF"
        with self._model_lock:
            if path not in self._fusions:
                self._fusions[path] = FusionModel.load(path)
            return self._fusions[path], None


def source_signature(resources: GraphResources, context: Context) -> str:
    """A short hash of every source's settings (model hyper-parameters, embedder, candidate count), so a
    fusion fitted for other models is never applied to these."""
    import hashlib
    import json

    env = resources.settings.model_env(progress=False)
    dataset = resources.protocol.dataset.name
    parts: dict[str, Any] = {name: build_model(name, dataset, env=env).params() for name in context.sr_sources}
    parts["semantic"] = resources.settings.embedder.model_dump(mode="json")
    parts["candidates"] = context.candidates_per_source
    parts["session_items"] = context.max_session_items
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def configured_sources(context: Context) -> list[str]:
    """The sources a context asks for, in a fixed order (this order names fitted fusion files)."""
    sources = list(context.sr_sources)
    if context.semantic:
        sources.append("semantic")
        if context.use_llm:
            sources.append("intent")
    return sources
