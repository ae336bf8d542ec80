"""The in-context LLM recommender: proposed titles mapped onto the catalogue, degrading on LLM failure."""

from __future__ import annotations

import json
import zlib
from collections import Counter

import numpy as np
from fakes.openai_chat import FakeChatServer, error, tool_call

from agents.config import LLMConfig
from agents.provider import ChatClient, Endpoint
from agents.recommender import LLMRecommender, clean_proposal, session_scores
from embeddings.base import EmbeddingProvider
from evals.pipelines import train_data


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


def test_proposed_titles_become_ranked_items_and_failures_degrade(beauty_protocol, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSR_HOME", str(tmp_path))  # the embedding cache goes here
    catalog = beauty_protocol.dataset.catalog
    case = beauty_protocol.test.cases[0]
    counts = Counter(catalog.titles)
    unique = [i for i, t in enumerate(catalog.titles) if t and counts[t] == 1 and i not in case.prompt]
    first, second = unique[100], unique[2000]
    answer = {"titles": [catalog.titles[first], catalog.titles[second]]}
    with FakeChatServer([tool_call("NextProducts", answer), error(500)]) as server:
        config = LLMConfig(base_url=server.base_url, model="fake-model", cache_mode="live", http_retries=0)
        client = ChatClient(config, endpoint=Endpoint(server.base_url, "fake", "k", True), home=tmp_path)
        model = LLMRecommender(client=client, embedder=WordHash(), home=tmp_path, n_proposals=5)
        assert isinstance(model, LLMRecommender)
        model.fit(train_data(beauty_protocol, "test"))
        (ranked,) = model.recommend([case.prompt], k=20)
        (degraded,) = model.recommend([case.prompt], k=20)  # HTTP 500: session similarity instead
    assert ranked.items[0] == first and second in ranked.items
    assert not set(ranked.items) & set(case.prompt)
    request = server.requests[0]
    assert "Propose 5 products" in request["messages"][1]["content"]
    (tool,) = request["tools"]  # the schema caps the list at N, so a grammar-bound model must stop there
    assert tool["function"]["name"] == "NextProducts"
    assert tool["function"]["parameters"]["properties"]["titles"]["maxItems"] == 5
    expected = session_scores(case.prompt, model.item_vectors, model.fallback_decay)
    expected[list(case.prompt)] = -np.inf
    assert degraded.items[0] == int(np.argmax(expected))
    assert model.stats == {"llm_ok": 1, "llm_failed": 1}
    usage = json.loads(model.usage_path.read_text())
    assert usage["totals"]["calls"] == 2 and usage["totals"]["failed_calls"] == 1
    assert usage["params"]["prompt_version"] and usage["params"]["llm_endpoint"] == "fake"


def test_proposals_lose_list_numbering_and_junk():
    assert [clean_proposal(t) for t in ["1. OPI Nail Lacquer", "]\n", "- Essie Ballet Slippers", "10) Revlon"]] == [
        "OPI Nail Lacquer",
        "",
        "Essie Ballet Slippers",
        "Revlon",
    ]
