"""The SQLite response cache: live, record and replay-only modes."""

from __future__ import annotations

import pytest
from fakes.openai_chat import FakeChatServer, tool_call

from agents.cache import ResponseCache
from agents.config import LLMConfig
from agents.errors import CacheMiss, LLMFailure
from agents.intent import infer_intent
from agents.provider import ChatClient, Endpoint
from sessiondata.errors import ConfigError

ANSWER = {
    "summary": "Mascara shopper.",
    "categories": ["mascara"],
    "keywords": ["mascara", "lash", "black"],
    "confidence": 0.6,
}


def client(server: FakeChatServer, path, mode: str, **overrides: object) -> ChatClient:
    config = LLMConfig(
        base_url=server.base_url, model="fake-model", cache_mode=mode, cache_path=path, http_retries=0, **overrides
    )
    return ChatClient(config, endpoint=Endpoint(server.base_url, "fake-endpoint", "k", True), home=path.parent)


def test_record_then_replay(tmp_path):
    path = tmp_path / "llm.sqlite"
    with FakeChatServer([tool_call("Intent", ANSWER, prompt_tokens=70, completion_tokens=30)]) as server:
        recorder = client(server, path, "record")
        first = infer_intent(["Maybelline Mascara"], recorder)
        second = infer_intent(["Maybelline Mascara"], recorder)  # a hit: no second HTTP request
    assert first == second and len(server.requests) == 1
    totals = recorder.account.totals()
    assert totals["calls"] == 2 and totals["cache_hits"] == 1 and totals["prompt_tokens"] == 70

    with FakeChatServer() as silent:  # no scripted replies: any request would fail
        replayer = client(silent, path, "replay")
        assert infer_intent(["Maybelline Mascara"], replayer) == first
        with pytest.raises(CacheMiss, match="replay"):
            infer_intent(["A title never recorded"], replayer)
        with pytest.raises(CacheMiss):  # the same prompt under other sampling parameters is another request
            infer_intent(["Maybelline Mascara"], client(silent, path, "replay", temperature=0.7))
    assert silent.requests == []
    assert not issubclass(CacheMiss, LLMFailure)  # callers that degrade on LLMFailure do not hide a miss


def test_live_mode_neither_reads_nor_writes(tmp_path):
    path = tmp_path / "llm.sqlite"
    with FakeChatServer([tool_call("Intent", ANSWER)] * 2) as server:
        live = client(server, path, "live")
        infer_intent(["Maybelline Mascara"], live)
        infer_intent(["Maybelline Mascara"], live)
    assert len(server.requests) == 2
    assert len(ResponseCache(path, "record")) == 0


def test_the_key_names_the_endpoint_and_model(tmp_path):
    path = tmp_path / "llm.sqlite"
    with FakeChatServer([tool_call("Intent", ANSWER)] * 2) as server:
        infer_intent(["Maybelline Mascara"], client(server, path, "record"))
        other = ChatClient(
            LLMConfig(base_url=server.base_url, model="other-model", cache_mode="record", cache_path=path),
            endpoint=Endpoint(server.base_url, "fake-endpoint", "k", True),
            home=tmp_path,
        )
        infer_intent(["Maybelline Mascara"], other)
    assert len(server.requests) == 2 and len(ResponseCache(path, "record")) == 2


def test_replay_without_a_cache_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"llm\.cache_path"):
        ResponseCache(tmp_path / "missing.sqlite", "replay")
    with pytest.raises(ConfigError, match=r"llm\.cache_mode"):
        ResponseCache(tmp_path / "x.sqlite", "sometimes")  # type: ignore[arg-type]


def test_only_validated_replies_are_stored_so_a_recovered_llm_is_used(tmp_path):
    """A bad reply (retried once, still bad) is never cached: once the LLM answers well, it is asked again."""
    path = tmp_path / "llm.sqlite"
    bad = tool_call("Intent", {**ANSWER, "keywords": ["one"]})  # fails the schema (3 keywords at least)
    with FakeChatServer([bad, bad, tool_call("Intent", ANSWER)]) as server:
        recorder = client(server, path, "record")
        with pytest.raises(LLMFailure, match="malformed"):
            infer_intent(["Maybelline Mascara"], recorder)
        assert len(ResponseCache(path, "record")) == 0
        recovered = infer_intent(["Maybelline Mascara"], recorder)
        assert recovered.summary == ANSWER["summary"] and len(server.requests) == 3
        assert infer_intent(["Maybelline Mascara"], recorder) == recovered  # now a hit
    assert len(server.requests) == 3 and len(ResponseCache(path, "record")) == 1
