"""Sequential rules (session-rec's "SR", Ludewig & Jannach 2018): which items follow which, and how closely.

For every training session and every pair (a before b) at most ``window`` steps apart, the rule a -> b
gains a weight that falls with the distance. A prompt is scored from the rules of its last few items,
the most recent weighted most. Cheap, strong on sparse data, and a good partner for semantic sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from sr_models.base import Evidence, Recommender, TrainData
from sr_models.popularity import item_counts


class RulesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(10, ge=1, description="Largest distance between the two items of a rule.")
    pair_weight: Literal["linear", "harmonic", "quadratic"] = "harmonic"
    prompt_items: int = Field(3, ge=1, description="How many of the most recent prompt items vote.")
    prompt_decay_lambda: float = Field(1.0, gt=0, description="Vote weight exp(-distance/lambda).")
    row_normalise: bool = True
    backfill: bool = True


def _pair_weight(distance: np.ndarray, kind: str, window: int) -> np.ndarray:
    if kind == "linear":
        return 1.0 - (distance - 1) / window
    if kind == "harmonic":
        return 1.0 / distance
    return 1.0 / distance**2


class SequentialRules(Recommender):
    name = "sr"

    def __init__(self, config: RulesConfig | None = None, **overrides: Any) -> None:
        base = config or RulesConfig()
        self.config = RulesConfig.model_validate({**base.model_dump(), **overrides})

    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def fit(self, data: TrainData) -> Self:
        cfg = self.config
        self.n_items = data.n_items
        rows, cols, weights = [], [], []
        for session in data.sessions:
            items = np.asarray(session.items, dtype=np.int64)
            for distance in range(1, min(cfg.window, len(items) - 1) + 1):
                rows.append(items[:-distance])
                cols.append(items[distance:])
                weights.append(
                    np.full(len(items) - distance, _pair_weight(np.array(distance), cfg.pair_weight, cfg.window))
                )
        if rows:
            matrix = sp.csr_matrix(
                (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                shape=(self.n_items, self.n_items),
            )
        else:
            matrix = sp.csr_matrix((self.n_items, self.n_items))
        matrix.setdiag(0.0)
        matrix.eliminate_zeros()
        if cfg.row_normalise:
            sums = np.asarray(matrix.sum(axis=1)).ravel()
            matrix = sp.diags(1.0 / np.maximum(sums, 1e-12)) @ matrix
        self.rules = matrix.tocsr()
        counts = item_counts(data.sessions, data.n_items)
        self.backfill_scores = 1e-9 * counts / max(counts.max(), 1.0)
        return self

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        cfg = self.config
        voters = sp.lil_matrix((len(prompts), self.n_items))
        for row, prompt in enumerate(prompts):
            recent = list(prompt)[-cfg.prompt_items :]
            for distance, item in enumerate(reversed(recent)):
                voters[row, item] = max(voters[row, item], np.exp(-distance / cfg.prompt_decay_lambda))
        scores = np.asarray((voters.tocsr() @ self.rules).todense())
        if cfg.backfill:
            scores += self.backfill_scores
        return scores

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
        """The voting session item whose rule to each item weighs most, i.e. "often viewed after"."""
        cfg = self.config
        recent = list(prompt)[-cfg.prompt_items :]
        votes: dict[int, float] = {}
        for distance, item in enumerate(reversed(recent)):
            votes[int(item)] = max(votes.get(int(item), 0.0), float(np.exp(-distance / cfg.prompt_decay_lambda)))
        sources = np.fromiter(votes, dtype=np.int64)
        vote = np.fromiter(votes.values(), dtype=np.float64)
        block = _rows_at(self.rules, sources, np.asarray(items, dtype=np.int64)) * vote[:, None]
        rows = np.argmax(block, axis=0)  # per item, the first voter of the largest weight
        values = block[rows, np.arange(block.shape[1])]
        return [
            Evidence(int(sources[row]), "followed-by", value) if value > 0 else None
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
