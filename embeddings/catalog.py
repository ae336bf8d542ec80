"""Title embeddings of a whole catalogue: the ONE source of truth every model, index and tool uses.

Row ``i`` of :func:`embed_catalog`'s matrix is the catalogue's dense item index ``i``. Titles go through
the on-disk cache (so each title is embedded once per embedder, ever) and the finished matrix is kept in
memory per (embedder, catalogue) so repeated fits in one process (tuning) cost nothing.

An item with an empty title (7 in Beauty) is embedded from the placeholder ``"item <external id>"``: a
vector that is deterministic and unrelated to other items, rather than a zero row that breaks cosine.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from embeddings.base import EmbeddingProvider, normalise_text
from embeddings.cache import CachedProvider, EmbeddingCache
from embeddings.config import default_provider
from embeddings.postprocess import PostprocessConfig, PostprocessedProvider, Transform, catalog_transform
from embeddings.precomputed import FileEmbeddingProvider
from sessiondata.schema import Catalog

_memo: dict[tuple[str, str], np.ndarray] = {}
_caches: dict[Path, EmbeddingCache] = {}
_lock = threading.Lock()
_MEMO_LIMIT = 4


def catalog_texts(catalog: Catalog) -> list[str]:
    """The text embedded for each item: its normalised title, or ``"item <id>"`` when the title is empty."""
    return [
        normalise_text(title) or f"item {item_id}" for item_id, title in zip(catalog.ids, catalog.titles, strict=True)
    ]


def open_cache(directory: Path) -> EmbeddingCache:
    """One shared :class:`EmbeddingCache` per directory in this process."""
    directory = directory.resolve()
    with _lock:
        if directory not in _caches:
            _caches[directory] = EmbeddingCache(directory)
        return _caches[directory]


def cached(provider: EmbeddingProvider, cache_dir: Path | None) -> EmbeddingProvider:
    """``provider`` behind the on-disk cache in ``cache_dir`` (``settings.paths.embeddings``); returned as
    it is when ``cache_dir`` is None, already cached, or a file provider (nothing to save)."""
    if cache_dir is None or isinstance(provider, CachedProvider | FileEmbeddingProvider | PostprocessedProvider):
        return provider
    return CachedProvider(provider, open_cache(cache_dir))


def _catalog_digest(catalog: Catalog, texts: list[str]) -> str:
    digest = hashlib.sha256()
    for item_id, text in zip(catalog.ids, texts, strict=True):
        digest.update(f"{item_id}\x1f{text}\x1e".encode())
    return digest.hexdigest()


def embed_catalog(
    catalog: Catalog,
    provider: EmbeddingProvider | None = None,
    *,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """(n_items, dim) float32 unit rows, row i = item index i (see the module docstring for empty titles).

    ``cache_dir`` is the on-disk embedding cache (the caller's ``settings.paths.embeddings``); without one,
    titles are embedded afresh (still memoised in this process).
    """
    provider = provider or default_provider()
    texts = catalog_texts(catalog)
    key = (provider.id, _catalog_digest(catalog, texts))
    with _lock:
        if key in _memo:
            return _memo[key].copy()
    if isinstance(provider, FileEmbeddingProvider):
        matrix = provider.embed_ids(list(catalog.ids))
    else:
        wrapped = cached(provider, cache_dir)
        matrix = (
            wrapped.embed(texts, progress=progress) if isinstance(wrapped, CachedProvider) else wrapped.embed(texts)
        )
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    with _lock:
        while len(_memo) >= _MEMO_LIMIT:
            _memo.pop(next(iter(_memo)))
        _memo[key] = matrix
    return matrix.copy()


def clear_memory() -> None:
    """Forget in-memory matrices (tests use it to prove the on-disk cache alone suffices)."""
    with _lock:
        _memo.clear()


def catalog_digest(catalog: Catalog) -> str:
    """sha256 over the catalogue's ids and embedded texts (part of every post-processing artefact key)."""
    return _catalog_digest(catalog, catalog_texts(catalog))


def embed_space(
    catalog: Catalog,
    provider: EmbeddingProvider | None = None,
    postprocess: PostprocessConfig | None = None,
    *,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, Transform]:
    """:func:`embed_catalog` followed by ``postprocess`` (:mod:`embeddings.postprocess`), fitted on these
    catalogue vectors (saved and reused under ``cache_dir``); returns the rows and the fitted transform.

    This is what every consumer of title vectors calls: the title-kNN source, the Chroma index and the
    SemSR-I/-F inputs, so they all see the same space for the same settings.
    """
    provider = provider or default_provider()
    postprocess = postprocess or PostprocessConfig()
    raw = embed_catalog(catalog, provider, cache_dir=cache_dir, progress=progress)
    return postprocess_catalog(raw, catalog, provider.id, postprocess, cache_dir=cache_dir)


def postprocess_catalog(
    vectors: np.ndarray, catalog: Catalog, vectors_id: str, postprocess: PostprocessConfig, *, cache_dir: Path | None
) -> tuple[np.ndarray, Transform]:
    """``postprocess`` fitted on (and applied to) catalogue ``vectors`` made by ``vectors_id`` (an embedder,
    or an embedder plus adapter: the id keys the saved transform)."""
    if postprocess.identity:
        return vectors, catalog_transform(
            vectors, postprocess, embedder_id=vectors_id, catalog_digest="", cache_dir=None
        )
    transform = catalog_transform(
        vectors, postprocess, embedder_id=vectors_id, catalog_digest=catalog_digest(catalog), cache_dir=cache_dir
    )
    return np.ascontiguousarray(transform.apply(vectors), dtype=np.float32), transform


def space_provider(
    provider: EmbeddingProvider, transform: Transform, cache_dir: Path | None = None
) -> EmbeddingProvider:
    """``provider`` itself for the identity, else the provider that maps query texts into the same space
    (raw vectors cached in ``cache_dir`` under the raw embedder's id, then transformed)."""
    return provider if transform.config.identity else PostprocessedProvider(cached(provider, cache_dir), transform)
