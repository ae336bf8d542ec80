"""``/v1/chat/completions`` for the scripted OpenAI-compatible fake in :mod:`fakes.openai_http`.

Each chat request takes the next scripted reply (a tool call, plain text, malformed arguments, an HTTP
error, or any of them after a delay to provoke client timeouts); with none left it gets HTTP 500. The
JSON bodies received are kept in order, so tests can assert on what the client really sent.

    with FakeChatServer([tool_call("Intent", {...}), error(500)]) as server:
        client = ChatClient(config, endpoint=Endpoint(server.base_url, "fake", "key", True))
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from fakes.openai_http import FakeOpenAIServer, Reply, Request, delayed, error_reply

CHAT = "/v1/chat/completions"


def _completion(message: dict[str, Any], finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def tool_call(
    name: str,
    arguments: dict[str, Any] | str,
    *,
    prompt_tokens: int = 50,
    completion_tokens: int = 20,
    delay: float = 0,
) -> Reply:
    """A reply calling function ``name``; a ``str`` is sent verbatim (use it for malformed JSON)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": name, "arguments": text}}],
    }
    return delayed(Reply(200, _completion(message, "tool_calls", prompt_tokens, completion_tokens)), delay)


def text(content: str, *, prompt_tokens: int = 50, completion_tokens: int = 5) -> Reply:
    """A plain assistant message (no function call)."""
    return Reply(200, _completion({"role": "assistant", "content": content}, "stop", prompt_tokens, completion_tokens))


def error(status: int = 500, message: str = "scripted server error") -> Reply:
    return error_reply(status, message)


def _nothing_left(request: Request) -> Reply:
    return error_reply(500, "the fake has no scripted chat reply left")


class FakeChatServer:
    """A :class:`FakeOpenAIServer` serving scripted chat completions (and ``GET /v1/models``)."""

    def __init__(self, replies: Iterable[Reply] = ()) -> None:
        self.server = FakeOpenAIServer()
        self.server.route(CHAT, _nothing_left)
        self.server.route("/v1/models", lambda _: Reply(200, {"object": "list", "data": []}), method="GET")
        self.script(*replies)

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat requests received, in order."""
        return [request.json for request in self.server.calls(CHAT)]

    def script(self, *replies: Reply) -> None:
        if replies:
            self.server.script(CHAT, *replies)

    def __enter__(self) -> FakeChatServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
