"""What the graph's nodes use, loaded from a prepared profile once per process and shared by every request.

State stays small and serialisable; the catalogue, each source's fitted model, the fitted fusion, the
Chroma index and the LLM clients live here. Everything comes from a :class:`~graphs.profiles.ProfileManifest`
that ``semsr prepare`` wrote: nothing is trained, fitted or indexed here, and a missing or changed
artefact is one clear error naming the command that builds it (or, when the caller asks for a partial
answer, a source listed as degraded).

Loading is guarded per (profile, fold) so that concurrent first requests (server workers, ``graph.batch``)
build each profile exactly once; the LLM clients, the embedder and the index are built once on first use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from graphs.fusion import FusionModel, rrf_model
from graphs.profiles import (
    DEFAULT_PROFILE,
    ArtifactRef,
    ProfileManifest,
    ProfileNotPrepared,
    manifest_path,
    read_manifest,
)
from semsr.settings import Settings
from sessiondata.errors import ConfigError, DataError
from sessiondata.files import file_sha256
from sessiondata.schema import Catalog
from sr_models.base import Recommender
from sr_models.persist import directory_digest, load_model

T = TypeVar("T")


def artifact_path(settings: Settings, ref: ArtifactRef) -> Path:
    return settings.home / ref.path


def check_artifact(settings: Settings, ref: ArtifactRef, what: str, fix: str) -> Path:
    """The artefact's path after checking it exists and its sha256 matches the manifest."""
    path = artifact_path(settings, ref)
    if not path.exists():
        raise ConfigError(what, str(path), f"is missing; rebuild it with `{fix}`")
    actual = directory_digest(path) if path.is_dir() else file_sha256(path)
    if actual != ref.sha256:
        raise ConfigError(what, str(path), f"changed since it was prepared (sha256 differs); rebuild with `{fix}`")
    return path


MAX_K = 100  # the most products one answer holds


def max_k_of(catalog: Catalog) -> int:
    """The largest ``k`` a request may ask of ``catalog`` (every interface checks against this)."""
    return min(MAX_K, len(catalog))


def read_catalog(path: Path) -> Catalog:
    data = json.loads((path / "catalog.json").read_text())
    return Catalog(ids=tuple(data["ids"]), titles=tuple(data["titles"]))


class ServingProfile:
    """One prepared profile for one fold, loaded: catalogue, fold statistics, source models and fusion.

    The ``test`` fold is what shoppers get (models fitted on the whole training split, the fusion fitted on
    validation). The ``valid`` fold (models fitted on sub-train, no fusion yet: reciprocal-rank placeholder)
    exists only so that the fusion can be fitted by replaying validation cases through the same graph.
    """

    def __init__(
        self, manifest: ProfileManifest, fold: str, settings: Settings, *, dataset: str, allow_partial: bool
    ) -> None:
        if fold not in manifest.folds:
            raise ConfigError("fold", fold, f"must be one of {sorted(manifest.folds)}")
        self.manifest = manifest
        self.spec = manifest.served_profile  # list lengths as chosen on validation, where they were
        self.fold = fold
        self.settings = settings
        self.dataset = dataset
        self.fix = f"semsr prepare --dataset {dataset} --profile {self.spec.name}"
        self.catalog = read_catalog(check_artifact(settings, manifest.catalog, "catalog", self.fix))
        artifacts = manifest.folds[fold]
        with np.load(check_artifact(settings, artifacts.stats, "fold statistics", self.fix), allow_pickle=False) as s:
            self.train_mask = np.asarray(s["train_mask"], dtype=bool)
            self.popularity = np.asarray(s["popularity"], dtype=np.float64)
        self.recent_popularity: np.ndarray | None = None
        if artifacts.recent is not None:
            path = check_artifact(settings, artifacts.recent, "recent popularity", self.fix)
            with np.load(path, allow_pickle=False) as recent:
                self.recent_popularity = np.asarray(recent["popularity"], dtype=np.float64)
        self.models: dict[str, Recommender] = {}
        self.unavailable: dict[str, str] = {}  # source -> why it cannot serve (allow_partial only)
        env = settings.model_env(progress=False)
        for source in self.spec.sources:
            if source.kind not in ("session-model", "title-knn"):
                continue
            entry = artifacts.sources.get(source.name)
            try:
                if entry is None or entry.artifact is None:
                    raise ConfigError(f"source {source.name}", None, f"has no prepared model; run `{self.fix}`")
                path = check_artifact(settings, entry.artifact, f"source {source.name}", self.fix)
                self.models[source.name] = load_model(path, env, expected_digest=entry.artifact.sha256)
            except (ConfigError, DataError) as error:
                if not allow_partial:
                    raise
                self.unavailable[source.name] = str(error)
        self.fusion = self._fusion(allow_partial)
        self.version_tag = manifest.version_tag  # what every answer names (hashing the manifest once, not per request)
        self._lazy_lock = threading.RLock()  # a lazy part may need another (the index needs the embedder)

    def _fusion(self, allow_partial: bool) -> FusionModel:
        if self.fold != "test" or not self.spec.needs_fit:
            return rrf_model(self.spec.source_names)
        fitted = self.manifest.fusion
        if not fitted or "artifact" not in fitted:
            raise ProfileNotPrepared(self.spec.name, self.dataset, f"its {self.spec.fusion} fusion is not fitted")
        ref = ArtifactRef.model_validate(fitted["artifact"])
        try:
            path = check_artifact(self.settings, ref, "fusion", self.fix)
            if self.spec.fusion == "ranker":
                from graphs.ranker import RankerFusion

                return RankerFusion.load(path)
            return FusionModel.load(path)
        except (ConfigError, DataError) as error:
            if not allow_partial:
                raise
            self.unavailable["fusion"] = f"{error}; used reciprocal-rank fusion"
            return rrf_model(self.spec.source_names)

    def ranker_context(self, window: list[int]) -> Any:
        """What the ranker's features read besides the candidates (:mod:`graphs.ranker_features`)."""
        from graphs.ranker_features import session_context

        if self.recent_popularity is None:
            raise ProfileNotPrepared(self.spec.name, self.dataset, "its recent popularity is not prepared")
        return session_context(window, self.popularity, self.recent_popularity, self.models)

    @property
    def max_k(self) -> int:
        return max_k_of(self.catalog)

    def is_cold(self, item: int) -> bool:
        return not bool(self.train_mask[item])

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lazy_lock:
            if name not in self.__dict__:
                self.__dict__[name] = build()
            return self.__dict__[name]  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ text retrieval and the LLM
    @property
    def embedder_config(self) -> Any:
        """The settings' embedder bound to this fold (a fine-tuned one is the fold's own model)."""
        from embeddings.finetuned import resolve_embedder

        return resolve_embedder(
            self.settings.embedder,
            train_digest=self.manifest.folds[self.fold].train_digest,
            embeddings_dir=self.settings.paths.embeddings,
        )

    @property
    def embedder(self) -> Any:
        from embeddings.config import default_provider

        return self._once("_embedder", lambda: default_provider(self.embedder_config, threads=self.settings.threads))

    @property
    def index(self) -> Any:
        """The Chroma catalogue index the profile was prepared with (opened, never built, here)."""
        return self._once("_index", self._open_index)

    def _open_index(self) -> Any:
        from embeddings.catalog import embed_space, space_provider
        from tools.chroma_index import CatalogIndex

        if not self.manifest.index:
            raise ConfigError("index", None, f"profile {self.spec.name!r} was prepared without an index")
        if self.settings.embedder.kind == "minilm-adapted" and self.fold != "test":
            raise ConfigError(  # the index holds the test fold's fine-tuned vectors: trained on these cases
                "index", self.fold, "holds vectors fine-tuned on the whole training split; only the test fold uses it"
            )
        provider = self.embedder
        post = self.settings.embedder.postprocess
        if not post.identity:  # the index holds post-processed vectors: queries go through the same transform
            _, transform = embed_space(self.catalog, provider, post, cache_dir=self.settings.paths.embeddings)
            provider = space_provider(provider, transform, self.settings.paths.embeddings)
        index = CatalogIndex(
            self.catalog,
            str(self.manifest.index["dataset_tag"]),
            provider=provider,
            chroma=self.settings.chroma,
            store_path=self.settings.paths.chroma,
            embeddings_dir=self.settings.paths.embeddings,
            embedder_config=self.embedder_config,
            name=str(self.manifest.index["collection"]),
        )
        if index.count() < len(self.catalog):
            raise ConfigError(
                "index", index.name, f"holds {index.count()} of {len(self.catalog)} items; run `{self.fix}`"
            )
        return index

    @cached_property
    def search_tool(self) -> Any:
        from tools.semantic_search import make_semantic_search_tool

        return make_semantic_search_tool(self.index)

    @property
    def item_vectors(self) -> np.ndarray:
        """Catalogue title vectors (unit rows), for mapping the LLM's proposed titles onto items."""
        from embeddings.catalog import embed_catalog

        return self._once(
            "_item_vectors",
            lambda: embed_catalog(self.catalog, self.embedder, cache_dir=self.settings.paths.embeddings),
        )

    @property
    def intent_agent(self) -> Any:
        from graphs.intent_adapter import IntentAdapter

        return self._once("_intent_agent", lambda: IntentAdapter(self.settings, self.llm_calls))

    @property
    def llm_calls(self) -> Any:
        """The pool every LLM call of this profile runs in, each bounded by ``llm.call_timeout``."""
        from agents.bounded import BoundedCalls

        return self._once("_llm_calls", lambda: BoundedCalls(self.settings.llm))

    @property
    def next_item_agent(self) -> Any:
        from agents.provider import ChatClient
        from agents.recommender import NextItemAgent

        def build() -> Any:
            client = ChatClient(self.settings.llm, home=self.settings.home, threads=self.settings.threads)
            return NextItemAgent(client)

        return self._once("_next_item_agent", build)

    def llm_usage(self) -> dict[str, Any] | None:
        """Tokens, calls, seconds and cost of this profile's LLM clients in this process, if any ran."""
        totals = [
            agent.account.totals()
            for name in ("_intent_agent", "_next_item_agent")
            if (agent := self.__dict__.get(name))
        ]
        if not totals:
            return None
        return {key: sum(t[key] or 0 for t in totals) for key in totals[0]}


class ProfileServices:
    """Every :class:`ServingProfile` of one process, built from one settings object, each exactly once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._profiles: dict[tuple[str, str, str, bool], ServingProfile] = {}
        self._locks: dict[tuple[str, str, str, bool], threading.Lock] = {}
        self._guard = threading.Lock()

    def manifest(self, profile: str | None = None, dataset: str | None = None) -> ProfileManifest:
        profile = profile or self.settings.profile or DEFAULT_PROFILE
        dataset = dataset or self.settings.dataset
        return read_manifest(
            manifest_path(self.settings.paths.profiles, dataset, profile), dataset=dataset, profile=profile
        )

    def profile(
        self, name: str | None = None, fold: str = "test", *, dataset: str | None = None, allow_partial: bool = False
    ) -> ServingProfile:
        """The loaded profile (default: the settings' profile on the settings' dataset)."""
        name = name or self.settings.profile or DEFAULT_PROFILE
        dataset = dataset or self.settings.dataset
        key = (dataset, name, fold, allow_partial)
        with self._guard:
            if key in self._profiles:
                return self._profiles[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one loader per key; the others wait for it and reuse its result
            if key not in self._profiles:
                manifest = self.manifest(name, dataset)
                self._profiles[key] = ServingProfile(
                    manifest, fold, self.settings, dataset=dataset, allow_partial=allow_partial
                )
            return self._profiles[key]

    def forget(self, name: str | None = None) -> None:
        """Drop loaded profiles (after ``semsr prepare`` rewrote one in this process)."""
        with self._guard:
            for key in [k for k in self._profiles if name is None or k[1] == name]:
                del self._profiles[key]
