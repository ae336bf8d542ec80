"""Co-visitation variants, sequential rules as their forward case, recent popularity, and the per-source
list lengths chosen on validation, on real Beauty sessions (slices of a few hundred)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from evals.candidate_choice import choose_candidates, greedy_choice, target_positions, union_recall
from evals.ranker_fit import prefix_queries
from graphs.candidates import model_candidates
from sessiondata.protocol import Protocol
from sessiondata.schema import Dataset
from sr_models.base import TrainData, train_data
from sr_models.covisit import CoVisitation, LiftCoVisitation
from sr_models.popularity import RecentPopularity, item_counts, latest_sessions
from sr_models.registry import MODELS, build_model
from sr_models.rules import SequentialRules


@pytest.fixture(scope="module")
def data(beauty: Dataset) -> TrainData:
    """400 real sessions of at least three items (every distance up to 2 occurs)."""
    sessions = [s for s in beauty.sessions if len(s.items) >= 3][:400]
    return TrainData(sessions=sessions, catalog=beauty.catalog)


def _pairs(data: TrainData, window: int, weight) -> dict[tuple[int, int], float]:
    """Forward pairs counted by hand, the definition of the co-visitation matrix."""
    found: dict[tuple[int, int], float] = defaultdict(float)
    for session in data.sessions:
        for i, a in enumerate(session.items):
            for d in range(1, window + 1):
                if i + d < len(session.items) and session.items[i + d] != a:
                    found[(a, session.items[i + d])] += weight(d)
    return found


def test_directional_ignores_backward_pairs_and_both_is_their_sum(data: TrainData) -> None:
    plain = {"window": 3, "pair_weight": "uniform", "row_normalise": False, "backfill": False}
    forward = CoVisitation(direction="forward", **plain).fit(data).rules
    both = CoVisitation(direction="both", **plain).fit(data).rules
    pairs = _pairs(data, 3, lambda d: 1.0)
    a, b = next((a, b) for (a, b) in pairs if (b, a) not in pairs)  # only ever seen as a before b
    assert forward[a, b] == pairs[(a, b)] and forward[b, a] == 0.0
    assert both[b, a] == both[a, b] == pairs[(a, b)]
    assert abs(both - (forward + forward.T)).max() == 0.0
    assert forward.nnz == len(pairs)


def test_distance_weighting_follows_the_pair_weight(data: TrainData) -> None:
    for kind, weight in (("harmonic", lambda d: 1 / d), ("quadratic", lambda d: 1 / d**2), ("uniform", lambda d: 1.0)):
        model = CoVisitation(direction="forward", window=2, pair_weight=kind, row_normalise=False).fit(data)
        pairs = _pairs(data, 2, weight)
        rows, cols = zip(*pairs, strict=True)
        np.testing.assert_allclose(model.rules[list(rows), list(cols)].A1, list(pairs.values()), rtol=1e-12)
    near = CoVisitation(window=1, pair_weight="uniform", row_normalise=False).fit(data).rules
    wide = CoVisitation(window=2, pair_weight="uniform", row_normalise=False).fit(data).rules
    assert wide.nnz > near.nnz  # the second neighbour adds pairs a window of one never counts


def test_lift_divides_by_the_target_count_and_demotes_popular_items(data: TrainData, beauty: Dataset) -> None:
    raw = CoVisitation(window=3, row_normalise=False, backfill=False).fit(data)
    lifted = LiftCoVisitation(window=3, lift=1.0, row_normalise=False, backfill=False).fit(data)
    counts = item_counts(data.sessions, data.n_items)
    expected = raw.rules @ sp.diags(1.0 / np.maximum(counts, 1.0))
    assert lifted.rules.nnz == raw.rules.nnz and abs(lifted.rules - expected).max() < 1e-12
    prompts = [s.items[:-1] for s in beauty.sessions[400:700] if len(s.items) >= 3]
    mean_pop = {}
    for name, model in (("raw", raw), ("lift", lifted)):
        lists = model.recommend(prompts, 10)
        mean_pop[name] = np.mean([np.log1p(counts[r.items]).mean() for r in lists if r.items])
    assert mean_pop["lift"] < mean_pop["raw"]


def test_sequential_rules_is_forward_co_visitation_with_the_same_scores(data: TrainData, beauty: Dataset) -> None:
    """Rules scores by hand (pairs, row sums, exp-decayed votes of the last items, the popularity backfill)."""
    rules = SequentialRules(window=3, pair_weight="harmonic", prompt_items=2, prompt_decay_lambda=1.0).fit(data)
    same = CoVisitation(direction="forward", window=3, pair_weight="harmonic", prompt_items=2).fit(data)
    prompts = [s.items for s in beauty.sessions[400:460]]
    np.testing.assert_array_equal(rules.score(prompts), same.score(prompts))
    pairs = _pairs(data, 3, lambda d: 1 / d)
    totals: dict[int, float] = defaultdict(float)
    for (a, _), w in pairs.items():
        totals[a] += w
    counts = item_counts(data.sessions, data.n_items)
    for prompt in prompts[:10]:
        expected = 1e-9 * counts / counts.max()
        votes: dict[int, float] = {}
        for d, item in enumerate(reversed(prompt[-2:])):
            votes[item] = max(votes.get(item, 0.0), float(np.exp(-d)))
        for (a, b), w in pairs.items():
            if a in votes:
                expected[b] += votes[a] * w / totals[a]
        np.testing.assert_allclose(rules.score([prompt])[0], expected, rtol=1e-9, atol=1e-15)
    assert rules.params() == {k: v for k, v in rules.config.model_dump().items()}  # no new hyper-parameters
    assert "direction" not in rules.params()


def test_recent_popularity_counts_only_the_latest_sessions(data: TrainData) -> None:
    model = RecentPopularity(fraction=0.25).fit(data)
    latest = latest_sessions(data.sessions, 0.25)
    assert len(latest) == 100 and min(s.end_time for s in latest) >= max(
        s.end_time for s in data.sessions if s not in latest
    )
    np.testing.assert_array_equal(model.counts, item_counts(latest, data.n_items, unit="session"))
    assert set(MODELS) >= {"covisit", "covisit-lift", "recent-popularity"}
    assert all(MODELS[name].grid for name in ("covisit", "covisit-lift", "recent-popularity"))
    with pytest.raises(ValueError, match="fraction"):
        RecentPopularity(fraction=0.0)


def test_list_lengths_are_chosen_from_the_grid_by_validation_union_recall(slice_protocol: Protocol) -> None:
    """On the slice's validation prefixes: each chosen N is a grid value, the budget holds, the greedy
    allocation's union recall matches a direct count and beats every source at the smallest N."""
    fold = train_data(slice_protocol, "valid")
    models = {
        "sr": build_model("sr").fit(fold),
        "covisit": build_model("covisit", window=5).fit(fold),
        "popularity": build_model("recent-popularity", fraction=0.2).fit(fold),
    }
    queries = prefix_queries(slice_protocol)
    per_query: list[dict] = [{} for _ in queries]
    for name, model in models.items():
        found = model_candidates(model, [q.prompt for q in queries], [sorted(set(q.prompt)) for q in queries], 100)
        for results, candidates in zip(per_query, found, strict=True):
            results[name] = candidates
    grid, budget = (10, 25, 50, 100), 150
    choice = choose_candidates(queries, per_query, list(models), grid, budget)
    chosen = choice["chosen"]
    assert set(chosen.values()) <= set(grid) and sum(chosen.values()) <= budget
    rows = [i for i, q in enumerate(queries) if q.last and not q.holdout]
    positions = target_positions([queries[i].target for i in rows], [per_query[i] for i in rows], list(models))
    hits = [
        any(per_query[i][s][j]["item"] == queries[i].target for s in models for j in range(min(chosen[s], 100)))
        for i in rows
    ]
    assert choice["union_recall"] == pytest.approx(np.mean(hits))
    assert choice["union_recall"] >= union_recall(positions, [min(grid)] * len(models))
    assert choice["n_queries"] == len(rows) > 0
    # a budget of the smallest N for each source leaves no choice; a larger one never loses recall
    assert set(greedy_choice(positions, list(models), grid, 3 * min(grid))["chosen"].values()) == {min(grid)}
    assert greedy_choice(positions, list(models), grid, 300)["union_recall"] >= choice["union_recall"]


def test_the_weighted_fusion_of_many_sources_refines_from_equal_weights(slice_protocol: Protocol) -> None:
    """Beyond four sources the weighted fit skips the 11**n simplex grid; it still never loses to equal weights."""
    from evals.fusion_fit import FEATURES_PER_SOURCE, GRID_SOURCES, ValidationSet, fit_weighted

    fold = train_data(slice_protocol, "valid")
    names = {"sr": {}, "covisit": {}, "covisit-lift": {}, "recent-popularity": {}, "popularity": {}}
    assert len(names) > GRID_SOURCES
    cases = slice_protocol.valid.cases
    results: list[dict] = [{} for _ in cases]
    for name, params in names.items():
        model = build_model(name, **params).fit(fold)
        found = model_candidates(model, [c.prompt for c in cases], [sorted(set(c.prompt)) for c in cases], 50)
        for row, candidates in zip(results, found, strict=True):
            row[name] = candidates
    data = ValidationSet.build(results, [c.target for c in cases], list(names))
    model = fit_weighted(data)
    equal = data.objective(data.matrix[:, 0::FEATURES_PER_SOURCE] @ np.full(len(names), 0.2), 20)
    assert sum(model.weights.values()) == pytest.approx(1.0)
    assert model.fitted_on["valid"]["ndcg@20"] >= equal["ndcg@20"]
