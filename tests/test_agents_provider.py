"""The chat adapter against a real HTTP fake of an OpenAI-compatible server: tool calls, retries, errors."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from fakes.openai_chat import FakeChatServer, error, text, tool_call

from agents.config import LLMConfig, ModelPrice
from agents.errors import LLMFailure
from agents.intent import Intent, infer_intent
from agents.provider import ChatClient, Endpoint

GOOD = {
    "summary": "Looking for a red OPI nail polish.",
    "categories": ["nail polish"],
    "attributes": {"brand": "OPI", "shade": "red"},
    "keywords": ["opi", "nail lacquer", "red polish"],
    "confidence": 0.8,
}
TITLES = ["OPI Nail Lacquer, Big Apple Red", "OPI Nail Lacquer, Malaga Wine"]


def client_for(server: FakeChatServer, tmp_path: Path, **overrides: object) -> ChatClient:
    settings: dict[str, object] = {"model": "fake-model", "cache_mode": "live", "http_retries": 0, "timeout": 5}
    config = LLMConfig(base_url=server.base_url, **{**settings, **overrides})
    return ChatClient(config, endpoint=Endpoint(server.base_url, "fake", "key", legacy_max_tokens=True), home=tmp_path)


def test_forced_tool_call_is_validated_and_accounted(tmp_path):
    prices = {"fake-model": ModelPrice(input_per_million=1.0, output_per_million=4.0)}
    with FakeChatServer([tool_call("Intent", GOOD, prompt_tokens=120, completion_tokens=40)]) as server:
        client = client_for(server, tmp_path, prices=prices, max_tokens=200)
        intent = infer_intent(TITLES, client)
    assert isinstance(intent, Intent)
    assert intent.attributes.brand == "OPI" and intent.keywords == ["opi", "nail lacquer", "red polish"]
    assert intent.queries()[0] == GOOD["summary"]
    (request,) = server.requests
    # structured output through function calling: one tool, forced by name, schema from the pydantic model
    assert request["tool_choice"] == {"type": "function", "function": {"name": "Intent"}}
    assert [tool["function"]["name"] for tool in request["tools"]] == ["Intent"]
    assert "keywords" in request["tools"][0]["function"]["parameters"]["required"]
    assert request["max_tokens"] == 200 and request["temperature"] == 0.0
    totals = client.account.totals()
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["calls"]) == (120, 40, 1)
    assert totals["cost_usd"] == pytest.approx((120 * 1.0 + 40 * 4.0) / 1e6)
    assert totals["unpriced_calls"] == 0


def test_malformed_json_gets_one_retry_with_a_note(tmp_path):
    with FakeChatServer([tool_call("Intent", '{"summary": "red nail'), tool_call("Intent", GOOD)]) as server:
        intent = infer_intent(TITLES, client_for(server, tmp_path))
    assert intent.categories == ["nail polish"]
    first, second = server.requests
    assert second["messages"][: len(first["messages"])] == first["messages"]
    note = second["messages"][-1]
    assert note["role"] == "user" and "not valid JSON" in note["content"]


@pytest.mark.parametrize(
    ("replies", "kind"),
    [
        ([tool_call("Intent", "{oops"), tool_call("Intent", "not json at all")], "malformed"),
        ([tool_call("Intent", {**GOOD, "keywords": ["a", "a", "A"]})] * 2, "malformed"),  # 1 distinct keyword
        ([tool_call("Intent", {**GOOD, "confidence": -0.5})] * 2, "malformed"),  # out of range
        ([text("Arr matey, je suis un pirate!")] * 2, "malformed"),  # text instead of the function call
        ([text("")] * 2, "empty"),
    ],
)
def test_unusable_twice_is_a_typed_failure_after_exactly_one_retry(tmp_path, replies, kind):
    with FakeChatServer(replies) as server, pytest.raises(LLMFailure) as failure:
        infer_intent(TITLES, client_for(server, tmp_path))
    assert failure.value.kind == kind and failure.value.attempts == 2
    assert len(server.requests) == 2


def test_json_written_as_text_is_accepted(tmp_path):
    fenced = "```json\n" + json.dumps({**GOOD, "confidence": 85}) + "\n```"
    with FakeChatServer([text(fenced)]) as server:
        intent = infer_intent(TITLES, client_for(server, tmp_path))
    assert intent.confidence == pytest.approx(0.85)  # "85" read as a percentage


def test_http_500_is_retried_by_the_client_then_fails_typed(tmp_path):
    with FakeChatServer([error(500), tool_call("Intent", GOOD)]) as server:
        assert infer_intent(TITLES, client_for(server, tmp_path, http_retries=1)).summary == GOOD["summary"]
    assert len(server.requests) == 2
    with FakeChatServer([error(500), error(503)]) as server, pytest.raises(LLMFailure) as failure:
        infer_intent(TITLES, client_for(server, tmp_path, http_retries=1))
    assert failure.value.kind == "http" and "503" in failure.value.detail


def test_a_slow_server_times_out_as_a_typed_failure(tmp_path):
    with FakeChatServer([tool_call("Intent", GOOD, delay=3.0)]) as server:
        started = time.perf_counter()
        with pytest.raises(LLMFailure) as failure:
            infer_intent(TITLES, client_for(server, tmp_path, timeout=0.5))
        assert time.perf_counter() - started < 2.5
    assert failure.value.kind == "timeout"
    assert client_for(server, tmp_path).account.totals()["calls"] == 0  # a fresh client has its own account


def test_nobody_listening_is_a_connection_failure(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    config = LLMConfig(base_url=url, model="m", cache_mode="live", http_retries=0, timeout=2)
    client = ChatClient(config, home=tmp_path)
    with pytest.raises(LLMFailure) as failure:
        infer_intent(TITLES, client)
    assert failure.value.kind == "connection"
    assert client.account.totals()["failed_calls"] == 1


def test_no_titles_is_a_clear_error(tmp_path):
    from sessiondata.errors import ConfigError

    with FakeChatServer() as server, pytest.raises(ConfigError, match="titles"):
        infer_intent([], client_for(server, tmp_path))
