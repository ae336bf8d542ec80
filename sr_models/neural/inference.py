"""Recommendations for a new session given as external item ids (the serving path and ``semsr recommend``).

Ids the catalogue does not know are reported and skipped (the semantic side handles them elsewhere); a
session that is empty, or has no known item left, is a clear :class:`DataError`. Batches go through the
model in one ``score`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sessiondata.errors import DataError
from sessiondata.ids import resolve_items
from sessiondata.schema import Catalog, ItemId
from sr_models.base import Recommender


@dataclass(frozen=True)
class SessionRecommendation:
    items: list[ItemId]  # external ids, best first
    scores: list[float]
    unknown: list[object] = field(default_factory=list)  # input ids not in the catalogue (skipped)


def known_indices(catalog: Catalog, session: Sequence[object], position: int = 0) -> tuple[list[int], list[object]]:
    """Dense indices of the known ids (order kept) and the unknown ids; errors for empty sessions."""
    field = f"sessions[{position}]"
    resolved = resolve_items(catalog, list(session), field=field)
    if not session:
        raise DataError("session is empty: give at least one item id", field=field)
    if not resolved.indices:
        raise DataError("no item of the session is in the catalogue", field=field, value=resolved.unknown)
    return resolved.indices, list(resolved.unknown)


def recommend_sessions(
    model: Recommender,
    catalog: Catalog,
    sessions: Sequence[Sequence[object]],
    k: int = 20,
    *,
    exclude_seen: bool = True,
) -> list[SessionRecommendation]:
    """Top-``k`` recommendations for each session of external ids (batch inference)."""
    parsed = [known_indices(catalog, session, position) for position, session in enumerate(sessions)]
    ranked = model.recommend([indices for indices, _ in parsed], k, exclude_seen=exclude_seen)
    return [
        SessionRecommendation([catalog.ids[i] for i in rec.items], rec.scores, unknown)
        for rec, (_, unknown) in zip(ranked, parsed, strict=True)
    ]


def recommend_session(
    model: Recommender, catalog: Catalog, session: Sequence[object], k: int = 20
) -> SessionRecommendation:
    return recommend_sessions(model, catalog, [session], k)[0]
