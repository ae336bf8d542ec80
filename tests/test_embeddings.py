"""Embedding providers (bundled MiniLM, an OpenAI-compatible server, a vector file), the cache and
``embed_catalog`` on real Beauty titles."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from fakes.openai_http import (
    FakeOpenAIServer,
    Reply,
    delayed,
    embeddings_handler,
    error_reply,
    hashed_embedding,
    malformed_reply,
)
from semantic_helpers import CountingProvider, catalog_slice, minilm, shared_cache_dir

from embeddings.cache import CachedProvider, EmbeddingCache
from embeddings.catalog import catalog_texts, clear_memory, embed_catalog
from embeddings.config import EmbedderConfig, build_provider
from embeddings.minilm import MODEL_SHA256, MiniLMProvider, verify_weights
from embeddings.openai_compat import EmbeddingServiceError, OpenAIEmbeddingProvider
from embeddings.precomputed import FileEmbeddingProvider
from sessiondata.errors import ConfigError
from sessiondata.schema import Catalog


@pytest.fixture(scope="module")
def fake_server():
    with FakeOpenAIServer() as server:
        server.route("/v1/embeddings", embeddings_handler())
        yield server


def unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


# -- MiniLM ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_gives_unit_vectors_that_capture_meaning() -> None:
    provider = minilm()
    vectors = provider.embed(["red matte lipstick", "Revlon Matte Lipstick, Really Red", "argan oil hair treatment"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert provider.id == f"minilm-l6-v2@{MODEL_SHA256[:8]}-seq128"


def test_minilm_truncation_is_part_of_the_identity() -> None:
    assert MiniLMProvider(max_seq_length=256).id != MiniLMProvider(max_seq_length=128).id
    with pytest.raises(ConfigError, match="max_seq_length"):
        MiniLMProvider(max_seq_length=1000)


def test_weights_with_another_checksum_are_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not the real weights")
    with pytest.raises(ConfigError, match="differs from the upstream"):
        verify_weights(tmp_path)
    with pytest.raises(ConfigError, match=r"no model\.safetensors"):
        verify_weights(tmp_path / "missing")


@pytest.mark.parametrize("texts", [["fine", "   "], [""], ["ok", "\n\t"]])
def test_blank_texts_are_a_clear_error(texts: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"texts\[\d\].*empty or whitespace"):
        CountingProvider().embed(texts)


def test_a_single_string_is_not_mistaken_for_a_list() -> None:
    with pytest.raises(ConfigError, match="list of texts"):
        CountingProvider().embed("lipstick")  # type: ignore[arg-type]


# -- OpenAI-compatible endpoint ----------------------------------------------------------------------------------
def test_openai_provider_batches_and_keeps_order(fake_server: FakeOpenAIServer) -> None:
    provider = OpenAIEmbeddingProvider(model="fake-embed", base_url=fake_server.url, batch_size=2)
    before = len(fake_server.calls("/v1/embeddings"))
    texts = ["red lipstick", "blue nail polish", "argan oil", "shampoo", "lip gloss"]
    vectors = provider.embed(texts)
    requests = fake_server.calls("/v1/embeddings")[before:]
    assert [len(r.json["input"]) for r in requests] == [2, 2, 1]
    assert {r.json["model"] for r in requests} == {"fake-embed"}
    np.testing.assert_allclose(vectors, unit([hashed_embedding(t) for t in texts]), atol=1e-6)
    assert provider.id == f"openai:fake-embed@127.0.0.1:{fake_server.port}" and provider.dim == 32


def test_openai_provider_sends_the_key_from_the_named_env_var(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSR_TEST_KEY", "sk-test-123")
    provider = OpenAIEmbeddingProvider(model="m", base_url=fake_server.url, api_key_env="SEMSR_TEST_KEY")
    provider.embed(["x"])
    assert fake_server.calls("/v1/embeddings")[-1].headers["authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (error_reply(500, "model exploded"), r"HTTP 500.*model exploded"),
        (error_reply(401, "bad key", "invalid_api_key"), r"HTTP 401"),
        (malformed_reply(), r"malformed|unusable|not an embeddings list"),
        (Reply(200, {"object": "list", "data": []}), r"sent 1 texts, got vectors of shape"),
        (delayed(Reply(200, {}), 2.0), r"timeout"),
    ],
    ids=["http-500", "http-401", "malformed-json", "wrong-count", "timeout"],
)
def test_openai_failures_become_clear_errors(fake_server: FakeOpenAIServer, reply: Reply, message: str) -> None:
    provider = OpenAIEmbeddingProvider(model="m", base_url=fake_server.url, timeout=0.5)
    fake_server.script("/v1/embeddings", reply)
    with pytest.raises(EmbeddingServiceError, match=message) as caught:
        provider.embed(["lipstick"])
    assert fake_server.url in str(caught.value)
    assert provider.embed(["lipstick"]).shape == (1, 32)  # the next request is served normally


def test_openai_server_down_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIEmbeddingProvider(model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2)
    with pytest.raises(EmbeddingServiceError, match=r"cannot connect.*server running"):
        provider.embed(["lipstick"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"model": " "}, "embedder.model"), ({"model": "m", "base_url": "ftp://x"}, "embedder.base_url")],
)
def test_openai_provider_rejects_bad_settings(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        OpenAIEmbeddingProvider(**kwargs)


def test_real_openai_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMSR_ABSENT_KEY", raising=False)
    with pytest.raises(ConfigError, match="SEMSR_ABSENT_KEY"):
        OpenAIEmbeddingProvider(model="text-embedding-3-small", api_key_env="SEMSR_ABSENT_KEY")


# -- precomputed vectors -----------------------------------------------------------------------------------------
@pytest.fixture
def small_catalog() -> Catalog:
    return Catalog(ids=(10, 11, 12), titles=("red lipstick", "", "argan oil"))


def test_vector_file_rows_follow_the_catalogue(tmp_path: Path, small_catalog: Catalog) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    path = tmp_path / "vectors.npz"
    np.savez(path, ids=np.array([12, 99, 10, 11]), vectors=vectors)  # another order, one extra item
    matrix = embed_catalog(small_catalog, FileEmbeddingProvider(path))
    expected = vectors[[2, 3, 0]] / np.linalg.norm(vectors[[2, 3, 0]], axis=1, keepdims=True)
    np.testing.assert_allclose(matrix, expected, atol=1e-6)


def test_vector_file_as_npy_with_ids(tmp_path: Path, small_catalog: Catalog) -> None:
    np.save(tmp_path / "v.npy", np.eye(3, dtype=np.float32))
    (tmp_path / "v.ids.txt").write_text("11\n10\n12\n")
    matrix = embed_catalog(small_catalog, FileEmbeddingProvider(tmp_path / "v.npy"))
    np.testing.assert_allclose(matrix, np.eye(3)[[1, 0, 2]])


def test_vector_file_errors(tmp_path: Path, small_catalog: Catalog) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, ids=np.array([10, 11]), vectors=np.ones((2, 4)))
    provider = FileEmbeddingProvider(path)
    with pytest.raises(ConfigError, match=r"item_id=12.*has no vector"):
        embed_catalog(small_catalog, provider)
    with pytest.raises(ConfigError, match="stores no texts"):
        provider.embed(["red lipstick"])
    with pytest.raises(ConfigError, match="file not found"):
        FileEmbeddingProvider(tmp_path / "absent.npz")
    with pytest.raises(ConfigError, match="unsupported file type"):
        FileEmbeddingProvider(tmp_path / "vectors.csv")
    np.save(tmp_path / "lonely.npy", np.ones((2, 4)))
    with pytest.raises(ConfigError, match=r"lonely\.ids\.txt"):
        FileEmbeddingProvider(tmp_path / "lonely.npy")


def test_vector_file_with_texts_embeds_known_queries(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez(path, ids=np.array(["a", "b"]), vectors=np.eye(2), texts=np.array(["red  lipstick", "argan oil"]))
    provider = FileEmbeddingProvider(path)
    np.testing.assert_allclose(provider.embed(["red lipstick"]), [[1.0, 0.0]])
    with pytest.raises(ConfigError, match="not among the texts"):
        provider.embed(["shampoo"])


def test_parquet_needs_pyarrow(tmp_path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "v.parquet").write_bytes(b"PAR1")
        with pytest.raises(ConfigError, match="needs pyarrow"):
            FileEmbeddingProvider(tmp_path / "v.parquet")
    else:
        pytest.skip("pyarrow is installed: parquet files are readable")


# -- cache and catalogue -----------------------------------------------------------------------------------------
def test_cache_means_a_second_run_embeds_nothing(tmp_path: Path, small_catalog: Catalog) -> None:
    provider = CountingProvider(name="cache-test")
    first = embed_catalog(small_catalog, provider, cache_dir=tmp_path)
    assert provider.texts_embedded == 3
    clear_memory()  # only the on-disk cache remains
    second = embed_catalog(small_catalog, provider, cache_dir=tmp_path)
    assert provider.texts_embedded == 3
    np.testing.assert_array_equal(first, second)
    assert EmbeddingCache(tmp_path).count("test:cache-test-32") == 3
    # a different embedder id never reuses these vectors
    other = CountingProvider(name="other")
    embed_catalog(small_catalog, other, cache_dir=tmp_path)
    assert other.texts_embedded == 3


def test_cached_provider_embeds_duplicates_once(tmp_path: Path) -> None:
    inner = CountingProvider(name="dups")
    provider = CachedProvider(inner, EmbeddingCache(tmp_path))
    vectors = provider.embed(["lipstick", "  lipstick ", "oil", "lipstick"])
    assert inner.texts_embedded == 2
    np.testing.assert_array_equal(vectors[0], vectors[1])
    provider.embed(["oil", "lipstick"])
    assert inner.texts_embedded == 2


def test_empty_titles_use_the_item_id_placeholder(tmp_path: Path, small_catalog: Catalog) -> None:
    assert catalog_texts(small_catalog) == ["red lipstick", "item 11", "argan oil"]
    provider = CountingProvider(name="placeholder")
    matrix = embed_catalog(small_catalog, provider, cache_dir=tmp_path)
    np.testing.assert_allclose(matrix[1], provider.embed(["item 11"])[0], atol=1e-6)


def test_unwritable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cache_dir"):
        EmbeddingCache(blocker / "sub")


@pytest.mark.slow
def test_embed_catalog_on_beauty_titles_with_minilm(beauty, tmp_path_factory: pytest.TempPathFactory) -> None:
    catalog = catalog_slice(beauty.catalog)
    provider = minilm()
    cache_dir = shared_cache_dir(tmp_path_factory)
    matrix = embed_catalog(catalog, provider, cache_dir=cache_dir)
    assert matrix.shape == (len(catalog), 384) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    for row in (0, 17, len(catalog) - 1):  # row i is item i
        np.testing.assert_allclose(matrix[row], provider.embed([catalog.titles[row]])[0], atol=1e-4)
    calls = provider.calls  # type: ignore[attr-defined]
    clear_memory()
    np.testing.assert_array_equal(embed_catalog(catalog, provider, cache_dir=cache_dir), matrix)
    assert provider.calls == calls  # type: ignore[attr-defined]


# -- configuration -----------------------------------------------------------------------------------------------
def test_settings_carry_the_embedder_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from semsr.settings import Settings

    monkeypatch.setenv("SEMSR_EMBEDDER__KIND", "file")
    monkeypatch.setenv("SEMSR_EMBEDDER__PATH", str(tmp_path / "v.npz"))
    settings = Settings()
    assert settings.embedder.kind == "file" and settings.embedder.path == tmp_path / "v.npz"
    with pytest.raises(ConfigError, match="file not found"):
        build_provider(settings.embedder)
    with pytest.raises(ConfigError, match="needs a path"):
        build_provider(EmbedderConfig(kind="file"))
    assert isinstance(build_provider(EmbedderConfig()), MiniLMProvider)
