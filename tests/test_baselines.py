"""Popularity, session-kNN and sequential rules: exact behaviour on toy data, learning on real Beauty data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evals.metrics import per_case, rank_of
from sessiondata.errors import ConfigError
from sessiondata.schema import Catalog, Session
from sr_models.base import TrainData
from sr_models.knn import SKNN, SessionKNN, prompt_weights
from sr_models.popularity import Popularity
from sr_models.ranking import top_k
from sr_models.registry import MODELS, SHIPPED_TUNED_DIR, build_model, tuned_params
from sr_models.rules import SequentialRules

TOY_CATALOG = Catalog(ids=tuple(range(8)), titles=tuple(f"t{i}" for i in range(8)))
TOY = TrainData(
    sessions=[
        Session(0, (0, 1, 2), (1, 2, 3)),
        Session(1, (0, 1, 3), (4, 5, 6)),
        Session(2, (4, 5, 6), (7, 8, 9)),
        Session(3, (1, 2, 7), (10, 11, 12)),
    ],
    catalog=TOY_CATALOG,
)


def test_popularity_ranks_by_training_counts():
    model = Popularity().fit(TOY)
    result = model.recommend([[7]], 3)[0]
    assert result.items == [1, 0, 2]  # 1 occurs 3x, 0 and 2 twice (tie broken by index)


def test_vsknn_scores_items_of_similar_sessions():
    model = SessionKNN(k=10, sample_size=10, prompt_decay="none", backfill=False).fit(TOY)
    scores = model.score([[0, 1]])[0]
    # sessions 0 and 1 share both items (sim 2), session 3 shares item 1 (sim 1)
    assert scores[2] == pytest.approx(2 + 1)
    assert scores[3] == pytest.approx(2)
    assert scores[7] == pytest.approx(1)
    assert scores[4] == 0.0
    assert model.recommend([[0, 1]], 3)[0].items == [2, 3, 7]


def test_neighbour_decay_prefers_items_next_to_the_shared_one():
    data = TrainData([Session(0, (0, 1, 2, 3, 4, 5), tuple(range(6)))], TOY_CATALOG)
    model = SessionKNN(k=5, neighbour_decay_lambda=1.0, backfill=False).fit(data)
    scores = model.score([[2]])[0]
    assert scores[1] == pytest.approx(scores[3])
    assert scores[3] > scores[4] > scores[5] > 0


def test_prompt_weights_favour_recent_items():
    for decay in ("linear", "harmonic", "exp"):
        weights = prompt_weights(4, decay, 2.0)
        assert weights[-1] == pytest.approx(1.0)
        assert np.all(np.diff(weights) > 0)
    assert prompt_weights(3, "none", 1.0).tolist() == [1, 1, 1]


def test_sknn_uses_cosine_without_decay():
    model = SKNN().fit(TOY)
    assert model.config.similarity == "cosine" and model.config.prompt_decay == "none"


def test_sequential_rules_follow_item_order():
    model = SequentialRules(window=2, prompt_items=1, backfill=False).fit(TOY)
    scores = model.score([[1]])[0]
    assert scores[2] > scores[3] > 0  # 1->2 twice, 1->3 once
    assert scores[0] == 0.0  # 0 only ever precedes 1


def test_recommend_rejects_an_empty_prompt():
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        Popularity().fit(TOY).recommend([[]], 3)


def test_unknown_model_and_bad_params_are_named():
    with pytest.raises(ConfigError, match="model='nope'"):
        build_model("nope")
    with pytest.raises(ConfigError, match="not valid for model 'vsknn'"):
        build_model("vsknn", k=-1)


def _valid_scores(protocol, model, n=800):
    fold = protocol.valid
    model.fit(TrainData(fold.train, protocol.dataset.catalog))
    cases = fold.cases[:n]
    scores = model.score([c.prompt for c in cases])
    ranks = [
        rank_of(c.target, top_k(row, 20, exclude=c.prompt, target=c.target)[0].tolist())
        for row, c in zip(scores, cases, strict=True)
    ]
    return {name: values.mean() for name, values in per_case(ranks, 20).items()}


@pytest.mark.parametrize("name", ["sknn", "vsknn", "sr"])
def test_baselines_beat_popularity_on_real_validation_cases(beauty_protocol, name):
    popularity = _valid_scores(beauty_protocol, Popularity())
    model = _valid_scores(beauty_protocol, build_model(name, "amazon-beauty"))
    assert model["hr"] > 2 * popularity["hr"]
    assert model["mrr"] > 2 * popularity["mrr"]


def test_the_default_pipelines_models_have_a_recorded_tuning_on_beauty():
    # torch models also have grids, but a search over them costs hours of CPU; they train with defaults
    for name in ("sknn", "vsknn", "sr", "title-knn", "vsknn-sem"):
        assert MODELS[name].grid and tuned_params("amazon-beauty", name) is not None, name
        record = json.loads((SHIPPED_TUNED_DIR / "amazon-beauty" / f"{name}.json").read_text())
        assert record["selected_on"].startswith("validation fold")


def test_validation_metrics_without_extra_cutoffs(slice_protocol, slice_settings):
    """What `semsr tune` scores each trial with, on a dataset that ships no tuning record (the slice)."""
    from evals.tuning import validation_metrics

    metrics = validation_metrics(slice_protocol, "popularity", {}, 20, slice_settings)
    assert set(metrics) == {"hr@20", "mrr@20", "ndcg@20"}
    assert 0.0 <= metrics["mrr@20"] <= metrics["hr@20"] <= 1.0
