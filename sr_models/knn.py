"""Session-kNN recommenders: SKNN and V-SKNN (Ludewig & Jannach 2018), with STAN's neighbour decay.

A prompt finds training sessions that share its items (sampled among the most recent ones), keeps the
``k`` most similar, and scores each item by the similarity of the neighbours that contain it. V-SKNN
weights prompt items by recency, can weight items by IDF, and (as STAN, Garg et al. 2019) can weight a
neighbour's items by their distance from the item it shares with the prompt.

Unscored items get a tiny popularity back-fill so that lists are always full and ties break sensibly;
the back-fill is far below any neighbour score, so it never reorders real evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from sr_models.base import Evidence, Recommender, TrainData
from sr_models.popularity import item_counts

Decay = Literal["none", "linear", "harmonic", "exp"]


class KNNConfig(BaseModel):
    """Hyper-parameters of session-kNN; the defaults are V-SKNN's from session-rec."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(100, ge=1, description="Neighbour sessions kept.")
    sample_size: int = Field(500, ge=1, description="Candidate neighbours: the most recent sessions sharing an item.")
    sampling: Literal["recent", "random"] = "recent"
    similarity: Literal["dot", "cosine"] = "dot"
    prompt_decay: Decay = Field("linear", description="Weight of prompt items by recency (V-SKNN).")
    prompt_decay_lambda: float = Field(2.0, gt=0, description="Scale of the 'exp' prompt decay, in positions.")
    neighbour_decay_lambda: float | None = Field(
        None, gt=0, description="STAN: weight neighbour items by exp(-distance/lambda) from the shared item."
    )
    idf_weight: float = Field(0.0, ge=0, description="Score multiplier 1 + idf_weight * idf(item); 0 disables.")
    backfill: bool = Field(True, description="Break ties among unscored items by popularity.")
    seed: int = 0


def prompt_weights(length: int, decay: Decay, lam: float) -> np.ndarray:
    """Weights for positions 0..length-1 (oldest first); the most recent item gets 1."""
    distance = np.arange(length - 1, -1, -1, dtype=np.float64)
    if decay == "none":
        return np.ones(length)
    if decay == "linear":
        return (length - distance) / length
    if decay == "harmonic":
        return 1.0 / (1.0 + distance)
    return np.exp(-distance / lam)


class SessionKNN(Recommender):
    """V-SKNN when ``prompt_decay`` is set; plain SKNN with ``similarity='cosine', prompt_decay='none'``."""

    name = "vsknn"

    def __init__(self, config: KNNConfig | None = None, **overrides: Any) -> None:
        base = config or KNNConfig()
        self.config = base.model_copy(update=overrides) if overrides else base
        KNNConfig.model_validate(self.config.model_dump())

    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def fit(self, data: TrainData) -> Self:
        sessions = list(data.sessions)
        self.n_items = data.n_items
        lengths = np.array([len(s) for s in sessions], dtype=np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(lengths)])
        self.seq_items = np.concatenate([np.asarray(s.items, dtype=np.int64) for s in sessions])
        self.seq_positions = np.concatenate([np.arange(n) for n in lengths])
        self.seq_session = np.repeat(np.arange(len(sessions)), lengths)
        self.session_sizes = np.array([len(set(s.items)) for s in sessions], dtype=np.float64)
        end_times = np.array([s.end_time for s in sessions], dtype=np.int64)
        # recency rank: 0 = most recent session; ties keep the later file position first
        order = np.lexsort((-np.arange(len(sessions)), -end_times))
        self.recency_rank = np.empty(len(sessions), dtype=np.int64)
        self.recency_rank[order] = np.arange(len(sessions))
        # item -> sessions containing it, most recent first
        pairs = np.unique(np.stack([self.seq_items, self.seq_session]), axis=1)
        by_item = np.lexsort((self.recency_rank[pairs[1]], pairs[0]))
        pairs = pairs[:, by_item]
        self.item_sessions_indptr = np.searchsorted(pairs[0], np.arange(self.n_items + 1))
        self.item_sessions = pairs[1]
        n_with_item = np.diff(self.item_sessions_indptr).astype(np.float64)
        self.idf = np.log(len(sessions) / np.maximum(n_with_item, 1.0))
        counts = item_counts(data.sessions, data.n_items)
        self.backfill_scores = 1e-9 * counts / max(counts.max(), 1.0)
        self.rng = np.random.default_rng(self.config.seed)
        self._index_positions()
        return self

    def _candidates(self, prompt_items: np.ndarray) -> np.ndarray:
        chunks = [
            self.item_sessions[self.item_sessions_indptr[i] : self.item_sessions_indptr[i + 1]] for i in prompt_items
        ]
        candidates = np.unique(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.int64)
        size = self.config.sample_size
        if candidates.size <= size:
            return candidates
        if self.config.sampling == "recent":
            keep = np.argpartition(self.recency_rank[candidates], size - 1)[:size]
            return candidates[keep]
        return self.rng.choice(candidates, size=size, replace=False)

    def _index_positions(self) -> None:
        """Arrays derived from the fitted state (rebuilt on ``restore``, never saved): whether each training
        position holds its item's first occurrence in its session, and the item x session incidence matrix
        (the CSR form of ``item_sessions``) that :meth:`evidence` intersects in one sparse product."""
        key = self.seq_session * self.n_items + self.seq_items
        self.seq_first = np.zeros(key.size, dtype=bool)
        self.seq_first[np.unique(key, return_index=True)[1]] = True
        shape = (self.n_items, self.indptr.size - 1)
        ones = np.ones(self.item_sessions.size, dtype=np.float32)  # shared-session counts stay exact below 2**24
        self.incidence = sp.csr_matrix((ones, self.item_sessions, self.item_sessions_indptr), shape)

    def _score_one(self, prompt: Sequence[int]) -> np.ndarray:
        prompt_arr = np.asarray(prompt, dtype=np.int64)
        candidates = self._candidates(np.unique(prompt_arr))
        return self._score_neighbours(prompt_arr, candidates)

    def _score_neighbours(
        self, prompt_arr: np.ndarray, candidates: np.ndarray, blend_with: tuple[np.ndarray, float] | None = None
    ) -> np.ndarray:
        """Catalogue scores from the candidate neighbour sessions, in whole-array steps (no Python loop over
        neighbours): keep the ``k`` most similar, then score each of their items by the neighbour's
        similarity (STAN position decay, IDF). ``tests/test_fast_paths.py`` checks it against the plain
        per-neighbour definition, bit for bit.

        ``blend_with`` = (one similarity per candidate, weight w) makes a neighbour's similarity
        ``(1 - w) * overlap + w * given`` (:mod:`sr_models.semantic_knn`: session-vector cosine); candidates
        with no positive similarity are never neighbours, and a neighbour that shares no prompt item is
        anchored, for the position decay, at its own last item."""
        cfg = self.config
        scores = np.zeros(self.n_items, dtype=np.float64)
        weights = prompt_weights(len(prompt_arr), cfg.prompt_decay, cfg.prompt_decay_lambda)
        # one weight per distinct item: its most recent occurrence counts (as does its recency)
        unique_prompt, last_from_end = np.unique(prompt_arr[::-1], return_index=True)
        last_position = prompt_arr.size - 1 - last_from_end
        if candidates.size == 0:
            return scores + self.backfill_scores if cfg.backfill else scores

        starts, lengths = self.indptr[candidates], self.indptr[candidates + 1] - self.indptr[candidates]
        owner = np.repeat(np.arange(candidates.size), lengths)
        flat = np.arange(owner.size) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        items = self.seq_items[flat]
        slot = np.minimum(np.searchsorted(unique_prompt, items), max(unique_prompt.size - 1, 0))
        in_prompt = unique_prompt[slot] == items if unique_prompt.size else np.zeros(items.size, dtype=bool)
        # similarity: sum of prompt weights of the distinct shared items
        shared = np.where(in_prompt, weights[last_position[slot]], 0.0) * self.seq_first[flat]
        similarity = np.bincount(owner, weights=shared, minlength=candidates.size)
        if cfg.similarity == "cosine":
            similarity = similarity / np.sqrt(self.session_sizes[candidates] * unique_prompt.size)
        if blend_with is not None:
            given, w = blend_with
            similarity = (1.0 - w) * similarity + w * given
        # only positive similarities compete (all of them in plain V-SKNN: every candidate shares an item)
        positive = np.flatnonzero(similarity > 0)
        if positive.size == 0:
            return scores + self.backfill_scores if cfg.backfill else scores
        n_keep = min(cfg.k, positive.size)
        top = positive[np.argpartition(-similarity[positive], n_keep - 1)[:n_keep]]

        chosen = np.zeros(candidates.size, dtype=bool)
        chosen[top] = True
        keep = chosen[owner]
        items_k, owner_k = items[keep], owner[keep]
        contribution = similarity[owner_k]
        if cfg.neighbour_decay_lambda is not None:
            positions = self.seq_positions[flat[keep]]
            # anchor: the neighbour's position of the most recent prompt item it shares (owner_k is sorted,
            # so each neighbour's rows are one run and a segment maximum finds it)
            recency = np.where(in_prompt[keep], last_position[slot[keep]], -1)
            key = np.where(recency >= 0, recency * 100_000 + positions, -1)
            runs = np.flatnonzero(np.concatenate([[True], owner_k[1:] != owner_k[:-1]]))
            best_key = np.repeat(np.maximum.reduceat(key, runs), np.diff(np.append(runs, owner_k.size)))
            # a neighbour sharing no prompt item (vector neighbours) is anchored at its own last item
            anchor = np.where(best_key >= 0, best_key % 100_000, lengths[owner_k] - 1)
            contribution = contribution * np.exp(-np.abs(positions - anchor) / cfg.neighbour_decay_lambda)
        if cfg.idf_weight > 0:
            contribution = contribution * (1.0 + cfg.idf_weight * self.idf[items_k])
        scores += np.bincount(items_k, weights=contribution, minlength=self.n_items)
        if cfg.backfill:
            scores += self.backfill_scores
        return scores

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        return np.stack([self._score_one(prompt) for prompt in prompts])

    _STATE = (
        "indptr",
        "seq_items",
        "seq_positions",
        "seq_session",
        "session_sizes",
        "recency_rank",
        "item_sessions_indptr",
        "item_sessions",
        "idf",
        "backfill_scores",
    )

    def state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._STATE}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])
        self.n_items = int(self.item_sessions_indptr.size - 1)
        self.rng = np.random.default_rng(self.config.seed)
        self._index_positions()

    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        """The session item sharing the most training sessions with each item (recency-weighted, as the
        prompt is), i.e. "viewed in the same sessions as"; ties go to the item seen first in the session.
        Shared-session counts for every (item, session item) pair come from one sparse product."""
        prompt_arr = np.asarray(prompt, dtype=np.int64)
        weights = prompt_weights(len(prompt_arr), self.config.prompt_decay, self.config.prompt_decay_lambda)
        last_weight = {int(i): float(w) for i, w in zip(prompt_arr, weights, strict=True)}  # latest wins
        if not len(items) or not last_weight:
            return [None] * len(items)
        sources = np.fromiter(last_weight, dtype=np.int64)
        wanted = np.asarray(items, dtype=np.int64)
        shared = (self.incidence[wanted] @ self.incidence[sources].T).toarray()
        values = shared * np.fromiter(last_weight.values(), dtype=np.float64)[None, :]
        best = np.argmax(values, axis=1)  # the first of equal values: the earliest-seen session item
        strength = values[np.arange(wanted.size), best]
        return [
            Evidence(int(sources[column]), "co-session", float(value)) if value > 0 else None
            for column, value in zip(best.tolist(), strength.tolist(), strict=True)
        ]


class SKNN(SessionKNN):
    """Plain session-kNN: cosine similarity over item sets, no decays."""

    name = "sknn"

    def __init__(self, config: KNNConfig | None = None, **overrides: Any) -> None:
        defaults = {"similarity": "cosine", "prompt_decay": "none"}
        super().__init__(config, **({**defaults, **overrides} if config is None else overrides))
