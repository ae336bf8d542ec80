"""Settings of the LLM layer: which endpoint and model, sampling limits, the response cache and prices.

One typed object (``Settings.llm``, env ``SEMSR_LLM__*``). With the defaults nothing leaves the machine:
``base_url=None`` means "start the bundled SmolLM2-135M-Instruct GGUF under llama.cpp's OpenAI-compatible
server on 127.0.0.1". Pointing the project at another model is one setting: ``gguf_path`` (any local
GGUF file) or ``base_url`` (+ ``model``, ``api_key_env``) for OpenAI, vLLM, Ollama or a llama.cpp server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CacheMode = Literal["live", "record", "replay"]

LOCAL_MODEL_NAME = "smollm2-135m-instruct-q4_1"


class ModelPrice(BaseModel):
    """US dollars per million tokens, as providers publish them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_million: float = Field(0.0, ge=0)
    output_per_million: float = Field(0.0, ge=0)


class LLMConfig(BaseModel):
    """How the agents reach a chat model. Defaults run fully offline on the bundled local model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint (http://HOST:PORT/v1); None starts the local llama.cpp server.",
    )
    model: str = Field(LOCAL_MODEL_NAME, min_length=1, description="Model name sent to the endpoint.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the key; local servers need none."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds per HTTP request.")
    http_retries: int = Field(1, ge=0, le=5, description="Retries of failed HTTP requests (5xx, timeouts).")
    call_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request waits for one LLM answer, retries included; past it the source is "
        "answered without the LLM and flagged degraded ('LLM timeout').",
    )
    max_concurrent_calls: int = Field(
        16, ge=1, le=256, description="LLM calls one process has in flight at once (concurrent server runs)."
    )
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(256, ge=16, le=8192, description="Most tokens one reply may generate.")
    legacy_max_tokens: bool = Field(
        False,
        description="Also send `max_tokens` (llama-cpp-python's server ignores `max_completion_tokens`); "
        "always on for the local server.",
    )
    gguf_path: Path | None = Field(None, description="Local GGUF file to serve instead of the bundled SmolLM2.")
    n_ctx: int = Field(2048, ge=256, description="Context window of the local server.")
    n_threads: int = Field(
        1,
        ge=1,
        description="CPU threads of the local server. 1 by default: on a busy 2-core machine llama.cpp's "
        "spinning worker threads ran ~50x slower with 2 threads than with 1 (measured, docs/llm_agents.md).",
    )
    server_start_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the local server to load.")
    cache_mode: CacheMode = Field(
        "record", description="live: no cache; record: reuse hits, store misses; replay: hits only, a miss fails."
    )
    cache_path: Path | None = Field(None, description="SQLite response cache (None: <home>/llm_cache.sqlite).")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model name; models not listed are recorded as unpriced."
    )
    max_session_titles: int = Field(10, ge=1, le=50, description="Most recent titles shown to the LLM.")
    max_title_chars: int = Field(120, ge=20, le=1000, description="Titles longer than this are cut at a word.")
    n_proposals: int = Field(10, ge=1, le=50, description="Next-product titles the in-context recommender asks for.")

    @property
    def is_local(self) -> bool:
        return self.base_url is None
