"""Popularity: every prompt gets the most frequent training items. The floor every paper reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

import numpy as np

from sessiondata.schema import Session
from sr_models.base import Evidence, Recommender, TrainData


def item_counts(
    sessions: Sequence[Session], n_items: int, *, unit: Literal["event", "session"] = "event"
) -> np.ndarray:
    """How popular each item is in ``sessions`` (length ``n_items``): the number of events holding it
    (``unit="event"``: popularity as the models use it) or of sessions holding it (``unit="session"``: a
    repeated view counts once; the graph's fallback and the report's popularity@k use this)."""
    counts = np.zeros(n_items, dtype=np.float64)
    for session in sessions:
        items = np.asarray(session.items, dtype=np.int64)
        np.add.at(counts, np.unique(items) if unit == "session" else items, 1.0)
    return counts


class Popularity(Recommender):
    name = "popularity"

    def fit(self, data: TrainData) -> Self:
        self.counts = item_counts(data.sessions, data.n_items)
        self.n_items = data.n_items
        return self

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.counts, (len(prompts), self.n_items)).copy()

    def state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.counts = state["counts"]
        self.n_items = int(self.counts.size)

    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        return [Evidence(None, "popular", float(self.counts[item])) for item in items]
