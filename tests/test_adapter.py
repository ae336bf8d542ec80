"""The contrastive title-vector adapter: zero epochs is the identity, training pulls session pairs together,
a rerun with the same seed gives the same vectors (1e-5), and weights are saved keyed by the sessions' digest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.adapter import AdapterConfig, adapted_vectors, adapter_dir, session_pairs
from sessiondata.errors import ConfigError


def _problem() -> tuple[np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sessions = [[int(a), int(a) + 30, int(a)] for a in range(30)]  # item i is followed by item i + 30
    return vectors, sessions


def test_pairs_skip_repeats_and_respect_the_window() -> None:
    assert session_pairs([[1, 1, 2, 3]], 1).tolist() == [[1, 2], [2, 3]]
    assert sorted(session_pairs([[1, 2, 3]], 2).tolist()) == [[1, 2], [1, 3], [2, 3]]


def test_training_pulls_pairs_together_deterministically_and_is_saved(tmp_path: Path) -> None:
    vectors, sessions = _problem()
    assert (
        adapted_vectors(vectors, sessions, AdapterConfig(), embedder_id="e", train_digest="d", cache_dir=None)
        is vectors
    )
    config = AdapterConfig(epochs=8, lr=0.05, batch_size=32)
    first = adapted_vectors(vectors, sessions, config, embedder_id="e", train_digest="d" * 16, cache_dir=None)
    again = adapted_vectors(vectors, sessions, config, embedder_id="e", train_digest="d" * 16, cache_dir=None)
    assert np.abs(first - again).max() <= 1e-5
    pair_cosine = lambda m: float(np.mean(np.sum(m[:30] * m[30:], axis=1)))  # noqa: E731
    assert pair_cosine(first) > pair_cosine(vectors) + 0.3, (pair_cosine(first), pair_cosine(vectors))
    saved = adapted_vectors(vectors, sessions, config, embedder_id="e", train_digest="d" * 16, cache_dir=tmp_path)
    directory = adapter_dir(tmp_path, "e", "d" * 16, config)
    assert (directory / "adapter.safetensors").exists() and (directory / "config.json").exists()
    loaded = adapted_vectors(vectors, [], config, embedder_id="e", train_digest="d" * 16, cache_dir=tmp_path)
    np.testing.assert_allclose(loaded, saved, atol=1e-6)  # loaded, not retrained (no sessions given)
    assert adapter_dir(tmp_path, "e", "f" * 16, config) != directory  # other training sessions, other adapter
    weights = directory / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(ConfigError, match="sha256"):
        adapted_vectors(vectors, [], config, embedder_id="e", train_digest="d" * 16, cache_dir=tmp_path)
