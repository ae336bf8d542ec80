"""Features of (session, candidate) pairs for the learned ranking stage: the one definition, fit and serving.

The ranker fit (:mod:`evals.ranker_fit`) builds its training rows with :func:`ranker_features`, and the
graph's fusion node (:class:`graphs.ranker.RankerFusion`) builds the rows it scores with the same call, so
the booster never sees a feature computed two ways. The candidates are the union of every source's list.

Per source (in the ranker's source order): the raw score, the score z-normalised within the session's
list, the 1-based rank (a candidate the source did not propose gets the list's length + 1) and a missing
flag (raw and z are NaN when missing: LightGBM learns where missing values go). Shared: how many sources
proposed the item; its global and recent popularity (log counts over the fold's training sessions); the
session length; the title cosine to the last item, to the one before it and the one before that (each
separately), the best cosine to the last three, and the cosine to the session vector
(:func:`embeddings.session.session_vectors`, pooled as the title-kNN source pools); and the candidate's
co-occurrence with each of the last three items and their position-weighted sum (weight 1 / position,
the last item first), read from the profile's first co-visitation source (:mod:`sr_models.covisit`;
sequential rules are its forward case), missing when the profile has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graphs.fusion import finite_candidates, union_items, within_list_z
from graphs.state import Candidate
from sr_models.base import Recommender
from sr_models.covisit import CoVisitation
from sr_models.title_knn import TitleKNN

PER_SOURCE = ("raw", "z", "rank", "missing")
SHARED = (
    "n_sources",
    "log_pop",
    "log_recent_pop",
    "session_len",
    "cos_last",
    "cos_last3",
    "cos_session",
    "cos_prev1",
    "cos_prev2",
    "cooc_last1",
    "cooc_last2",
    "cooc_last3",
    "cooc_weighted",
)
RECENT = 3  # how many of the last items the per-item features look at


def feature_names(sources: Sequence[str]) -> list[str]:
    """Column names, in matrix order: each source's block, then the shared features."""
    return [f"{source}__{name}" for source in sources for name in PER_SOURCE] + list(SHARED)


@dataclass(frozen=True)
class RankerContext:
    """What the features read besides the candidates: the session and the fold's item statistics.

    ``item_vectors`` (unit title rows) and ``session_vector`` come from the title-kNN source, ``covisit``
    from a co-visitation source; None when the profile has none (those features are then missing)."""

    window: Sequence[int]
    popularity: np.ndarray
    recent_popularity: np.ndarray
    item_vectors: np.ndarray | None = None
    session_vector: np.ndarray | None = None
    covisit: CoVisitation | None = None


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
    column = {name: i for i, name in enumerate(SHARED)}
    if items.size:
        present = np.stack([block[:, 3] == 0.0 for block in blocks], axis=1) if blocks else np.zeros((items.size, 0))
        shared[:, column["n_sources"]] = present.sum(axis=1)
        shared[:, column["log_pop"]] = np.log1p(context.popularity[items])
        shared[:, column["log_recent_pop"]] = np.log1p(context.recent_popularity[items])
        shared[:, column["session_len"]] = len(context.window)
        recent = np.asarray(context.window[-RECENT:], dtype=np.int64)[::-1]  # the last item first
        vectors = context.item_vectors
        if vectors is not None and recent.size:
            candidate_vectors = vectors[items]
            similarity = candidate_vectors @ vectors[recent].T
            shared[:, column["cos_last"]] = similarity[:, 0]
            shared[:, column["cos_last3"]] = similarity.max(axis=1)
            if context.session_vector is not None:
                shared[:, column["cos_session"]] = candidate_vectors @ context.session_vector
            for lag in range(1, recent.size):  # the items before the last (missing when the session is shorter)
                shared[:, column[f"cos_prev{lag}"]] = similarity[:, lag]
        if context.covisit is not None and recent.size:
            pairs = context.covisit.pair_scores(recent, items).T
            for lag in range(recent.size):
                shared[:, column[f"cooc_last{lag + 1}"]] = pairs[:, lag]
            shared[:, column["cooc_weighted"]] = pairs @ (1.0 / np.arange(1, recent.size + 1))
    matrix = np.concatenate([*blocks, shared], axis=1) if blocks else shared
    return items, matrix


def session_context(
    window: Sequence[int], popularity: np.ndarray, recent: np.ndarray, models: Mapping[str, Recommender]
) -> RankerContext:
    """The context of one session: title vectors and the session vector from the profile's title-kNN
    source, co-occurrence from its co-visitation source (the first of each, in the profile's order),
    popularity from the fold's statistics."""
    title = next((model for model in models.values() if isinstance(model, TitleKNN)), None)
    covisit = next((model for model in models.values() if isinstance(model, CoVisitation)), None)
    if title is None or not len(window):
        return RankerContext(window, popularity, recent, covisit=covisit)
    vector = title.session_vectors([list(window)])[0]
    return RankerContext(window, popularity, recent, title.vectors, vector, covisit)
