"""Post-processing of title vectors (centring, PCA, relaxed whitening): the maths, the saved artefact,
the one space shared by catalogue rows and query texts, the title-kNN source's use of it, and what it
does to real MiniLM vectors of Beauty titles (their anisotropy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from semantic_helpers import CountingProvider, catalog_slice, minilm, shared_cache_dir

from embeddings.catalog import catalog_texts, embed_catalog, embed_space, space_provider
from embeddings.postprocess import (
    PostprocessConfig,
    catalog_transform,
    fit_transform,
    space_id,
    transform_path,
)
from sessiondata.errors import ConfigError
from sessiondata.schema import Catalog, Session
from sr_models.base import TrainData
from sr_models.env import ModelEnv
from sr_models.title_knn import TitleKNN


def _anisotropic(n: int = 400, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Unit rows sharing a strong common direction and uneven variances (like sentence embeddings)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, dim)) * np.linspace(3.0, 0.2, dim) + 4.0 * np.eye(dim)[0]
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def test_full_whitening_gives_unit_covariance_and_alpha_zero_only_centres() -> None:
    vectors = _anisotropic()
    full = fit_transform(vectors, PostprocessConfig(center=True, alpha=1.0))
    projected = (vectors - full.mean) @ full.projection
    np.testing.assert_allclose(np.cov(projected, rowvar=False), np.eye(16), atol=1e-6)
    # alpha 0 with every direction kept is a rotation of the centred vectors: cosines of the centred rows
    centred = fit_transform(vectors, PostprocessConfig(center=True)).apply(vectors)
    expected = vectors - vectors.mean(axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(centred @ centred.T, expected @ expected.T, atol=1e-5)
    # keep takes a share of the leading directions; the identity config changes nothing
    assert fit_transform(vectors, PostprocessConfig(center=True, alpha=0.5, keep=0.25)).apply(vectors).shape == (400, 4)
    np.testing.assert_allclose(fit_transform(vectors, PostprocessConfig()).apply(vectors), vectors, atol=1e-6)
    # fewer vectors than dimensions: only the directions with variance are kept (no blown-up noise)
    few = fit_transform(vectors[:5], PostprocessConfig(center=True, alpha=1.0))
    assert few.out_dim == 4 and np.isfinite(few.apply(vectors)).all()
    with pytest.raises(ConfigError, match="two"):
        fit_transform(vectors[:1], PostprocessConfig(center=True))


def test_relaxed_whitening_sits_between_none_and_full() -> None:
    vectors = _anisotropic()

    def spread(alpha: float) -> float:  # ratio of the largest to the smallest variance after the transform
        transform = fit_transform(vectors, PostprocessConfig(center=True, alpha=alpha))
        variances = np.var((vectors - transform.mean) @ transform.projection, axis=0)
        return float(variances.max() / variances.min())

    assert spread(0.0) > spread(0.5) > spread(1.0) == pytest.approx(1.0, abs=1e-6)


def test_the_transform_is_saved_once_checked_by_digest_and_keyed_by_its_settings(tmp_path: Path) -> None:
    vectors = _anisotropic()
    config = PostprocessConfig(center=True, alpha=0.5)
    first = catalog_transform(vectors, config, embedder_id="test:e", catalog_digest="ab" * 32, cache_dir=tmp_path)
    path = transform_path(tmp_path, "test:e", "ab" * 32, config)
    assert path.exists() and path.with_suffix(".npz.sha256").exists()
    again = catalog_transform(vectors[:10], config, embedder_id="test:e", catalog_digest="ab" * 32, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.projection, first.projection)  # loaded, not refitted on other rows
    other = PostprocessConfig(center=True, alpha=1.0)
    assert transform_path(tmp_path, "test:e", "ab" * 32, other) != path
    assert transform_path(tmp_path, "test:f", "ab" * 32, config) != path
    path.write_bytes(path.read_bytes()[:-8] + b"tampered")
    with pytest.raises(ConfigError, match="sha256"):
        catalog_transform(vectors, config, embedder_id="test:e", catalog_digest="ab" * 32, cache_dir=tmp_path)


def test_query_texts_land_in_the_catalogue_space(tmp_path: Path) -> None:
    titles = tuple(f"shampoo number {i} for hair type {i % 7}" for i in range(60))
    catalog = Catalog(ids=tuple(range(60)), titles=titles)
    provider = CountingProvider(dim=24)
    config = PostprocessConfig(center=True, alpha=0.5, keep=0.5)
    rows, transform = embed_space(catalog, provider, config, cache_dir=tmp_path)
    assert rows.shape == (60, 12)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    queries = space_provider(provider, transform, tmp_path)
    assert queries.id == space_id(provider.id, config) and queries.id != provider.id and queries.dim == 12
    np.testing.assert_allclose(queries.embed(catalog_texts(catalog)[:5]), rows[:5], atol=1e-5)
    plain, identity = embed_space(catalog, provider, PostprocessConfig(), cache_dir=tmp_path)
    assert space_provider(provider, identity) is provider
    np.testing.assert_allclose(plain, embed_catalog(catalog, provider, cache_dir=tmp_path), atol=1e-6)


def test_title_knn_scores_in_the_whitened_space_and_names_it(tmp_path: Path) -> None:
    vectors = _anisotropic(n=40, dim=8)
    np.savez(tmp_path / "v.npz", ids=np.arange(40), vectors=vectors)
    catalog = Catalog(ids=tuple(range(40)), titles=tuple(f"title {i}" for i in range(40)))
    data = TrainData(sessions=(Session(1, (0, 1, 2), (1, 2, 3)),), catalog=catalog)
    from embeddings.config import EmbedderConfig

    env = ModelEnv(embeddings_dir=tmp_path / "cache", embedder=EmbedderConfig(kind="file", path=tmp_path / "v.npz"))
    model = TitleKNN(mode="last", center=True, whiten=1.0, env=env).fit(data)
    expected = fit_transform(vectors, PostprocessConfig(center=True, alpha=1.0)).apply(vectors)
    np.testing.assert_allclose(model.score([[3]])[0], expected @ expected[3], atol=1e-5)
    assert model.params()["embedder"].endswith("+pp-c1-a1-k1")
    plain = TitleKNN(mode="last", env=env).fit(data)
    assert "+pp" not in plain.params()["embedder"]
    assert not np.allclose(plain.score([[3]]), model.score([[3]]), atol=1e-3)
    restored = TitleKNN(mode="last", center=True, whiten=1.0, env=env)
    restored.restore(model.state())
    np.testing.assert_array_equal(restored.score([[3]]), model.score([[3]]))


def test_centring_removes_the_anisotropy_of_real_minilm_title_vectors(beauty, tmp_path_factory) -> None:
    catalog = catalog_slice(beauty.catalog)
    cache = shared_cache_dir(tmp_path_factory)
    raw = embed_catalog(catalog, minilm(), cache_dir=cache)
    centred, _ = embed_space(catalog, minilm(), PostprocessConfig(center=True), cache_dir=cache)
    whitened, _ = embed_space(catalog, minilm(), PostprocessConfig(center=True, alpha=1.0), cache_dir=cache)
    off = ~np.eye(len(catalog), dtype=bool)
    raw_mean, centred_mean = (raw @ raw.T)[off].mean(), (centred @ centred.T)[off].mean()
    # MiniLM titles of one shop share a large common direction: random pairs of titles have cosine ~0.2
    assert raw_mean > 0.1 and abs(centred_mean) < 0.02, (raw_mean, centred_mean)

    # whitening spreads the variance: the top direction explains far less of it than in the raw vectors
    def top_share(matrix: np.ndarray) -> float:
        singular = np.linalg.svd(matrix - matrix.mean(axis=0), compute_uv=False)
        return float(singular[0] ** 2 / (singular**2).sum())

    assert top_share(whitened) < 0.5 * top_share(raw), (top_share(whitened), top_share(raw))


def test_the_chroma_index_holds_and_queries_the_post_processed_space(tmp_path: Path) -> None:
    from tools.chroma_index import CatalogIndex

    titles = tuple(f"lotion {i} for skin type {i % 9} and hair {i % 5}" for i in range(80))
    catalog = Catalog(ids=tuple(range(80)), titles=titles)
    provider = CountingProvider(dim=32)
    vectors, transform = embed_space(catalog, provider, PostprocessConfig(center=True, alpha=0.5), cache_dir=tmp_path)
    queries = space_provider(provider, transform, tmp_path)
    index = CatalogIndex(catalog, "tag", provider=queries, store_path=tmp_path / "chroma", embeddings_dir=tmp_path)
    assert index.name.endswith("pp-c1-a0.5-k1")  # another space, another collection
    index.build(vectors=vectors)
    hits = index.query_text(titles[7], 3)  # the query text goes through the same transform as the catalogue
    assert hits[0].index == 7 and hits[0].score == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(hits[1].score, float(vectors[hits[1].index] @ vectors[7]), atol=1e-4)
