"""Ranking metrics computed from ranked lists only, exactly as an independent scorer of cases.jsonl would.

Accuracy: HR@k (= Recall@k with one target), MRR@k, NDCG@k. Beyond accuracy: catalogue coverage@k,
novelty@k (mean self-information of recommended items) and popularity@k (mean share of training sessions
that hold a recommended item). Every accuracy mean comes with a bootstrap 95% interval, overall and per
prompt-length bucket. A missing slot (a list shorter than k) is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sr_models.ranking import per_case_metrics

ACCURACY = ("hr", "mrr", "ndcg")
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 1), (2, 2), (3, 4), (5, 9), (10, None))


def rank_of(target: object, recommendations: Sequence[object]) -> int | None:
    """1-based position of ``target`` in the list, or None when absent."""
    for position, item in enumerate(recommendations, start=1):
        if item == target:
            return position
    return None


def per_case(ranks: Sequence[int | None], k: int) -> dict[str, np.ndarray]:
    """Per-case HR, MRR and NDCG at ``k`` (None, or a rank beyond k, counts as a miss)."""
    return per_case_metrics(np.array([r or 0 for r in ranks], dtype=np.int64), k)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high}


def bootstrap_mean(values: np.ndarray, *, n_resamples: int = 1000, seed: int = 0) -> Interval:
    """Mean with a percentile bootstrap 95% interval (cases resampled with replacement)."""
    if values.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(n_resamples, values.size))
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(low), float(high))


def paired_bootstrap_pvalue(a: np.ndarray, b: np.ndarray, *, n_resamples: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value that mean(a) == mean(b) for per-case values paired by case."""
    if a.shape != b.shape:
        raise ValueError("paired samples must cover the same cases")
    diff = a - b
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, diff.size, size=(n_resamples, diff.size))
    means = diff[draws].mean(axis=1)
    p_low = float(np.mean(means <= 0.0))
    p_high = float(np.mean(means >= 0.0))
    return min(1.0, 2.0 * min(p_low, p_high))


def beyond_accuracy(
    lists: Sequence[Sequence[int]], k: int, n_items: int, session_share: np.ndarray | None
) -> dict[str, float]:
    """Coverage@k always; novelty@k and popularity@k when per-item training shares are given."""
    cut = [list(items)[:k] for items in lists]
    distinct = {item for items in cut for item in items}
    result = {"coverage": len(distinct) / n_items if n_items else float("nan")}
    if session_share is not None:
        flat = np.array([item for items in cut for item in items], dtype=np.int64)
        if flat.size:
            share = session_share[flat]
            result["novelty"] = float(np.mean(-np.log2(np.maximum(share, 1e-12))))
            result["popularity"] = float(np.mean(share))
        else:
            result["novelty"] = result["popularity"] = float("nan")
    return result


def bucket_label(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+"
    return str(low) if low == high else f"{low}-{high}"


def summarize(
    ranks: Sequence[int | None],
    lists: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    k_values: Sequence[int],
    *,
    n_items: int,
    session_share: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """All metrics of one evaluation run as a JSON-ready dict (the content of metrics.json).

    ``ranks`` are 1-based ranks of the target in ``lists`` (None = not listed); ``lists`` hold item
    indices for the beyond-accuracy measures.
    """
    lengths = np.asarray(prompt_lengths)
    overall: dict[str, float] = {}
    intervals: dict[str, dict[str, float]] = {}
    by_length: dict[str, dict[str, float]] = {}
    for k in k_values:
        values = per_case(ranks, k)
        for metric in ACCURACY:
            name = f"{metric}@{k}"
            interval = bootstrap_mean(values[metric], n_resamples=n_resamples, seed=seed)
            overall[name] = interval.mean
            intervals[name] = interval.as_dict()
            for low, high in LENGTH_BUCKETS:
                mask = (lengths >= low) & (lengths <= (high if high is not None else lengths.max(initial=0)))
                label = bucket_label(low, high)
                bucket = by_length.setdefault(label, {"n_cases": int(mask.sum())})
                bucket[name] = float(values[metric][mask].mean()) if mask.any() else float("nan")
        for measure, value in beyond_accuracy(lists, k, n_items, session_share).items():
            overall[f"{measure}@{k}"] = value
    return {
        "n_cases": len(ranks),
        "metrics": overall,
        "ci95": intervals,
        "by_prompt_length": by_length,
        "bootstrap": {"n_resamples": n_resamples, "seed": seed},
    }
