"""The catalogue in Chroma: one collection per (dataset fingerprint, embedder), built from cached vectors.

Vectors come from :func:`embeddings.embed_catalog` (the one source of truth for title embeddings), so
building the index never embeds a title the cache already holds. Builds are batched below the client's
maximum batch size, idempotent (upserts) and resumable (ids already present are skipped). Each record
carries the item id, dense index, title and the catalogue's metadata columns; the space is cosine, so
``score = 1 - distance`` is the cosine similarity.

The client (embedded store or a ``chroma run`` server) comes from :mod:`tools.chroma_client`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.errors import ChromaError

from embeddings.base import EmbeddingProvider, l2_normalise
from embeddings.catalog import cached, embed_catalog
from embeddings.config import EmbedderConfig
from embeddings.session import PoolingMode, session_vectors
from sessiondata.errors import ConfigError
from sessiondata.ids import require_known
from sessiondata.schema import Catalog, ItemId
from tools.chroma_client import collection_name, make_client
from tools.chroma_embedding import SemsrEmbeddingFunction
from tools.config import ChromaConfig

RESERVED_METADATA = ("item_id", "index", "title")


@dataclass(frozen=True)
class Hit:
    """One retrieved item: external id, dense index, title and cosine similarity to the query."""

    item_id: ItemId
    index: int
    title: str
    score: float


@dataclass(frozen=True)
class BuildReport:
    collection: str
    n_items: int
    added: int
    skipped: int
    embed_seconds: float
    add_seconds: float

    def as_dict(self) -> dict[str, object]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


class CatalogIndex:
    """A catalogue's title vectors in Chroma, queried by vector, text or session item ids."""

    def __init__(
        self,
        catalog: Catalog,
        dataset_tag: str,
        *,
        provider: EmbeddingProvider,
        chroma: ChromaConfig | None = None,
        store_path: Path,
        embeddings_dir: Path | None = None,
        embedder_config: EmbedderConfig | None = None,
        name: str | None = None,
        client: Any = None,
    ) -> None:
        self.catalog = catalog
        self.dataset_tag = dataset_tag
        self.provider = cached(provider, embeddings_dir)
        self.chroma = chroma or ChromaConfig()
        self.store_path = self.chroma.path if self.chroma.path is not None else store_path
        self.client = client if client is not None else make_client(self.chroma, store_path)
        self.name = name or collection_name(self.chroma.collection_prefix, dataset_tag, self.provider.id)
        self.embedding_function = SemsrEmbeddingFunction(self.provider, embedder_config)
        self.collection = self._open()

    # -- opening -------------------------------------------------------------------------------------------
    def _open(self) -> Any:
        existing = {c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections()}
        if self.name in existing:
            metadata = self._stored_metadata()
            stored = metadata.get("embedder")
            if stored != self.provider.id:
                raise ConfigError(
                    "embedder",
                    self.provider.id,
                    f"collection {self.name!r} was built with embedder {stored!r}; vectors of two embedders "
                    "cannot be mixed: use the same embedder or another collection",
                )
            return self.client.get_collection(self.name, embedding_function=self.embedding_function)
        return self.client.create_collection(
            self.name,
            embedding_function=self.embedding_function,
            metadata={
                "embedder": self.provider.id,
                "dim": self.provider.dim,
                "dataset": self.dataset_tag,
                "n_items": len(self.catalog),
            },
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "ef_construction": self.chroma.ef_construction,
                    "ef_search": self.chroma.ef_search,
                    "max_neighbors": self.chroma.max_neighbors,
                }
            },
        )

    def _stored_metadata(self) -> dict[str, Any]:
        # Read the metadata without building the persisted embedding function (it may name another embedder).
        for collection in self.client.list_collections():
            if getattr(collection, "name", None) == self.name:
                return dict(collection.metadata or {})
        return {}

    # -- building ------------------------------------------------------------------------------------------
    def present_ids(self) -> set[str]:
        """Chroma ids already stored (for resuming a build)."""
        ids: set[str] = set()
        page = 10_000
        offset = 0
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)["ids"]
            ids.update(got)
            if len(got) < page:
                return ids
            offset += page

    def count(self) -> int:
        return int(self.collection.count())

    def _record_metadata(self, index: int) -> dict[str, str | int]:
        record: dict[str, str | int] = {
            "item_id": str(self.catalog.ids[index]),
            "index": index,
            "title": self.catalog.titles[index],
        }
        for column, values in self.catalog.metadata.items():
            value = values[index]
            if value is not None and column not in RESERVED_METADATA:
                record[column] = value
        return record

    def build(
        self, *, vectors: np.ndarray | None = None, batch_size: int = 1000, progress: bool = False
    ) -> BuildReport:
        """Add every catalogue item not yet in the collection; safe to rerun or resume after a crash."""
        started = time.perf_counter()
        if vectors is None:
            vectors = embed_catalog(self.catalog, self.provider, progress=progress)
        if vectors.shape != (len(self.catalog), self.provider.dim):
            raise ConfigError("vectors", vectors.shape, f"expected ({len(self.catalog)}, {self.provider.dim})")
        embed_seconds = time.perf_counter() - started
        started = time.perf_counter()
        present = self.present_ids()
        todo = [i for i, item_id in enumerate(self.catalog.ids) if str(item_id) not in present]
        batch = max(1, min(batch_size, int(self.client.get_max_batch_size()) - 1))
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"index {self.name}", unit="item", disable=not progress)
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            self.collection.upsert(
                ids=[str(self.catalog.ids[i]) for i in chunk],
                embeddings=vectors[chunk],
                documents=[self.catalog.titles[i] or f"item {self.catalog.ids[i]}" for i in chunk],
                metadatas=[self._record_metadata(i) for i in chunk],
            )
            bar.update(len(chunk))
        bar.close()
        return BuildReport(
            self.name,
            len(self.catalog),
            len(todo),
            len(self.catalog) - len(todo),
            embed_seconds,
            time.perf_counter() - started,
        )

    # -- querying ------------------------------------------------------------------------------------------
    def _check_ids(self, item_ids: Sequence[object], field: str) -> list[str]:
        """Chroma ids (the external id as text) of ``item_ids``; malformed or unknown ids are errors."""
        return [str(self.catalog.ids[i]) for i in require_known(self.catalog, list(item_ids), field=field)]

    def _check_k(self, k: int) -> None:
        size = len(self.catalog)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= size:
            raise ConfigError("k", k, f"must be an integer in 1..{size} (the catalogue size)")

    def item_vectors(self, item_ids: Sequence[object]) -> np.ndarray:
        """Stored vectors of ``item_ids`` (in order); unknown or not-yet-indexed ids are a ConfigError."""
        keys = self._check_ids(item_ids, "item_ids")
        got = self.collection.get(ids=keys, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        missing = [key for key in keys if key not in by_id]
        if missing:
            raise ConfigError("item_ids", missing[0], f"is not in collection {self.name!r}: build the index first")
        return np.asarray([by_id[key] for key in keys], dtype=np.float32)

    def query_vectors(
        self,
        vectors: np.ndarray,
        k: int,
        *,
        exclude_ids: Sequence[object] = (),
        filters: Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` items per query vector by cosine (HNSW), skipping ``exclude_ids``."""
        self._check_k(k)
        vectors = l2_normalise(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if vectors.shape[1] != self.provider.dim:
            raise ConfigError("vectors", vectors.shape, f"query vectors must have {self.provider.dim} columns")
        excluded = set(self._check_ids(exclude_ids, "exclude_ids"))
        if filters is not None and not isinstance(filters, Mapping):
            raise ConfigError("filters", filters, "must be a Chroma where-dict such as {'asin': 'B000...'}")
        n_results = min(self.count(), k + len(excluded))
        if n_results == 0:
            raise ConfigError("collection", self.name, "is empty: build the index first")
        try:
            result = self.collection.query(
                query_embeddings=vectors,
                n_results=n_results,
                where=dict(filters) if filters else None,
                include=["metadatas", "distances"],
            )
        except (ValueError, ChromaError) as error:
            raise ConfigError("filters", filters, f"rejected by Chroma: {error}") from None
        hits: list[list[Hit]] = []
        for ids, metadatas, distances in zip(result["ids"], result["metadatas"], result["distances"], strict=True):
            row = []
            for chroma_id, metadata, distance in zip(ids, metadatas, distances, strict=True):
                if chroma_id in excluded:
                    continue
                index = int(metadata["index"])
                row.append(Hit(self.catalog.ids[index], index, str(metadata["title"]), 1.0 - float(distance)))
                if len(row) == k:
                    break
            hits.append(row)
        return hits

    def query_text(self, text: str, k: int, **options: Any) -> list[Hit]:
        """Items whose titles are closest to ``text``."""
        if not isinstance(text, str):
            raise ConfigError("query", text, "must be a string")
        if not text.strip():
            raise ConfigError("query", text, "is empty or whitespace; there is nothing to search for")
        return self.query_vectors(self.provider.embed([text]), k, **options)[0]

    def query_items(
        self, item_ids: Sequence[object], k: int, *, pooling: PoolingMode = "mean", decay: float = 0.5, **options: Any
    ) -> list[Hit]:
        """Items closest to the pooled title vector of ``item_ids`` (a session, oldest first; see
        :func:`embeddings.session.session_vectors`); those items are excluded."""
        if not item_ids:
            raise ConfigError("item_ids", item_ids, "give at least one item id")
        vectors = self.item_vectors(item_ids)
        centre = session_vectors(vectors, [range(len(item_ids))], pooling, decay)
        exclude = [*options.pop("exclude_ids", ()), *item_ids]
        return self.query_vectors(centre, k, exclude_ids=exclude, **options)[0]
