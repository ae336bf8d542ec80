"""Popularity: every prompt gets the most frequent training items. The floor every paper reports.

:class:`RecentPopularity` counts only the latest share of the training sessions (by end time): what is in
demand now, which the all-time count hides. :func:`latest_sessions` is the one definition of "recent"
(the ranker's recent-popularity feature, written by ``semsr prepare``, uses it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

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


def latest_sessions(sessions: Sequence[Session], fraction: float) -> list[Session]:
    """The latest ``fraction`` of ``sessions`` by end time (at least one)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ordered = sorted(sessions, key=lambda s: s.end_time)
    return ordered[len(ordered) - max(1, round(len(ordered) * fraction)) :]


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


class RecentPopularity(Popularity):
    """Sessions holding each item among the latest ``fraction`` of the training sessions (by end time)."""

    name = "recent-popularity"

    def __init__(self, fraction: float = 0.1) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def params(self) -> dict[str, Any]:
        return {"fraction": self.fraction}

    def fit(self, data: TrainData) -> Self:
        latest = latest_sessions(data.sessions, self.fraction)
        self.counts = item_counts(latest, data.n_items, unit="session")
        self.n_items = data.n_items
        return self
