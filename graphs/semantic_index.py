"""The graph's semantic retrieval through the Chroma catalogue index (tools.chroma_index).

The index is opened once per process (embedded PersistentClient, or HttpClient when a server URL is
configured) and built on first use if it is incomplete; title vectors come from the embedding cache, so
building never re-embeds a title.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from graphs.state import Candidate

if TYPE_CHECKING:
    from graphs.resources import GraphResources


def chroma_query(resources: GraphResources) -> Callable[[np.ndarray, int, set[int]], list[Candidate]]:
    """``query(vector, n, exclude) -> candidates`` against the catalogue's Chroma collection."""
    from tools.chroma_index import CatalogIndex

    settings = resources.settings
    index = CatalogIndex(
        resources.catalog,
        resources.protocol.dataset.fingerprint().short,
        provider=resources.embedder,
        chroma=settings.chroma,
        store_path=settings.paths.chroma,
        embeddings_dir=settings.paths.embeddings,
        embedder_config=settings.embedder,
    )
    if index.count() < len(resources.catalog):
        index.build(vectors=resources.title_vectors)
    ids = resources.catalog.ids

    def query(vector: np.ndarray, n: int, exclude: set[int]) -> list[Candidate]:
        hits = index.query_vectors(vector[None, :], n, exclude_ids=[ids[i] for i in exclude])[0]
        return [Candidate(item=hit.index, score=hit.score) for hit in hits]

    return query
