"""Post-processing of any embedder's vectors: centring, PCA and (relaxed) whitening, in ONE place.

Pretrained sentence embeddings are anisotropic: every title shares a large common direction and a few
high-variance directions dominate the cosine, so "similar" mostly means "shares the catalogue's style".
Centring removes the common direction; whitening rescales the principal directions towards equal variance
(WhitenRec, RecSys 2024). The strength is relaxed by ``alpha``: each principal direction is scaled by
``singular_value ** -alpha`` (0 = rotation only, 1 = full whitening), and ``keep`` keeps that share of
the leading principal directions only (PCA; a share, so one grid fits embedders of any size). Rows come
back L2-normalised, so a dot product stays the cosine.

The transform is fitted on the catalogue's title vectors only: titles, no interactions, nothing from any
held-out session. It is saved as an ``.npz`` artefact with a sha256 sidecar under the embedding cache
directory (``settings.paths.embeddings``), keyed by the embedder, the catalogue and the settings, so it is
fitted once and checked on every load. Every consumer of title vectors goes through here: the title-kNN
source (its tuned ``center``/``whiten``/``keep``), the Chroma index and the SemSR-I/-F inputs (the
embedder config's ``postprocess``). :class:`PostprocessedProvider` applies the same transform to query
texts, and its ``id`` names embedder *and* post-processing, so no cache or collection mixes spaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings.base import EmbeddingProvider, l2_normalise, slug
from sessiondata.errors import ConfigError

CHUNK = 16_384  # rows per block when fitting or applying (bounded memory at any catalogue size)


class PostprocessConfig(BaseModel):
    """Which post-processing to apply (the default is none: the embedder's unit vectors as they are)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    center: bool = Field(False, description="Subtract the catalogue's mean vector.")
    alpha: float = Field(0.0, ge=0.0, le=1.0, description="Whitening strength: scale by singular value^-alpha.")
    keep: float = Field(1.0, gt=0.0, le=1.0, description="Share of leading principal directions kept (PCA).")

    @property
    def identity(self) -> bool:
        return not self.center and self.alpha == 0.0 and self.keep == 1.0

    def out_dims(self, dim: int) -> int:
        """Directions kept out of ``dim`` (at least 2)."""
        return dim if self.keep == 1.0 else max(2, round(self.keep * dim))

    @property
    def id(self) -> str:
        """Short stable name for cache keys; empty for the identity (keeps earlier keys valid)."""
        if self.identity:
            return ""
        return f"pp-c{int(self.center)}-a{self.alpha:g}-k{self.keep:g}"


@dataclass(frozen=True)
class Transform:
    """A fitted post-processing: ``unit((x - mean) @ projection)``."""

    config: PostprocessConfig
    mean: np.ndarray  # (dim,)
    projection: np.ndarray  # (dim, out_dim)

    @property
    def out_dim(self) -> int:
        return int(self.projection.shape[1])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Transformed unit rows (float32), ``CHUNK`` rows at a time so a 500k-item catalogue needs one
        output matrix, not four float64 temporaries of it."""
        if self.config.identity:
            return l2_normalise(np.asarray(vectors, dtype=np.float64))
        out = np.empty((len(vectors), self.out_dim), dtype=np.float32)
        for start in range(0, len(vectors), CHUNK):
            block = np.asarray(vectors[start : start + CHUNK], dtype=np.float64)
            out[start : start + CHUNK] = l2_normalise((block - self.mean) @ self.projection)
        return out


def principal_directions(vectors: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (descending) and right singular vectors (rows) of ``vectors - mean``, from the
    (dim, dim) scatter matrix accumulated ``CHUNK`` rows at a time: the SVD of the whole centred matrix held
    three (n, dim) float64 copies (about 6 GB at 500k items of 384 dimensions), this holds one chunk."""
    dim = vectors.shape[1]
    scatter = np.zeros((dim, dim))
    for start in range(0, len(vectors), CHUNK):
        block = np.asarray(vectors[start : start + CHUNK], dtype=np.float64) - mean
        scatter += block.T @ block
    eigenvalues, eigenvectors = np.linalg.eigh(scatter)  # ascending
    order = np.argsort(eigenvalues)[::-1]
    return np.sqrt(np.clip(eigenvalues[order], 0.0, None)), eigenvectors[:, order].T


def fit_transform(vectors: np.ndarray, config: PostprocessConfig) -> Transform:
    """Fit ``config`` on ``vectors`` (rows: the catalogue's title vectors)."""
    n, dim = vectors.shape
    if n < 2:
        raise ConfigError("postprocess", f"{n} vectors", "fitting needs at least two catalogue vectors")
    if config.identity:
        return Transform(config, np.zeros(dim), np.eye(dim))
    mean = vectors.mean(axis=0, dtype=np.float64) if config.center else np.zeros(dim)
    singular, right = principal_directions(vectors, mean)
    # directions without variance (a catalogue smaller than the dimension, centring's lost one) are dropped:
    # whitening would blow their rounding noise up to the size of the real directions
    rank = int(np.sum(singular > singular[0] * 1e-5)) if singular.size and singular[0] > 0 else 0
    keep = max(1, min(config.out_dims(dim), rank))
    scale = (singular[:keep] / np.sqrt(max(n - 1, 1))) ** -config.alpha
    return Transform(config, mean, right[:keep].T * scale[None, :])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def transform_path(directory: Path, embedder_id: str, catalog_digest: str, config: PostprocessConfig) -> Path:
    return directory / "postprocess" / f"{slug(embedder_id)}-{catalog_digest[:16]}-{config.id}.npz"


def save_transform(transform: Transform, path: Path) -> str:
    """Write the artefact and its sha256 sidecar (``<path>.sha256``); returns the digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, mean=transform.mean, projection=transform.projection, config=transform.config.model_dump_json())
    partial.replace(path)
    digest = _digest(path)
    path.with_suffix(".npz.sha256").write_text(digest + "\n")
    return digest


def load_transform(path: Path, config: PostprocessConfig) -> Transform:
    """The saved transform at ``path``, checked against its sha256 sidecar and ``config``."""
    sidecar = path.with_suffix(".npz.sha256")
    expected = sidecar.read_text().strip() if sidecar.exists() else ""
    if expected != _digest(path):
        raise ConfigError("postprocess", str(path), "artefact does not match its sha256; delete it to refit")
    with np.load(path) as data:
        saved = PostprocessConfig.model_validate_json(str(data["config"]))
        if saved != config:
            raise ConfigError("postprocess", str(path), f"holds {saved.id}, expected {config.id}")
        return Transform(config, np.asarray(data["mean"]), np.asarray(data["projection"]))


def catalog_transform(
    vectors: np.ndarray, config: PostprocessConfig, *, embedder_id: str, catalog_digest: str, cache_dir: Path | None
) -> Transform:
    """The transform of ``config`` for these catalogue vectors: loaded when saved, else fitted (and saved
    when ``cache_dir`` is given)."""
    if config.identity:
        return fit_transform(vectors, config)
    path = transform_path(cache_dir, embedder_id, catalog_digest, config) if cache_dir is not None else None
    if path is not None and path.exists():
        return load_transform(path, config)
    transform = fit_transform(vectors, config)
    if path is not None:
        save_transform(transform, path)
    return transform


def space_id(embedder_id: str, config: PostprocessConfig) -> str:
    """Which embedder and which post-processing made a set of vectors (cache keys, collection names)."""
    return f"{embedder_id}+{config.id}" if config.id else embedder_id


class PostprocessedProvider(EmbeddingProvider):
    """``inner`` followed by a fitted :class:`Transform`: query texts land in the catalogue's space."""

    def __init__(self, inner: EmbeddingProvider, transform: Transform) -> None:
        self.inner = inner
        self.transform = transform

    @property
    def id(self) -> str:
        return space_id(self.inner.id, self.transform.config)

    @property
    def dim(self) -> int:
        return self.transform.out_dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.transform.apply(self.inner.embed(texts))

    def _embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - embed() is overridden
        return self.embed(texts)
