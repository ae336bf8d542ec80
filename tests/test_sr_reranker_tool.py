"""The sr_rerank LangChain tool over real Beauty session models."""

from __future__ import annotations

import pytest

from sessiondata.errors import ConfigError
from sr_models.base import train_data
from sr_models.registry import build_model
from tools.sr_reranker import SRReranker, make_sr_rerank_tool


@pytest.fixture(scope="module")
def tool(beauty_protocol):
    data = train_data(beauty_protocol, "test")
    models = {"sr": build_model("sr", "amazon-beauty").fit(data), "popularity": build_model("popularity").fit(data)}
    train_items = frozenset(beauty_protocol.test.train_items)
    return make_sr_rerank_tool(SRReranker(models, beauty_protocol.dataset.catalog, train_items)), beauty_protocol


def _call(tool, **args):
    return tool.invoke({"name": "sr_rerank", "args": args, "id": "1", "type": "tool_call"})


def test_scores_a_session_with_every_model(tool):
    tool, protocol = tool
    catalog = protocol.dataset.catalog
    case = protocol.test.cases[0]
    session = [catalog.ids[i] for i in case.prompt]
    message = _call(tool, item_ids=session, k=5)
    assert message.content.startswith("Session models' top items")
    models = message.artifact["models"]
    assert set(models) == {"sr", "popularity"}
    assert all(len(m["items"]) == 5 for m in models.values())
    assert not set(models["sr"]["items"]) & set(case.prompt)
    assert models["sr"]["scores"] == sorted(models["sr"]["scores"], reverse=True)


def test_reranks_only_the_given_candidates(tool):
    tool, protocol = tool
    catalog = protocol.dataset.catalog
    session = [catalog.ids[i] for i in protocol.test.cases[1].prompt]
    candidates = [catalog.ids[i] for i in range(100, 110)]
    message = _call(tool, item_ids=session, k=10, candidate_ids=candidates, models=["popularity"])
    ranked = message.artifact["models"]["popularity"]["items"]
    assert {catalog.ids[i] for i in ranked} <= set(candidates)
    counts = [message.artifact["models"]["popularity"]["scores"][j] for j in range(len(ranked))]
    assert counts == sorted(counts, reverse=True)


def test_cold_sessions_and_bad_input(tool, beauty):
    tool, protocol = tool
    catalog = protocol.dataset.catalog
    cold = next(i for i in range(len(catalog)) if i not in protocol.test.train_items)
    message = _call(tool, item_ids=[catalog.ids[cold]], k=5)
    assert "cold start" in message.content and message.artifact["cold_items"] == [catalog.ids[cold]]
    with pytest.raises(ConfigError, match="item_ids"):
        _call(tool, item_ids=[], k=5)
    with pytest.raises(ConfigError, match="k=0"):
        _call(tool, item_ids=[catalog.ids[0]], k=0)
    with pytest.raises(ConfigError, match="not in the catalogue"):
        _call(tool, item_ids=[-42], k=5)
    with pytest.raises(ConfigError, match="models='gru'"):
        _call(tool, item_ids=[catalog.ids[0]], k=5, models=["gru"])
