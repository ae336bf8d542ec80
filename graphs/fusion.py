"""Fusion of candidate lists from several sources (paper approach iii at the graph level).

Each source proposes its top-N items with raw scores on its own scale. Per source, scores are turned
into features on a common scale (z-score within the list, reciprocal rank, presence); an item a source
did not propose gets that source's floor. Three strategies combine them:

* ``weighted``: a weighted sum of z-scores, weights fitted on the validation fold (default);
* ``rrf``: reciprocal-rank fusion (no fitting; a robust reference);
* ``learned``: a small logistic ranker over all per-source features, fitted on the validation fold;
* ``ranker``: a LightGBM LambdaMART over richer features (:mod:`graphs.ranker`).

This module only *applies* a fusion; fitting it (on the validation fold, never the test split) is
evaluation code and lives in :mod:`evals.fusion_fit`. A useless source gets a weight near zero from the
fit, so it cannot drag the ranking down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphs.state import Candidate
from sessiondata.errors import DataError

RRF_K = 60.0
FEATURES_PER_SOURCE = 3  # z-score, reciprocal rank, presence


def finite_candidates(candidates: Sequence[Candidate]) -> tuple[np.ndarray, np.ndarray]:
    """A source's list as arrays ``(item ids, scores)``, in list order, without non-finite scores."""
    scores = np.array([c["score"] for c in candidates], dtype=np.float64)
    ids = np.array([c["item"] for c in candidates], dtype=np.int64)
    finite = np.isfinite(scores)
    return ids[finite], scores[finite]


def within_list_z(scores: np.ndarray) -> np.ndarray:
    """Scores z-normalised within one source's list for one session (all 0 when they are all equal)."""
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def source_features(candidates: Sequence[Candidate], items: np.ndarray) -> np.ndarray:
    """Features of ``items`` (dense indices) for one source: shape (len(items), 3)."""
    features = np.zeros((items.size, FEATURES_PER_SOURCE), dtype=np.float64)
    ids, scores = finite_candidates(candidates)
    if scores.size == 0:
        return features
    order = np.argsort(-scores, kind="stable")
    scores, ids = scores[order], ids[order]
    std = scores.std()
    z = within_list_z(scores)
    floor = z.min() - (0.5 if std > 0 else 0.0)
    lookup = {int(item): position for position, item in enumerate(ids)}
    positions = np.array([lookup.get(int(item), -1) for item in items], dtype=np.int64)
    present = positions >= 0
    features[:, 0] = np.where(present, z[np.maximum(positions, 0)], floor)
    features[:, 1] = np.where(present, 1.0 / (RRF_K + positions + 1.0), 0.0)
    features[:, 2] = present.astype(np.float64)
    return features


def union_items(results: Mapping[str, Sequence[Candidate]]) -> np.ndarray:
    items = {c["item"] for candidates in results.values() for c in candidates}
    return np.array(sorted(items), dtype=np.int64)


def feature_matrix(results: Mapping[str, Sequence[Candidate]], sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Union of candidates and their features, (n_items, n_sources * 3), source blocks in ``sources`` order."""
    items = union_items({s: results.get(s, []) for s in sources})
    blocks = [source_features(results.get(source, []), items) for source in sources]
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((items.size, 0))
    return items, matrix


class FusionModel(BaseModel):
    """A fitted (or fixed) way to merge sources; validated JSON for the artefact store and the card."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: Literal["weighted", "rrf", "learned"] = "weighted"
    sources: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)
    coefficients: list[float] = Field(default_factory=list)  # learned: one per feature
    fitted_on: dict[str, Any] = Field(default_factory=dict)

    def source_weight(self, source: str) -> float:
        """How much ``source`` can move the ranking (0: none): its weight, or the size of its coefficients."""
        if source not in self.sources:
            return 0.0
        if self.strategy == "rrf":
            return 1.0
        if self.strategy == "learned":
            position = self.sources.index(source) * FEATURES_PER_SOURCE
            return float(np.abs(self.coefficients[position : position + FEATURES_PER_SOURCE]).sum())
        return float(self.weights.get(source, 0.0))

    def fuse(
        self, results: Mapping[str, Sequence[Candidate]], context: Any = None, top: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Items (best first), fused scores, and each source's contribution to every item's score.

        ``context`` (the session) and ``top`` (contributions needed only for the first ``top`` items) are for
        :class:`graphs.ranker.RankerFusion`; these strategies' contributions cost nothing and cover every item."""
        sources = [s for s in self.sources if s in results] or sorted(results)
        items, matrix = feature_matrix(results, sources)
        if items.size == 0:
            return items, np.zeros(0), {}
        contributions: dict[str, np.ndarray] = {}
        for index, source in enumerate(sources):
            block = matrix[:, index * FEATURES_PER_SOURCE : (index + 1) * FEATURES_PER_SOURCE]
            if self.strategy == "rrf":
                contributions[source] = block[:, 1]
            elif self.strategy == "learned" and self.coefficients:
                position = self.sources.index(source) * FEATURES_PER_SOURCE
                coefs = np.asarray(self.coefficients[position : position + FEATURES_PER_SOURCE])
                contributions[source] = block @ coefs
            else:
                contributions[source] = self.weights.get(source, 0.0) * block[:, 0]
        scores = np.sum(list(contributions.values()), axis=0)
        order = np.lexsort((items, -scores))
        return items[order], scores[order], {s: c[order] for s, c in contributions.items()}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        """A fusion file, validated (finite numbers, known fields); a bad one is a :class:`DataError`."""
        try:
            model = cls.model_validate_json(path.read_text())
        except (ValidationError, UnicodeDecodeError) as error:
            detail = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            raise DataError(f"not a valid fusion file ({detail}); refit it with `semsr prepare`", file=path) from None
        if model.strategy == "learned" and len(model.coefficients) != len(model.sources) * FEATURES_PER_SOURCE:
            raise DataError("fusion coefficients do not match its sources; refit with `semsr prepare`", file=path)
        return model


def rrf_model(sources: Sequence[str]) -> FusionModel:
    return FusionModel(strategy="rrf", sources=list(sources), weights={s: 1.0 for s in sources})
