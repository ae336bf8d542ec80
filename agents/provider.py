"""The one chat-model adapter: ``langchain-openai`` against any OpenAI-compatible endpoint.

Structured output goes through *function calling* (``with_structured_output(..., method="function_calling")``):
the model is forced to call one function whose parameters are the pydantic schema. This works with
OpenAI and with llama.cpp's server, which turns the forced call into a JSON-schema grammar, so even a
135M-parameter model answers in the schema's shape. The reply is validated by pydantic here, not trusted.

Every call goes: cache lookup -> (miss) HTTP call -> validation -> cache store (only replies that passed
validation are stored, so a bad reply is never replayed after the model recovers). A malformed or empty
answer gets ONE retry with a note saying what was wrong; a second failure, an HTTP error or a timeout
raises :class:`~agents.errors.LLMFailure`, on which callers degrade. Token counts come from the
response's usage metadata (``get_num_tokens`` would fetch tiktoken files from the network).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr, ValidationError

from agents.accounting import CallRecord, RunAccount, call_cost
from agents.cache import RawReply, ResponseCache, Usage, cache_key
from agents.config import LLMConfig
from agents.errors import FailureKind, LLMFailure
from agents.local_server import ensure_server, resolve_gguf
from agents.prompts import ChatPrompt

T = TypeVar("T", bound=BaseModel)

NO_KEY = "sk-no-key-needed"  # local servers (llama.cpp, vLLM, Ollama) ignore the key but the client wants one


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, and the stable identity used in cache keys (a local port is not identity)."""

    base_url: str
    identity: str
    api_key: str
    legacy_max_tokens: bool  # llama.cpp's server reads `max_tokens`, not `max_completion_tokens`


def remote_endpoint(config: LLMConfig) -> Endpoint:
    assert config.base_url is not None
    key = os.environ.get(config.api_key_env, "") or NO_KEY
    url = config.base_url.rstrip("/")
    return Endpoint(url, url, key, legacy_max_tokens=config.legacy_max_tokens)


def local_endpoint(config: LLMConfig, *, log_dir: Path) -> Endpoint:
    """Start (or reuse) the local llama.cpp server for the configured GGUF."""
    gguf, identity = resolve_gguf(config.gguf_path)
    server = ensure_server(
        gguf,
        alias=config.model,
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        log_dir=log_dir,
        timeout=config.server_start_timeout,
    )
    return Endpoint(server.base_url, f"local:{identity}:ctx={config.n_ctx}", NO_KEY, legacy_max_tokens=True)


class _Unusable(Exception):
    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def to_langchain(prompt: ChatPrompt) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in prompt.messages]


def raw_reply(message: AIMessage) -> RawReply:
    """The parts of a chat completion we keep (and cache): tool call, text, finish reason, usage."""
    usage = message.usage_metadata or {}
    tool_args = dict(message.tool_calls[0]["args"]) if message.tool_calls else None
    arguments_text = None
    if tool_args is None and message.invalid_tool_calls:
        arguments_text = str(message.invalid_tool_calls[0].get("args") or "")
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    return RawReply(
        tool_args=tool_args,
        tool_arguments_text=arguments_text,
        content=content or "",
        finish_reason=(message.response_metadata or {}).get("finish_reason"),
        usage=Usage(
            prompt_tokens=int(usage.get("input_tokens", 0) or 0),
            completion_tokens=int(usage.get("output_tokens", 0) or 0),
        ),
    )


def _json_in_text(text: str) -> dict[str, Any] | None:
    """A JSON object written as plain text (some servers ignore the forced call); fences allowed."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_reply(reply: RawReply, schema: type[T]) -> T:
    """Validate a reply against ``schema``; raise ``_Unusable`` saying what was wrong."""
    truncated = " (cut off by max_tokens)" if reply.finish_reason == "length" else ""
    data = reply.tool_args
    if data is None and reply.tool_arguments_text is not None:
        arguments = reply.tool_arguments_text[:200]
        raise _Unusable("malformed", f"function arguments are not valid JSON{truncated}: {arguments!r}")
    if data is None and reply.content.strip():
        data = _json_in_text(reply.content)
        if data is None:
            raise _Unusable("malformed", f"text instead of a function call{truncated}: {reply.content[:200]!r}")
    if data is None:
        raise _Unusable("empty", "empty reply")
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        raise _Unusable("malformed", f"{where}: {first['msg']}{truncated}") from None


def _http_failure(error: Exception) -> LLMFailure:
    if isinstance(error, openai.APITimeoutError):
        return LLMFailure("timeout", str(error) or "request timed out")
    if isinstance(error, openai.APIConnectionError):
        return LLMFailure("connection", str(error))
    if isinstance(error, openai.APIStatusError):
        return LLMFailure("http", f"HTTP {error.status_code}: {str(error)[:300]}")
    return LLMFailure("server", f"{type(error).__name__}: {str(error)[:300]}")


class ChatClient:
    """Structured calls to one chat model, with caching, one retry and accounting."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        cache: ResponseCache | None = None,
        account: RunAccount | None = None,
        endpoint: Endpoint | None = None,
        home: Path,
        threads: int | None = None,
    ) -> None:
        """``threads`` is accepted for callers that pass ``settings.threads`` but not used: the local
        server's threads are ``llm.n_threads`` (1 by default; 2 was ~50x slower on a busy 2-core machine)."""
        del threads
        self.config = config
        self.cache = cache or ResponseCache(config.cache_path or home / "llm_cache.sqlite", config.cache_mode)
        self.account = account or RunAccount()
        self._endpoint = endpoint
        self._home = home
        self._identity: str | None = None
        self._chat: ChatOpenAI | None = None
        self._runnables: dict[type[BaseModel], Any] = {}

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint, started lazily (the local server only when a request actually needs the model)."""
        if self._endpoint is None:
            if self.config.base_url is not None:
                self._endpoint = remote_endpoint(self.config)
            else:
                self._endpoint = local_endpoint(self.config, log_dir=self._home)
        return self._endpoint

    def endpoint_identity(self) -> str:
        """Identity for cache keys without starting anything (the local GGUF is hashed, not served)."""
        if self._identity is None:
            if self._endpoint is not None:
                self._identity = self._endpoint.identity
            elif self.config.base_url is not None:
                self._identity = self.config.base_url.rstrip("/")
            else:
                _, gguf_identity = resolve_gguf(self.config.gguf_path)
                self._identity = f"local:{gguf_identity}:ctx={self.config.n_ctx}"
        return self._identity

    def params(self) -> dict[str, Any]:
        return {"temperature": self.config.temperature, "max_tokens": self.config.max_tokens}

    def _structured_runnable(self, schema: type[BaseModel]) -> Any:
        if self._chat is None:
            endpoint = self.endpoint
            extra = {"max_tokens": self.config.max_tokens} if endpoint.legacy_max_tokens else None
            self._chat = ChatOpenAI(
                model=self.config.model,
                base_url=endpoint.base_url,
                api_key=SecretStr(endpoint.api_key),
                timeout=self.config.timeout,
                max_retries=self.config.http_retries,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                extra_body=extra,
            )
        if schema not in self._runnables:
            self._runnables[schema] = self._chat.with_structured_output(
                schema, method="function_calling", include_raw=True
            )
        return self._runnables[schema]

    def _reply(self, prompt: ChatPrompt, schema: type[BaseModel], identity: str) -> tuple[RawReply, str, bool]:
        """The reply to ``prompt``, its cache key and whether it came from the cache (it is not stored here:
        :meth:`structured` stores it once it has passed validation)."""
        key = cache_key(
            endpoint=identity,
            model=self.config.model,
            params=self.params(),
            prompt_version=prompt.version,
            prompt_digest=prompt.digest(),
            schema=convert_to_openai_tool(schema),
        )
        started = time.perf_counter()
        cached = self.cache.lookup(key, f"prompt {prompt.name!r}")
        if cached is not None:
            self._record(prompt, identity, cached, time.perf_counter() - started, cached=True, ok=True)
            return cached, key, True
        runnable = self._structured_runnable(schema)
        try:
            result = runnable.invoke(to_langchain(prompt))
        except Exception as error:  # HTTP, timeout, connection, server-side nonsense
            self._record(prompt, identity, RawReply(), time.perf_counter() - started, cached=False, ok=False)
            failure = _http_failure(error)
            if failure.kind == "connection" and self.config.is_local:
                self._endpoint, self._chat, self._runnables = None, None, {}  # next call restarts the server
            raise failure from error
        reply = raw_reply(result["raw"])
        self._record(prompt, identity, reply, time.perf_counter() - started, cached=False, ok=True)
        return reply, key, False

    def _record(
        self, prompt: ChatPrompt, identity: str, reply: RawReply, seconds: float, *, cached: bool, ok: bool
    ) -> None:
        tokens_in, tokens_out = reply.usage.prompt_tokens, reply.usage.completion_tokens
        self.account.add(
            CallRecord(
                purpose=prompt.name,
                model=self.config.model,
                endpoint=identity,
                prompt_tokens=tokens_in,
                completion_tokens=tokens_out,
                seconds=round(seconds, 4),
                cached=cached,
                ok=ok,
                cost_usd=0.0 if cached else call_cost(self.config.prices, self.config.model, tokens_in, tokens_out),
            )
        )

    def structured(self, prompt: ChatPrompt, schema: type[T]) -> T:
        """The model's answer to ``prompt`` as a validated ``schema`` instance, or :class:`LLMFailure`."""
        identity = self.endpoint_identity()
        attempt = prompt
        problem: _Unusable | None = None
        for _ in range(2):
            reply, key, cached = self._reply(attempt, schema, identity)
            try:
                answer = parse_reply(reply, schema)
            except _Unusable as unusable:
                if cached:  # stored before replies were validated: never serve it again
                    self.cache.forget(key)
                problem = unusable
                attempt = prompt.with_retry_note(unusable.detail)
                continue
            if not cached:  # only a reply that passed validation is kept: a bad one is never replayed
                self.cache.put(
                    key,
                    reply,
                    endpoint=identity,
                    model=self.config.model,
                    prompt_name=attempt.name,
                    version=attempt.version,
                )
            return answer
        assert problem is not None
        raise LLMFailure(problem.kind, problem.detail, attempts=2)
