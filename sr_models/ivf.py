"""An inverted-file (IVF) index over unit vectors: the title kNN's approximate search on large catalogues.

Scoring every catalogue item by one dense product reads the whole ``n x d`` matrix per request: at 500k
items and 384 dimensions that is 768 MB, memory-bound at about 100 ms on two cores, while Beauty's 12k items
cost well under a millisecond. Above ``AnnConfig.above_items`` items the title kNN therefore builds this
index when it is fitted (never at a request): spherical k-means centroids (the FAISS ``IndexIVFFlat`` idea,
in numpy), every item assigned to its nearest centroid, and a query scores exactly (same cosine) only the
items of its ``probe`` nearest lists. ``probe`` is chosen at fit time on the training fold: the smallest
power of two whose top-``recall_at`` lists recover at least ``min_recall`` of the exact lists' items on a
sample of training prefixes, and that measured recall is kept with the index (see :class:`IVFIndex`).
Below ``above_items`` nothing changes: the exact product ranks the full catalogue.

Settings: ``Settings.ann`` (env ``SEMSR_ANN__ABOVE_ITEMS=50000``, ``SEMSR_ANN__MIN_RECALL=0.95`` ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class AnnConfig(BaseModel):
    """When and how the title kNN searches approximately (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    above_items: int = Field(50_000, ge=0, description="Build an IVF index above this many items (0: never).")
    lists: int = Field(0, ge=0, description="Inverted lists (0: 2 * sqrt(items), within 16..4096).")
    min_recall: float = Field(0.95, gt=0.0, le=1.0, description="Recall of the exact top lists the probe must reach.")
    recall_at: int = Field(100, ge=1, description="List length that recall is measured at.")
    recall_prompts: int = Field(300, ge=10, description="Training prefixes the probe is chosen on.")
    train_sample: int = Field(100_000, ge=1_000, description="Vectors k-means is fitted on (all when fewer).")
    iterations: int = Field(8, ge=1, le=100, description="k-means iterations.")
    seed: int = Field(0, description="Seed of the k-means sample and initial centroids.")

    def applies(self, n_items: int) -> bool:
        return bool(self.above_items) and n_items > self.above_items

    def n_lists(self, n_items: int) -> int:
        return self.lists or int(np.clip(round(2 * np.sqrt(n_items)), 16, 4096))


def _nearest(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Index of each row's nearest (largest inner product) centroid, in chunks to bound memory."""
    out = np.empty(vectors.shape[0], dtype=np.int64)
    for start in range(0, vectors.shape[0], chunk):
        out[start : start + chunk] = np.argmax(vectors[start : start + chunk] @ centroids.T, axis=1)
    return out


def spherical_kmeans(vectors: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """(k, d) unit centroids of ``vectors`` (unit rows) by spherical k-means; an emptied centroid is reseeded
    from a random row, so all ``k`` lists stay in use."""
    centroids = vectors[rng.choice(vectors.shape[0], size=k, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest(vectors, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, vectors)
        empty = ~np.bincount(assign, minlength=k).astype(bool)
        sums[empty] = vectors[rng.choice(vectors.shape[0], size=int(empty.sum()), replace=False)]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


@dataclass
class IVFIndex:
    """Centroids, the items of each list (``order[offsets[l]:offsets[l + 1]]``), the chosen ``probe`` and
    the recall it measured against the exact lists."""

    centroids: np.ndarray
    order: np.ndarray
    offsets: np.ndarray
    probe: int
    recall: float

    @classmethod
    def build(cls, vectors: np.ndarray, config: AnnConfig) -> IVFIndex:
        """Cluster ``vectors`` (unit rows) into lists; ``probe`` is set by :meth:`choose_probe`."""
        rng = np.random.default_rng(config.seed)
        n = vectors.shape[0]
        k = min(config.n_lists(n), n)
        sample = vectors if n <= config.train_sample else vectors[rng.choice(n, config.train_sample, replace=False)]
        centroids = spherical_kmeans(np.ascontiguousarray(sample, dtype=np.float32), k, config.iterations, rng)
        assign = _nearest(vectors, centroids)
        order = np.argsort(assign, kind="stable").astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=k))]).astype(np.int64)
        return cls(centroids, order, offsets, probe=k, recall=1.0)

    @property
    def n_lists(self) -> int:
        return int(self.centroids.shape[0])

    def candidates(self, query: np.ndarray, probe: int | None = None) -> np.ndarray:
        """Items (ascending) of the ``probe`` lists nearest to ``query`` (one unit row)."""
        probe = min(probe or self.probe, self.n_lists)
        near = np.argpartition(-(self.centroids @ query), probe - 1)[:probe] if probe < self.n_lists else None
        lists = np.arange(self.n_lists) if near is None else near
        items = np.concatenate([self.order[self.offsets[i] : self.offsets[i + 1]] for i in lists.tolist()])
        return np.sort(items)

    def choose_probe(
        self,
        queries: np.ndarray,
        exact_top: Callable[[np.ndarray], list[set[int]]],
        approx_top: Callable[[np.ndarray, int], list[set[int]]],
        min_recall: float,
    ) -> None:
        """The smallest power-of-two probe whose lists recover ``min_recall`` of ``exact_top``'s items on
        ``queries``; sets ``probe`` and the ``recall`` it measured (all lists: recall 1 by construction)."""
        exact = exact_top(queries)
        wanted = sum(len(found) for found in exact)
        probe = 1
        while True:
            probe = min(probe, self.n_lists)
            found = approx_top(queries, probe)
            hit = sum(len(e & a) for e, a in zip(exact, found, strict=True))
            recall = hit / wanted if wanted else 1.0
            if recall >= min_recall or probe >= self.n_lists:
                self.probe, self.recall = probe, float(recall)
                return
            probe *= 2

    def state(self) -> dict[str, np.ndarray]:
        return {
            "ivf_centroids": self.centroids,
            "ivf_order": self.order,
            "ivf_offsets": self.offsets,
            "ivf_probe": np.asarray(self.probe),
            "ivf_recall": np.asarray(self.recall),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> IVFIndex | None:
        if "ivf_centroids" not in state:
            return None
        return cls(
            np.ascontiguousarray(state["ivf_centroids"], dtype=np.float32),
            np.asarray(state["ivf_order"], dtype=np.int64),
            np.asarray(state["ivf_offsets"], dtype=np.int64),
            probe=int(state["ivf_probe"]),
            recall=float(state["ivf_recall"]),
        )

    def describe(self) -> dict[str, float | int | str]:
        return {"kind": "ivf", "lists": self.n_lists, "probe": self.probe, "recall": round(self.recall, 4)}
