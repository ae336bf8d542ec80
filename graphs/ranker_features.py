"""Features of (session, candidate) pairs for the learned ranking stage: the one definition, fit and serving.

The ranker fit (:mod:`evals.ranker_fit`) builds its training rows with :func:`ranker_features`, and the
graph's fusion node (:class:`graphs.ranker.RankerFusion`) builds the rows it scores with the same call, so
the booster never sees a feature computed two ways. The candidates are the union of every source's list.

Per source (in the ranker's source order): the raw score, the score z-normalised within the session's
list, the 1-based rank (a candidate the source did not propose gets the list's length + 1) and a missing
flag (raw and z are NaN when missing: LightGBM learns where missing values go). Shared: how many sources
proposed the item; its global and recent popularity (log counts over the fold's training sessions); the
session length; the title cosine to the last item, the best cosine to the last three, and the cosine to
the session vector (:func:`embeddings.session.session_vectors`, pooled as the title-kNN source pools).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graphs.fusion import finite_candidates, union_items, within_list_z
from graphs.state import Candidate
from sr_models.base import Recommender
from sr_models.title_knn import TitleKNN

PER_SOURCE = ("raw", "z", "rank", "missing")
SHARED = ("n_sources", "log_pop", "log_recent_pop", "session_len", "cos_last", "cos_last3", "cos_session")


def feature_names(sources: Sequence[str]) -> list[str]:
    """Column names, in matrix order: each source's block, then the shared features."""
    return [f"{source}__{name}" for source in sources for name in PER_SOURCE] + list(SHARED)


@dataclass(frozen=True)
class RankerContext:
    """What the features read besides the candidates: the session and the fold's item statistics.

    ``item_vectors`` (unit title rows) and ``session_vector`` come from the title-kNN source; None when the
    profile has none (the cosine features are then missing)."""

    window: Sequence[int]
    popularity: np.ndarray
    recent_popularity: np.ndarray
    item_vectors: np.ndarray | None = None
    session_vector: np.ndarray | None = None


def _source_block(candidates: Sequence[Candidate], items: np.ndarray) -> np.ndarray:
    block = np.full((items.size, len(PER_SOURCE)), np.nan)
    ids, scores = finite_candidates(candidates)
    order = np.lexsort((ids, -scores))
    scores, ids = scores[order], ids[order]
    block[:, 2] = scores.size + 1.0
    block[:, 3] = 1.0
    if scores.size == 0:
        return block
    # items is sorted (union_items); a sorted search finds each proposed id's row
    rows = np.searchsorted(items, ids)
    block[rows, 0] = scores
    block[rows, 1] = within_list_z(scores)
    block[rows, 2] = np.arange(1, scores.size + 1, dtype=np.float64)
    block[rows, 3] = 0.0
    return block


def ranker_features(
    results: Mapping[str, Sequence[Candidate]], sources: Sequence[str], context: RankerContext
) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``sources``' candidates (ascending index) and their features, columns as
    :func:`feature_names`."""
    items = union_items({source: results.get(source, ()) for source in sources})
    blocks = [_source_block(results.get(source, ()), items) for source in sources]
    shared = np.full((items.size, len(SHARED)), np.nan)
    if items.size:
        present = np.stack([block[:, 3] == 0.0 for block in blocks], axis=1) if blocks else np.zeros((items.size, 0))
        shared[:, 0] = present.sum(axis=1)
        shared[:, 1] = np.log1p(context.popularity[items])
        shared[:, 2] = np.log1p(context.recent_popularity[items])
        shared[:, 3] = len(context.window)
        vectors = context.item_vectors
        if vectors is not None and len(context.window):
            candidate_vectors = vectors[items]
            recent = np.asarray(context.window[-3:], dtype=np.int64)
            similarity = candidate_vectors @ vectors[recent].T
            shared[:, 4] = similarity[:, -1]
            shared[:, 5] = similarity.max(axis=1)
            if context.session_vector is not None:
                shared[:, 6] = candidate_vectors @ context.session_vector
    matrix = np.concatenate([*blocks, shared], axis=1) if blocks else shared
    return items, matrix


def session_context(
    window: Sequence[int], popularity: np.ndarray, recent: np.ndarray, models: Mapping[str, Recommender]
) -> RankerContext:
    """The context of one session: title vectors and the session vector from the profile's title-kNN
    source (the first one, when there are several), popularity from the fold's statistics."""
    title = next((model for model in models.values() if isinstance(model, TitleKNN)), None)
    if title is None or not len(window):
        return RankerContext(window, popularity, recent)
    return RankerContext(window, popularity, recent, title.vectors, title.session_vectors([list(window)])[0])
