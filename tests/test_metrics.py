"""Metrics against hand-computed values, and the conservative tie rule of the ranking code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.metrics import beyond_accuracy, bootstrap_mean, paired_bootstrap_pvalue, per_case, rank_of, summarize
from sr_models.ranking import conservative_rank, top_k


def test_rank_of_is_one_based_and_none_when_absent():
    assert rank_of(7, [3, 7, 9]) == 2
    assert rank_of(3, [3]) == 1
    assert rank_of(4, [3, 7]) is None
    assert rank_of(4, []) is None


def test_hand_computed_hr_mrr_ndcg():
    # ranks 1, 3, 12, miss
    ranks = [1, 3, 12, None]
    at10 = per_case(ranks, 10)
    assert at10["hr"].tolist() == [1, 1, 0, 0]
    assert at10["mrr"].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])
    assert at10["ndcg"].tolist() == pytest.approx([1.0, 1 / math.log2(4), 0.0, 0.0])
    at20 = per_case(ranks, 20)
    assert at20["hr"].mean() == pytest.approx(0.75)
    assert at20["mrr"].mean() == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert at20["ndcg"].mean() == pytest.approx((1 + 0.5 + 1 / math.log2(13)) / 4)


def test_summary_buckets_by_prompt_length_and_coverage():
    ranks = [1, None, 2, None]
    lists = [[0, 1], [1, 2], [3, 0], [1, 0]]
    result = summarize(ranks, lists, [1, 1, 3, 12], (1, 2), n_items=10, session_share=np.full(10, 0.25))
    metrics = result["metrics"]
    assert metrics["hr@1"] == pytest.approx(0.25)
    assert metrics["hr@2"] == pytest.approx(0.5)
    assert metrics["mrr@2"] == pytest.approx((1 + 0.5) / 4)
    assert metrics["coverage@1"] == pytest.approx(3 / 10)  # {0, 1, 3}
    assert metrics["coverage@2"] == pytest.approx(4 / 10)
    assert metrics["novelty@2"] == pytest.approx(2.0)  # -log2(0.25)
    assert result["by_prompt_length"]["1"]["n_cases"] == 2
    assert result["by_prompt_length"]["1"]["hr@2"] == pytest.approx(0.5)
    assert result["by_prompt_length"]["3-4"]["mrr@2"] == pytest.approx(0.5)
    assert result["by_prompt_length"]["10+"]["hr@2"] == 0.0
    low, high = result["ci95"]["hr@2"]["ci95_low"], result["ci95"]["hr@2"]["ci95_high"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_cases():
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.binomial(1, 0.1, 200).astype(float))
    large = bootstrap_mean(rng.binomial(1, 0.1, 20_000).astype(float))
    assert small.low <= small.mean <= small.high
    assert (large.high - large.low) < (small.high - small.low) / 5


def test_paired_bootstrap_separates_a_real_difference_from_noise():
    rng = np.random.default_rng(2)
    a = rng.binomial(1, 0.3, 3000).astype(float)
    b = a.copy()
    b[rng.choice(3000, 300, replace=False)] = 0.0
    assert paired_bootstrap_pvalue(a, b) < 0.01
    assert paired_bootstrap_pvalue(a, a) == 1.0


def test_beyond_accuracy_without_shares_reports_coverage_only():
    assert beyond_accuracy([[0, 1], [0, 2]], 1, 4, None) == {"coverage": 0.25}


def test_top_k_breaks_ties_by_index_and_excludes_items():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    items, values = top_k(scores, 3)
    assert items.tolist() == [1, 0, 2]
    assert values.tolist() == [0.9, 0.5, 0.5]
    items, _ = top_k(scores, 3, exclude=[1, 0])
    assert items.tolist() == [2, 4, 3]


def test_top_k_never_lists_minus_infinity():
    scores = np.array([1.0, -np.inf, 0.5])
    assert top_k(scores, 5)[0].tolist() == [0, 2]


def test_conservative_ties_push_the_target_after_its_equals():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    # target 0 tied with 2 and 4: listed last of the three, so cut from a top-3 list
    items, _ = top_k(scores, 3, target=0)
    assert items.tolist() == [1, 2, 4]
    items, _ = top_k(scores, 4, target=0)
    assert items.tolist() == [1, 2, 4, 0]
    assert conservative_rank(scores, 0) == 4
    assert conservative_rank(scores, 1) == 1
    # a target in the group above the cut still goes after its equals
    scores = np.array([0.9, 0.9, 0.1])
    assert top_k(scores, 3, target=0)[0].tolist() == [1, 0, 2]
    assert conservative_rank(scores, 3 - 3, exclude=[0]) is None


def test_top_k_rejects_non_positive_k():
    with pytest.raises(ValueError, match="k must be positive"):
        top_k(np.zeros(3), 0)
