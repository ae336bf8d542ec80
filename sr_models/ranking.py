"""Turning a score vector over the catalogue into a ranked top-k list, with explicit tie rules.

Ties are common (kNN leaves most of the catalogue at score 0), so how they break changes metrics. Outside
evaluation, ties break by item index (deterministic). In evaluation, the protocol's conservative rule
puts the target after every item with the same score, so a tie never counts in the model's favour.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NEVER = -np.inf  # score of an item that may not be recommended (excluded, or unknown to the model)


def top_k(
    scores: np.ndarray,
    k: int,
    *,
    exclude: Iterable[int] = (),
    target: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` item indices (best first) and their scores; items scored ``-inf`` are never listed.

    ``target`` (evaluation only) applies the conservative tie rule: the target is listed after all items
    whose score equals its own, which may push it out of the list.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    values = np.array(scores, dtype=np.float64, copy=True)
    exclude_idx = np.fromiter(exclude, dtype=np.int64)
    if exclude_idx.size:
        values[exclude_idx] = NEVER
    n_valid = int(np.count_nonzero(values > NEVER))
    k = min(k, n_valid)
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    kth = np.partition(values, values.size - k)[values.size - k]
    above = np.flatnonzero(values > kth)
    tied = np.flatnonzero(values == kth)  # ascending item index: the deterministic tie order
    if target is not None:
        target_pos = np.flatnonzero(tied == target)
        if target_pos.size:
            tied = np.concatenate([np.delete(tied, target_pos), tied[target_pos]])
    chosen = np.concatenate([above, tied[: k - above.size]])
    # best score first; among equal scores the target last (conservative), then ascending item index
    is_target = (chosen == target).astype(np.int8) if target is not None else np.zeros(chosen.size, np.int8)
    order = np.lexsort((chosen, is_target, -values[chosen]))
    chosen = chosen[order]
    return chosen, values[chosen]


def conservative_rank(scores: np.ndarray, target: int, exclude: Iterable[int] = ()) -> int | None:
    """1-based rank of ``target`` over the whole catalogue with ties against it; None if it is excluded."""
    values = np.array(scores, dtype=np.float64, copy=True)
    exclude_idx = np.fromiter(exclude, dtype=np.int64)
    if exclude_idx.size:
        values[exclude_idx] = NEVER
    own = values[target]
    if own == NEVER:
        return None
    return int(np.count_nonzero(values > own) + np.count_nonzero(values == own))
