"""Which embedder to use, as one typed config (``Settings.embedder``; env ``SEMSR_EMBEDDER__KIND`` etc.).

``embeddings`` sits below ``semsr``, so functions here take the config as an argument instead of reading
the settings themselves.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from embeddings.base import EmbeddingProvider
from embeddings.finetune import FinetuneConfig
from embeddings.postprocess import PostprocessConfig
from sessiondata.errors import ConfigError


class EmbedderConfig(BaseModel):
    """The embedder: the bundled MiniLM (default, offline), that MiniLM fine-tuned on the fold's training
    sessions (``minilm-adapted``: prepared by ``semsr embed finetune``, resolved per fold by
    :func:`embeddings.finetuned.resolve_embedder`), an OpenAI-compatible server, or a vector file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["minilm", "minilm-adapted", "openai", "file"] = "minilm"
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field("text-embedding-3-small", description="Embedding model name sent to the endpoint.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
    path: Path | None = Field(
        None, description="Precomputed vectors (.npz, .npy + .ids.txt, .parquet), or a fine-tuned model directory."
    )
    batch_size: int = Field(64, ge=1, le=2048, description="Texts per forward pass or HTTP request.")
    max_seq_length: int = Field(128, ge=8, le=256, description="MiniLM truncation in word pieces.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for one HTTP request.")
    finetune: FinetuneConfig = Field(
        default_factory=FinetuneConfig, description="How `minilm-adapted` was fine-tuned (part of its key)."
    )
    postprocess: PostprocessConfig = Field(
        default_factory=PostprocessConfig,
        description="Centring/PCA/whitening of the vectors for the Chroma index and SemSR-I/-F (default none).",
    )


def _default_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def build_provider(config: EmbedderConfig, *, threads: int | None = None) -> EmbeddingProvider:
    """A new provider for ``config`` (uncached; see :func:`default_provider` for the shared one)."""
    if config.kind == "minilm":
        from embeddings.minilm import MiniLMProvider

        return MiniLMProvider(
            max_seq_length=config.max_seq_length, batch_size=config.batch_size, threads=threads or _default_threads()
        )
    if config.kind == "minilm-adapted":
        if config.path is None:
            raise ConfigError(
                "embedder.kind",
                config.kind,
                "is resolved per fold (embeddings.finetuned.resolve_embedder) before a provider is built",
            )
        from embeddings.finetuned import AdaptedMiniLMProvider

        return AdaptedMiniLMProvider(config.path, batch_size=config.batch_size, threads=threads or _default_threads())
    if config.kind == "openai":
        from embeddings.openai_compat import OpenAIEmbeddingProvider

        return OpenAIEmbeddingProvider(
            model=config.model,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            batch_size=config.batch_size,
            timeout=config.timeout,
        )
    if config.path is None:
        raise ConfigError("embedder.path", None, "kind 'file' needs a path to precomputed vectors")
    from embeddings.precomputed import FileEmbeddingProvider

    return FileEmbeddingProvider(config.path)


_providers: dict[str, EmbeddingProvider] = {}
_lock = threading.Lock()


def default_provider(config: EmbedderConfig | None = None, *, threads: int | None = None) -> EmbeddingProvider:
    """The process-wide provider for ``config`` (default: :class:`EmbedderConfig()`), so a model loads once.

    ``threads`` applies when the provider is first built (torch's thread pool is process-wide anyway).
    """
    config = config or EmbedderConfig()
    key = config.model_dump_json(exclude={"postprocess"})  # post-processing is applied above the provider
    with _lock:
        if key not in _providers:
            _providers[key] = build_provider(config, threads=threads)
        return _providers[key]


def fold_provider(
    config: EmbedderConfig, *, train_digest: str, embeddings_dir: Path | None, threads: int | None = None
) -> EmbeddingProvider:
    """The shared provider for the fold whose training sessions ``train_digest`` names: ``config`` itself for
    every kind but ``minilm-adapted``, which is that fold's own fine-tuned model (a missing one is one clear
    error naming ``semsr embed finetune``; see :func:`embeddings.finetuned.resolve_embedder`)."""
    from embeddings.finetuned import resolve_embedder

    resolved = resolve_embedder(config, train_digest=train_digest, embeddings_dir=embeddings_dir)
    return default_provider(resolved, threads=threads)


def embedder_label(config: EmbedderConfig, *, threads: int | None = None) -> str:
    """The embedder's id where no fold is known yet: a ``minilm-adapted`` one is named by its fine-tune
    settings (the fold's training digest, part of every artefact key anyway, names the rest)."""
    if config.kind == "minilm-adapted" and config.path is None:
        return f"minilm-adapted-{config.finetune.id}"
    return default_provider(config, threads=threads).id
