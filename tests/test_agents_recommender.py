"""The in-context LLM recommender (approach i): proposed titles mapped onto the catalogue; a failure raises
so that the graph's source can degrade (tests/test_graph.py covers the source in the graph)."""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pytest
from fakes.openai_chat import FakeChatServer, error, tool_call

from agents.config import LLMConfig
from agents.errors import LLMFailure
from agents.provider import ChatClient, Endpoint
from agents.recommender import NextItemAgent, clean_proposal, proposal_scores, session_scores
from embeddings.base import EmbeddingProvider
from sr_models.ranking import top_k


class WordHash(EmbeddingProvider):
    """A tiny deterministic bag-of-words embedder, so the mapping is testable without loading MiniLM."""

    id = "test-wordhash-512"
    dim = 512

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        return vectors


def test_proposed_titles_become_ranked_items_and_failures_raise(beauty_protocol, tmp_path):
    catalog = beauty_protocol.dataset.catalog
    case = beauty_protocol.test.cases[0]
    counts = Counter(catalog.titles)
    unique = [i for i, t in enumerate(catalog.titles) if t and counts[t] == 1 and i not in case.prompt]
    first, second = unique[100], unique[2000]
    answer = {"titles": [catalog.titles[first], catalog.titles[second]]}
    embedder = WordHash()
    items = embedder.embed([title or f"item {i}" for i, title in enumerate(catalog.titles)])
    with FakeChatServer([tool_call("NextProducts", answer), error(500)]) as server:
        config = LLMConfig(base_url=server.base_url, model="fake-model", cache_mode="live", http_retries=0)
        client = ChatClient(config, endpoint=Endpoint(server.base_url, "fake", "k", True), home=tmp_path)
        agent = NextItemAgent(client, n_proposals=5)
        proposals = agent.propose([catalog.titles[i] for i in case.prompt])
        with pytest.raises(LLMFailure):
            agent.propose([catalog.titles[i] for i in case.prompt])  # HTTP 500: the caller degrades
    assert proposals == answer["titles"]
    ranked, _ = top_k(proposal_scores(embedder.embed(proposals), items, 0.01), 20, exclude=case.prompt)
    assert ranked[0] == first and second in ranked and not set(ranked) & set(case.prompt)
    request = server.requests[0]
    assert "Propose 5 products" in request["messages"][1]["content"]
    (tool,) = request["tools"]  # the schema caps the list at N, so a grammar-bound model must stop there
    assert tool["function"]["name"] == "NextProducts"
    assert tool["function"]["parameters"]["properties"]["titles"]["maxItems"] == 5
    fallback = session_scores(case.prompt, items)
    assert fallback.shape == (len(catalog),) and np.isclose(fallback[case.prompt[-1]], fallback.max(), atol=0.2)
    totals = agent.account.totals()
    assert totals["calls"] == 2 and totals["failed_calls"] == 1
    assert agent.params()["prompt_version"] and agent.params()["llm_endpoint"] == "fake"


def test_proposals_lose_list_numbering_and_junk():
    assert [clean_proposal(t) for t in ["1. OPI Nail Lacquer", "]\n", "- Essie Ballet Slippers", "10) Revlon"]] == [
        "OPI Nail Lacquer",
        "",
        "Essie Ballet Slippers",
        "Revlon",
    ]
