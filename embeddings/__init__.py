"""Text embeddings for SemSR: one provider interface, an on-disk cache and catalogue title matrices.

Depends only on :mod:`sessiondata`; ``sr_models``, ``tools`` and the graph import it. Typical use::

    from embeddings import embed_catalog
    vectors = embed_catalog(dataset.catalog, cache_dir=settings.paths.embeddings)  # (n_items, 384), unit rows
"""

from embeddings.base import EmbeddingProvider
from embeddings.catalog import catalog_texts, embed_catalog
from embeddings.config import EmbedderConfig, build_provider, default_provider

__all__ = [
    "EmbedderConfig",
    "EmbeddingProvider",
    "build_provider",
    "catalog_texts",
    "default_provider",
    "embed_catalog",
]
