"""Co-visitation (the candidate generator of every strong KDD Cup 2023 Amazon-M2 solution): which items
appear near which in training sessions, and how closely; sequential rules are its forward-only case.

For every training session and every pair of positions at most ``window`` steps apart, the pair (a, b)
gains a weight that falls with their distance (``pair_weight``: ``uniform`` counts every pair alike;
``linear``, ``harmonic`` and ``quadratic`` fall with the distance). ``direction='forward'`` counts only a
before b (what follows what: session-rec's sequential rules, :mod:`sr_models.rules`); ``'both'`` counts
the pair both ways (what is viewed together). ``lift`` divides each column by the item's training count
to the power ``lift`` (0: raw co-occurrence; 1: lift-like, P(a, b) / P(b)), so items that are everywhere
stop topping every list. ``row_normalise`` makes each item's outgoing weights sum to one. A prompt is
scored from the rows of its last ``prompt_items`` items, the most recent weighted most
(``exp(-distance / prompt_decay_lambda)``), with a tiny popularity backfill that only breaks ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from sr_models.base import Evidence, Recommender, TrainData
from sr_models.popularity import item_counts

PairWeight = Literal["uniform", "linear", "harmonic", "quadratic"]


class CoVisitConfig(BaseModel):
    """Hyper-parameters of :class:`CoVisitation` (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(10, ge=1, description="Largest distance between the two items of a pair.")
    pair_weight: PairWeight = Field("harmonic", description="How a pair's weight falls with its distance.")
    direction: Literal["forward", "both"] = Field("both", description="'forward': only a before b counts.")
    lift: float = Field(0.0, ge=0.0, le=2.0, description="Divide column b by count(b)**lift (0: raw counts).")
    prompt_items: int = Field(3, ge=1, description="How many of the most recent prompt items vote.")
    prompt_decay_lambda: float = Field(1.0, gt=0, description="Vote weight exp(-distance/lambda).")
    row_normalise: bool = True
    backfill: bool = True


def pair_weight(distance: np.ndarray, kind: str, window: int) -> np.ndarray:
    """Weight of a pair ``distance`` steps apart (1 = adjacent) under ``kind``."""
    if kind == "uniform":
        return np.ones_like(np.asarray(distance, dtype=np.float64))
    if kind == "linear":
        return 1.0 - (distance - 1) / window
    if kind == "harmonic":
        return 1.0 / distance
    return 1.0 / distance**2


def pair_matrix(
    sessions: Sequence[Sequence[int]], n_items: int, window: int, kind: str, direction: str
) -> sp.csr_matrix:
    """(n_items, n_items) distance-weighted pair counts (a before b in row a, column b; ``both``: also b, a),
    the diagonal (an item next to itself) removed."""
    rows, cols, weights = [], [], []
    for session in sessions:
        items = np.asarray(session, dtype=np.int64)
        for distance in range(1, min(window, len(items) - 1) + 1):
            rows.append(items[:-distance])
            cols.append(items[distance:])
            weights.append(np.full(len(items) - distance, pair_weight(np.array(distance), kind, window)))
    if rows:
        row, col, weight = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        if direction == "both":
            row, col, weight = np.concatenate([row, col]), np.concatenate([col, row]), np.concatenate([weight, weight])
        matrix = sp.csr_matrix((weight, (row, col)), shape=(n_items, n_items))
    else:
        matrix = sp.csr_matrix((n_items, n_items))
    matrix.setdiag(0.0)
    matrix.eliminate_zeros()
    return matrix


class CoVisitation(Recommender):
    """Distance-weighted, optionally directional and lift-normalised co-visitation (module docstring)."""

    name = "covisit"
    config_class: ClassVar[type[BaseModel]] = CoVisitConfig
    evidence_kind: ClassVar[str] = "co-session"
    fixed: ClassVar[dict[str, Any]] = {}  # options a subclass fixes (not hyper-parameters of its own)

    def __init__(self, config: BaseModel | None = None, **overrides: Any) -> None:
        base = config.model_dump() if config is not None else {}
        self.config: Any = self.config_class.model_validate({**base, **overrides})
        self.options = CoVisitConfig.model_validate({**self.fixed, **self.config.model_dump()})

    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def fit(self, data: TrainData) -> Self:
        cfg = self.options
        self.n_items = data.n_items
        sessions = [session.items for session in data.sessions]
        matrix = pair_matrix(sessions, self.n_items, cfg.window, cfg.pair_weight, cfg.direction)
        counts = item_counts(data.sessions, data.n_items)
        if cfg.lift > 0:
            matrix = matrix @ sp.diags(1.0 / np.maximum(counts, 1.0) ** cfg.lift)
        if cfg.row_normalise:
            sums = np.asarray(matrix.sum(axis=1)).ravel()
            matrix = sp.diags(1.0 / np.maximum(sums, 1e-12)) @ matrix
        self.rules = sp.csr_matrix(matrix)
        self.backfill_scores = 1e-9 * counts / max(counts.max(), 1.0)
        return self

    def votes(self, prompt: Sequence[int]) -> dict[int, float]:
        """The voting prompt items and their weights (the most recent ``prompt_items``; a repeat keeps its
        most recent weight)."""
        cfg = self.options
        found: dict[int, float] = {}
        for distance, item in enumerate(reversed(list(prompt)[-cfg.prompt_items :])):
            found[int(item)] = max(found.get(int(item), 0.0), float(np.exp(-distance / cfg.prompt_decay_lambda)))
        return found

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        rows, cols, values = [], [], []
        for row, prompt in enumerate(prompts):
            for item, weight in self.votes(prompt).items():
                rows.append(row)
                cols.append(item)
                values.append(weight)
        voters = sp.csr_matrix((values, (rows, cols)), shape=(len(prompts), self.n_items))
        scores = np.asarray((voters @ self.rules).todense())
        if self.options.backfill:
            scores += self.backfill_scores
        return scores

    def pair_scores(self, sources: Sequence[int], items: Sequence[int]) -> np.ndarray:
        """(len(sources), len(items)) weights of the pairs source -> item (the ranker's co-occurrence)."""
        return _rows_at(self.rules, np.asarray(sources, dtype=np.int64), np.asarray(items, dtype=np.int64))

    def state(self) -> dict[str, np.ndarray]:
        rules = self.rules.tocsr()
        return {
            "data": rules.data,
            "indices": rules.indices,
            "indptr": rules.indptr,
            "backfill_scores": self.backfill_scores,
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.n_items = int(state["indptr"].size - 1)
        self.rules = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=(self.n_items, self.n_items)
        )
        self.backfill_scores = state["backfill_scores"]

    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        """The voting session item whose pair with each item weighs most."""
        votes = self.votes(prompt)
        sources = np.fromiter(votes, dtype=np.int64)
        vote = np.fromiter(votes.values(), dtype=np.float64)
        block = self.pair_scores(sources, items) * vote[:, None]
        rows = np.argmax(block, axis=0)  # per item, the first voter of the largest weight
        values = block[rows, np.arange(block.shape[1])]
        return [
            Evidence(int(sources[row]), self.evidence_kind, value) if value > 0 else None
            for row, value in zip(rows.tolist(), values.tolist(), strict=True)
        ]


def _rows_at(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``matrix[rows][:, columns]`` as a dense array, found by a sorted search in each row's stored columns
    (a few rows, any catalogue size: no dense row and no sparse column indexing)."""
    picked = matrix[rows]
    picked.sum_duplicates()  # canonical: sorted column indices, one entry each
    out = np.zeros((rows.size, columns.size), dtype=picked.dtype)
    for row in range(rows.size):
        start, end = picked.indptr[row], picked.indptr[row + 1]
        stored, values = picked.indices[start:end], picked.data[start:end]
        if stored.size == 0:
            continue
        slot = np.minimum(np.searchsorted(stored, columns), stored.size - 1)
        out[row] = np.where(stored[slot] == columns, values[slot], 0.0)
    return out


class LiftConfig(CoVisitConfig):
    lift: float = Field(0.5, gt=0.0, le=2.0, description="Divide column b by count(b)**lift (> 0 here).")


class LiftCoVisitation(CoVisitation):
    """Co-visitation with lift normalisation on (its own registry name, tuning record and grid)."""

    name = "covisit-lift"
    config_class: ClassVar[type[BaseModel]] = LiftConfig
