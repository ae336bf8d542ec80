"""Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, llama.cpp, LM Studio, Ollama, ...).

Talks through the ``openai`` client directly: langchain's ``OpenAIEmbeddings`` counts tokens with
tiktoken, which downloads its vocabulary files and so fails offline. Requests are batched; every failure
(server down, timeout, HTTP error, malformed answer) becomes an :class:`EmbeddingServiceError` that says
which endpoint failed and how.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

import numpy as np

from embeddings.base import EmbeddingProvider
from sessiondata.errors import ConfigError

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "not-needed"  # local servers ignore the key, but the client insists on one


class EmbeddingServiceError(ConfigError):
    """The embedding endpoint could not be reached or gave an unusable answer."""


class OpenAIEmbeddingProvider(EmbeddingProvider):
    """Embeddings from ``base_url`` with ``model``; the API key is read from the env var ``api_key_env``."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        batch_size: int = 64,
        timeout: float = 60.0,
        dim: int | None = None,
        max_retries: int = 0,
    ) -> None:
        if not model or not model.strip():
            raise ConfigError("embedder.model", model, "an OpenAI-compatible embedder needs a model name")
        if batch_size < 1:
            raise ConfigError("embedder.batch_size", batch_size, "must be at least 1")
        if timeout <= 0:
            raise ConfigError("embedder.timeout", timeout, "must be positive")
        url = (base_url or OPENAI_URL).rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError("embedder.base_url", base_url, "must be an http(s) URL such as http://127.0.0.1:8000/v1")
        key = os.environ.get(api_key_env, "")
        if not key:
            if base_url is None:
                raise ConfigError("embedder.api_key_env", api_key_env, "environment variable is unset or empty")
            key = NO_KEY
        self.model = model
        self.base_url = url
        self.host = parsed.netloc
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = key
        self._dim = dim
        self._client: Any = None
        self.calls = 0  # HTTP requests made

    @property
    def id(self) -> str:
        return f"openai:{self.model}@{self.host}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def _client_(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    def _fail(self, reason: str) -> EmbeddingServiceError:
        return EmbeddingServiceError("embedder.base_url", self.base_url, f"model {self.model!r}: {reason}")

    def _request(self, batch: list[str]) -> np.ndarray:
        import openai

        self.calls += 1
        try:
            response = self._client_().embeddings.create(model=self.model, input=batch, encoding_format="float")
        except openai.APITimeoutError:
            raise self._fail(f"no answer within {self.timeout:g} s (timeout)") from None
        except openai.APIConnectionError as error:
            raise self._fail(f"cannot connect ({error.__cause__ or error}); is the server running?") from None
        except openai.APIStatusError as error:
            raise self._fail(f"HTTP {error.status_code}: {_short(error.body or error.message)}") from None
        except openai.APIError as error:
            raise self._fail(f"unusable answer: {_short(error.message)}") from None
        except ValueError as error:  # JSON that does not parse
            raise self._fail(f"malformed JSON in the answer: {_short(str(error))}") from None
        try:
            rows = sorted(response.data, key=lambda row: row.index)
            vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as error:
            raise self._fail(f"answer is not an embeddings list: {_short(str(error))}") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(batch):
            raise self._fail(f"sent {len(batch)} texts, got vectors of shape {vectors.shape}")
        return vectors

    def _embed(self, texts: list[str]) -> np.ndarray:
        chunks = [
            self._request(texts[start : start + self.batch_size]) for start in range(0, len(texts), self.batch_size)
        ]
        dims = {chunk.shape[1] for chunk in chunks}
        if len(dims) > 1 or (self._dim is not None and dims != {self._dim}):
            raise self._fail(f"vector length changed between requests: {sorted(dims)} (expected {self._dim})")
        self._dim = chunks[0].shape[1]
        return np.concatenate(chunks)


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
