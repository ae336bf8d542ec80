"""The protocol's ranking rule, in one place: how scores become a ranked list and where the target lands.

The rule (the published Beauty protocol): the full catalogue is ranked, items of the prompt are excluded
(score ``-inf``, never listed), and ties are *conservative*: a target whose score equals other items' is
ranked after all of them, so a tie never counts in the model's favour. Outside evaluation (no target),
equal scores break by ascending item index, so lists are deterministic.

Every place that ranks calls this module: models' ``recommend`` (:func:`top_k`), the evaluation
harness (:func:`top_k` with the target, :func:`conservative_cut` on the graph's ranked answer), the
fusion fit (:func:`grouped_target_ranks` over each case's candidates) and the torch trainer's
validation (:func:`target_ranks` over the catalogue). They all count a target's rank the same way:
``1 + #items scoring above it + #other items scoring the same``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

NEVER = -np.inf  # score of an item that may not be recommended (excluded, or unknown to the model)


def order_best_first(items: np.ndarray, scores: np.ndarray, target: int | None = None) -> np.ndarray:
    """Positions of ``items`` sorted best score first; equal scores: the target last, then ascending item."""
    is_target = (items == target).astype(np.int8) if target is not None else np.zeros(items.size, np.int8)
    return np.lexsort((items, is_target, -scores))


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
    return _best(None, values, k, target)


def top_k_among(
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    exclude: Iterable[int] = (),
    target: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` over a subset: ``items`` (ascending, distinct) scored ``scores``, every other item
    counted as ``-inf``. The same list :func:`top_k` gives on the dense vector, without building it (the
    title kNN's approximate index scores a few thousand of 500k items)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    item_arr = np.asarray(items, dtype=np.int64)
    values = np.array(scores, dtype=np.float64, copy=True)
    exclude_idx = np.fromiter(exclude, dtype=np.int64)
    if exclude_idx.size:
        values[np.isin(item_arr, exclude_idx)] = NEVER
    return _best(item_arr, values, k, target)


def _best(items: np.ndarray | None, values: np.ndarray, k: int, target: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The rule itself: ``values`` of ascending ``items`` (None: item ``i`` is position ``i``), modified in
    place, -> the top ``k`` items and scores, best first."""
    values[np.isnan(values)] = NEVER  # a NaN score carries no evidence: never list it
    n_valid = int(np.count_nonzero(values > NEVER))
    k = min(k, n_valid)
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    kth = np.partition(values, values.size - k)[values.size - k]
    above = np.flatnonzero(values > kth)
    tied = np.flatnonzero(values == kth)  # ascending item index: the deterministic tie order
    if target is not None:
        target_pos = np.flatnonzero((tied if items is None else items[tied]) == target)
        if target_pos.size:
            tied = np.concatenate([np.delete(tied, target_pos), tied[target_pos]])
    chosen = np.concatenate([above, tied[: k - above.size]])
    ids = chosen if items is None else items[chosen]
    order = order_best_first(ids, values[chosen], target)
    return ids[order], values[chosen][order]


def conservative_cut(
    items: Sequence[int], scores: Sequence[float], target: int, k: int
) -> tuple[list[int], list[float]]:
    """A ranked list (best first) re-ordered by the tie rule around ``target``, then cut to ``k``.

    For lists that were ranked elsewhere (the graph's fused answer): the target moves behind every item
    that shares its score, exactly where :func:`top_k` would have put it.
    """
    item_arr = np.asarray(items, dtype=np.int64)
    score_arr = np.asarray(scores, dtype=np.float64)
    if item_arr.size == 0:
        return [], []
    # stable on the given order among non-target ties: rank by (-score, is_target, original position)
    is_target = (item_arr == target).astype(np.int8)
    order = np.lexsort((np.arange(item_arr.size), is_target, -score_arr))
    return item_arr[order][:k].tolist(), score_arr[order][:k].tolist()


def conservative_rank(scores: np.ndarray, target: int, exclude: Iterable[int] = ()) -> int | None:
    """1-based rank of ``target`` over the whole catalogue, ties against it; None if it is excluded."""
    ranks = target_ranks(np.asarray(scores, dtype=np.float64)[None, :], [target], [list(exclude)])
    return None if ranks[0] == 0 else int(ranks[0])


def target_ranks(
    scores: np.ndarray, targets: Sequence[int], exclude: Sequence[Iterable[int]] | None = None, *, chunk: int = 512
) -> np.ndarray:
    """1-based conservative rank of each row's target over all columns; 0 when the target is excluded.

    ``scores`` is (n_cases, n_items) and is not modified; rows are processed in chunks so the boolean
    comparisons stay small for large catalogues.
    """
    n_cases = scores.shape[0]
    ranks = np.zeros(n_cases, dtype=np.int64)
    target_arr = np.asarray(targets, dtype=np.int64)
    for start in range(0, n_cases, chunk):
        block = np.array(scores[start : start + chunk], dtype=np.float64, copy=True)
        rows = np.arange(block.shape[0])
        if exclude is not None:
            for row, excluded in enumerate(exclude[start : start + chunk]):
                idx = np.fromiter(excluded, dtype=np.int64)
                if idx.size:
                    block[row, idx] = NEVER
        block[np.isnan(block)] = NEVER
        own = block[rows, target_arr[start : start + chunk]]
        counted = np.count_nonzero(block >= own[:, None], axis=1)  # includes the target itself
        ranks[start : start + chunk] = np.where(own > NEVER, counted, 0)
    return ranks


def grouped_target_ranks(scores: np.ndarray, offsets: np.ndarray, target_rows: np.ndarray) -> np.ndarray:
    """Conservative rank of each group's target among the group's rows (0 = the group lacks its target).

    Groups are contiguous: group ``g`` owns rows ``offsets[g]:offsets[g + 1]`` and its target is the global
    row ``target_rows[g]`` (``-1`` when none of the rows is the target). Used for candidate lists, where
    items outside a group are never ranked.
    """
    n_groups = target_rows.size
    ranks = np.zeros(n_groups, dtype=np.int64)
    has = target_rows >= 0
    group_of_row = np.repeat(np.arange(n_groups), np.diff(offsets))
    target_score = np.full(n_groups, np.inf)
    target_score[has] = scores[target_rows[has]]
    at_least = scores >= target_score[group_of_row]
    counts = np.bincount(group_of_row, weights=at_least, minlength=n_groups).astype(np.int64)
    ranks[has] = counts[has]  # includes the target itself: ties count against it
    return ranks


def per_case_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-case HR, MRR and NDCG at ``k`` from 1-based ranks (0, or a rank beyond ``k``, is a miss)."""
    rank = np.asarray(ranks, dtype=np.float64)
    hit = (rank > 0) & (rank <= k)
    safe = np.where(hit, rank, 1.0)
    return {
        "hr": hit.astype(np.float64),
        "mrr": np.where(hit, 1.0 / safe, 0.0),
        "ndcg": np.where(hit, 1.0 / np.log2(safe + 1.0), 0.0),
    }


def mean_metrics(ranks: np.ndarray, k: int) -> dict[str, float]:
    """``{"hr@k": ..., "mrr@k": ..., "ndcg@k": ...}``: means of :func:`per_case_metrics`."""
    return {f"{name}@{k}": float(values.mean()) for name, values in per_case_metrics(ranks, k).items()}
