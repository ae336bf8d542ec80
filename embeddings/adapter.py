"""Domain adaptation of frozen title vectors: a small contrastive adapter trained on interaction pairs.

A pretrained sentence model puts titles close when their words are close; shoppers move between items for
other reasons too. The adapter is a residual linear map ``unit(x + x @ W)`` (``W`` starts at zero, so zero
epochs is the embedder itself) trained with a symmetric InfoNCE loss over in-batch negatives on pairs from
the fold's *training sessions only*: each item and the next one, and (``window`` > 1) items a few steps
apart in the same session. The number of epochs is a hyper-parameter of the consumer and is chosen on the
validation fold like any other (the title-kNN grid), never on test sessions.

It runs on the CPU with a fixed seed and one thread for the random draws, so a rerun gives the same
weights (checked to 1e-5). Weights are saved as ``adapter.safetensors`` + ``config.json`` under
``<cache_dir>/adapters/<key>/``, the key naming the embedder, the training sessions' digest and the
settings; the config records the sha256 of the weights, checked on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings.base import l2_normalise, slug
from sessiondata.errors import ConfigError


class AdapterConfig(BaseModel):
    """How the adapter is trained (epochs = 0: no adapter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(0, ge=0, le=100, description="Passes over the training pairs (0 = no adapter).")
    window: int = Field(1, ge=1, le=10, description="Pairs of items at most this many steps apart.")
    temperature: float = Field(0.05, gt=0.0, le=1.0)
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(1024, ge=16)
    seed: int = 0

    @property
    def id(self) -> str:
        if self.epochs == 0:
            return ""
        return f"ad-e{self.epochs}-w{self.window}-t{self.temperature:g}-lr{self.lr:g}-b{self.batch_size}-s{self.seed}"


def session_pairs(sessions: Sequence[Sequence[int]], window: int) -> np.ndarray:
    """(n, 2) item-index pairs (earlier, later) at most ``window`` steps apart, repeats of one item skipped."""
    pairs: list[tuple[int, int]] = []
    for items in sessions:
        for offset in range(1, window + 1):
            pairs.extend((a, b) for a, b in zip(items, items[offset:], strict=False) if a != b)
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def train_adapter(
    vectors: np.ndarray, pairs: np.ndarray, config: AdapterConfig, *, progress: bool = False
) -> np.ndarray:
    """The trained (dim, dim) residual weight ``W`` for unit rows ``vectors``."""
    import torch

    dim = vectors.shape[1]
    if config.epochs == 0 or len(pairs) == 0:
        return np.zeros((dim, dim), dtype=np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run (determinism)
    try:
        return _train(vectors, pairs, config, progress)
    finally:
        torch.set_num_threads(threads)


def _train(vectors: np.ndarray, pairs: np.ndarray, config: AdapterConfig, progress: bool) -> np.ndarray:
    import torch
    from tqdm import tqdm

    dim = vectors.shape[1]
    generator = torch.Generator().manual_seed(config.seed)
    table = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    weight = torch.zeros(dim, dim, requires_grad=True)
    optimiser = torch.optim.Adam([weight], lr=config.lr)
    index = torch.from_numpy(pairs)
    steps = config.epochs * ((len(pairs) + config.batch_size - 1) // config.batch_size)
    bar = tqdm(total=steps, desc="adapter", unit="step", disable=not progress)
    for _ in range(config.epochs):
        order = torch.randperm(len(index), generator=generator)
        for start in range(0, len(order), config.batch_size):
            batch = index[order[start : start + config.batch_size]]
            left = torch.nn.functional.normalize(table[batch[:, 0]] @ (torch.eye(dim) + weight), dim=1)
            right = torch.nn.functional.normalize(table[batch[:, 1]] @ (torch.eye(dim) + weight), dim=1)
            logits = left @ right.T / config.temperature
            labels = torch.arange(len(batch))
            loss = (
                torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
            ) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            bar.update(1)
    bar.close()
    return weight.detach().numpy().astype(np.float32)


def apply_adapter(vectors: np.ndarray, weight: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return l2_normalise(vectors + vectors @ weight)


def adapter_dir(cache_dir: Path, embedder_id: str, train_digest: str, config: AdapterConfig) -> Path:
    return cache_dir / "adapters" / slug(f"{embedder_id}-{train_digest[:16]}-{config.id}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def adapted_vectors(
    vectors: np.ndarray,
    sessions: Sequence[Sequence[int]],
    config: AdapterConfig,
    *,
    embedder_id: str,
    train_digest: str,
    cache_dir: Path | None,
    progress: bool = False,
) -> np.ndarray:
    """``vectors`` through the adapter trained on ``sessions`` (loaded when saved for the same key)."""
    if config.epochs == 0:
        return vectors
    from safetensors.numpy import load_file, save_file

    directory = adapter_dir(cache_dir, embedder_id, train_digest, config) if cache_dir and train_digest else None
    if directory is not None and (directory / "config.json").exists():
        saved = json.loads((directory / "config.json").read_text())
        if saved.get("sha256") != _sha256(directory / "adapter.safetensors"):
            raise ConfigError("adapter", str(directory), "weights do not match their sha256; delete to retrain")
        return apply_adapter(vectors, load_file(directory / "adapter.safetensors")["weight"])
    weight = train_adapter(vectors, session_pairs(sessions, config.window), config, progress=progress)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"weight": weight}, directory / "adapter.safetensors")
        record = {
            "adapter": config.model_dump(),
            "embedder": embedder_id,
            "train_digest": train_digest,
            "sha256": _sha256(directory / "adapter.safetensors"),
        }
        (directory / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    return apply_adapter(vectors, weight)
