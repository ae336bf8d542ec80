"""Popularity: every prompt gets the most frequent training items. The floor every paper reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from sr_models.base import Recommender, TrainData


def item_counts(data: TrainData) -> np.ndarray:
    """Number of training events per item (length n_items)."""
    counts = np.zeros(data.n_items, dtype=np.float64)
    for session in data.sessions:
        np.add.at(counts, np.asarray(session.items, dtype=np.int64), 1.0)
    return counts


class Popularity(Recommender):
    name = "popularity"

    def fit(self, data: TrainData) -> Self:
        self.counts = item_counts(data)
        self.n_items = data.n_items
        return self

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.counts, (len(prompts), self.n_items)).copy()
