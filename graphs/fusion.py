"""Fusion of candidate lists from several sources (paper approach iii at the graph level).

Each source proposes its top-N items with raw scores on its own scale. Per source, scores are turned
into features on a common scale (z-score within the list, reciprocal rank, presence); an item a source
did not propose gets that source's floor. Three strategies combine them:

* ``weighted``: a weighted sum of z-scores, weights fitted on the validation fold (default);
* ``rrf``: reciprocal-rank fusion (no fitting; a robust reference);
* ``learned``: a small logistic ranker over all per-source features, fitted on the validation fold.

A useless source gets a weight near zero from the fit, so it cannot drag the ranking down.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from graphs.state import Candidate

RRF_K = 60.0
FEATURES_PER_SOURCE = 3  # z-score, reciprocal rank, presence


def source_features(candidates: Sequence[Candidate], items: np.ndarray) -> np.ndarray:
    """Features of ``items`` (dense indices) for one source: shape (len(items), 3)."""
    features = np.zeros((items.size, FEATURES_PER_SOURCE), dtype=np.float64)
    if not candidates:
        return features
    scores = np.array([c["score"] for c in candidates], dtype=np.float64)
    ids = np.array([c["item"] for c in candidates], dtype=np.int64)
    finite = np.isfinite(scores)
    scores, ids = scores[finite], ids[finite]
    if scores.size == 0:
        return features
    order = np.argsort(-scores, kind="stable")
    scores, ids = scores[order], ids[order]
    std = scores.std()
    z = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
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


@dataclass
class FusionModel:
    """A fitted (or fixed) way to merge sources; JSON-serialisable for the artefact store and the card."""

    strategy: str = "weighted"
    sources: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    coefficients: list[float] = field(default_factory=list)  # learned: one per feature
    fitted_on: dict[str, object] = field(default_factory=dict)

    def fuse(self, results: Mapping[str, Sequence[Candidate]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Items (best first), fused scores, and each source's contribution to every item's score."""
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
                contributions[source] = self.weights.get(source, 1.0) * block[:, 0]
        scores = np.sum(list(contributions.values()), axis=0)
        order = np.lexsort((items, -scores))
        return items[order], scores[order], {s: c[order] for s, c in contributions.items()}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        return cls(**json.loads(path.read_text()))


# ---------------------------------------------------------------------------------------------- fitting


@dataclass
class ValidationSet:
    """Per-case feature matrices stacked for fast objective evaluation."""

    sources: list[str]
    matrix: np.ndarray  # (total candidates, n_sources * 3)
    offsets: np.ndarray  # case c owns rows offsets[c]:offsets[c+1]
    target_row: np.ndarray  # global row of the target, -1 when no source proposed it

    @classmethod
    def build(
        cls, per_case: Sequence[Mapping[str, Sequence[Candidate]]], targets: Sequence[int], sources: Sequence[str]
    ) -> ValidationSet:
        matrices, offsets, target_rows = [], [0], []
        for results, target in zip(per_case, targets, strict=True):
            items, matrix = feature_matrix(results, sources)
            hit = np.flatnonzero(items == target)
            target_rows.append(offsets[-1] + int(hit[0]) if hit.size else -1)
            matrices.append(matrix)
            offsets.append(offsets[-1] + items.size)
        width = len(sources) * FEATURES_PER_SOURCE
        stacked = np.concatenate(matrices) if matrices else np.zeros((0, width))
        return cls(list(sources), stacked, np.asarray(offsets), np.asarray(target_rows))

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        """Conservative 1-based rank of each case's target under ``scores`` (0 = not proposed)."""
        n_cases = self.target_row.size
        ranks = np.zeros(n_cases, dtype=np.int64)
        has = self.target_row >= 0
        case_of_row = np.repeat(np.arange(n_cases), np.diff(self.offsets))
        target_score = np.full(n_cases, np.inf)
        target_score[has] = scores[self.target_row[has]]
        at_least = scores >= target_score[case_of_row]
        counts = np.bincount(case_of_row, weights=at_least, minlength=n_cases).astype(np.int64)
        ranks[has] = counts[has]  # includes the target itself: ties count against it
        return ranks

    def objective(self, scores: np.ndarray, k: int = 20) -> dict[str, float]:
        ranks = self.ranks(scores)
        hit = (ranks > 0) & (ranks <= k)
        safe = np.where(hit, ranks, 1)
        return {
            f"hr@{k}": float(hit.mean()),
            f"mrr@{k}": float(np.where(hit, 1.0 / safe, 0.0).mean()),
            f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(safe + 1.0), 0.0).mean()),
        }


def fit_weighted(data: ValidationSet, *, metric: str = "ndcg@20", step: float = 0.1) -> FusionModel:
    """Grid over the weight simplex (then a finer local search) maximising ``metric`` on validation."""
    n = len(data.sources)
    z_columns = data.matrix[:, 0::FEATURES_PER_SOURCE]
    k = int(metric.split("@")[1])
    levels = np.round(np.arange(0.0, 1.0 + 1e-9, step), 6)
    best_weights, best_value, trials = np.ones(n) / n, -1.0, 0
    for combo in itertools.product(levels, repeat=n):
        if abs(sum(combo) - 1.0) > 1e-6:
            continue
        weights = np.asarray(combo)
        value = data.objective(z_columns @ weights, k)[metric]
        trials += 1
        if value > best_value:
            best_weights, best_value = weights, value
    # local refinement around the best grid point
    for _ in range(2):
        for i, j in itertools.permutations(range(n), 2):
            for delta in (step / 4, step / 2):
                weights = best_weights.copy()
                weights[i] += delta
                weights[j] -= delta
                if weights[j] < 0:
                    continue
                value = data.objective(z_columns @ weights, k)[metric]
                trials += 1
                if value > best_value:
                    best_weights, best_value = weights, value
    scores = z_columns @ best_weights
    return FusionModel(
        strategy="weighted",
        sources=data.sources,
        weights={s: round(float(w), 4) for s, w in zip(data.sources, best_weights, strict=True)},
        fitted_on={
            "metric": metric,
            "valid": data.objective(scores, k),
            "trials": trials,
            "cases": len(data.offsets) - 1,
        },
    )


def fit_learned(data: ValidationSet, *, epochs: int = 300, l2: float = 1e-3, lr: float = 0.5) -> FusionModel:
    """Logistic ranker (target vs other candidates of the same case) by full-batch gradient descent."""
    x = data.matrix
    y = np.zeros(x.shape[0])
    y[data.target_row[data.target_row >= 0]] = 1.0
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    xs = (x - mean) / std
    positive_weight = (y.size - y.sum()) / max(y.sum(), 1.0)
    sample_weight = np.where(y > 0, positive_weight, 1.0)
    sample_weight /= sample_weight.mean()
    coef = np.zeros(x.shape[1])
    for _ in range(epochs):
        logits = xs @ coef
        prob = 1.0 / (1.0 + np.exp(-logits))
        gradient = xs.T @ ((prob - y) * sample_weight) / y.size + l2 * coef
        coef -= lr * gradient
    raw = coef / std  # fold the standardisation into the coefficients (the mean shift is a constant)
    scores = x @ raw
    return FusionModel(
        strategy="learned",
        sources=data.sources,
        coefficients=[float(c) for c in raw],
        fitted_on={"valid": data.objective(scores, 20), "epochs": epochs, "l2": l2, "cases": len(data.offsets) - 1},
    )


def rrf_model(sources: Sequence[str]) -> FusionModel:
    return FusionModel(strategy="rrf", sources=list(sources), weights={s: 1.0 for s in sources})
