"""The Chroma catalogue index (embedded and server modes), the ``semantic_search`` tool and ``semsr index``,
on a 300-item slice of real Beauty titles embedded with the bundled MiniLM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import ToolMessage
from semantic_helpers import CountingProvider, catalog_slice, minilm, shared_cache_dir

from embeddings.catalog import embed_catalog
from embeddings.precomputed import FileEmbeddingProvider
from sessiondata.errors import ConfigError
from sessiondata.schema import Catalog
from tools.chroma_client import collection_name
from tools.chroma_embedding import SemsrEmbeddingFunction
from tools.chroma_index import CatalogIndex
from tools.config import ChromaConfig
from tools.semantic_search import make_semantic_search_tool, search

TAG = "beauty-slice"


@pytest.fixture(scope="module")
def catalog(beauty) -> Catalog:
    return catalog_slice(beauty.catalog)


@pytest.fixture(scope="module")
def vectors(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return embed_catalog(catalog, minilm(), cache_dir=shared_cache_dir(tmp_path_factory))


@pytest.fixture(scope="module")
def index(catalog: Catalog, vectors: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> CatalogIndex:
    home = tmp_path_factory.mktemp("home")
    cache = shared_cache_dir(tmp_path_factory)
    built = CatalogIndex(
        catalog, TAG, provider=minilm(), chroma=ChromaConfig(), store_path=home / "chroma", embeddings_dir=cache
    )
    built.build(vectors=vectors)
    return built


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int, exclude: set[int] = frozenset()) -> list[int]:
    scores = vectors @ query
    order = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in exclude]
    return order[:k]


# -- building ----------------------------------------------------------------------------------------------------
def test_build_stores_every_item_with_its_metadata(index: CatalogIndex, catalog: Catalog) -> None:
    assert index.count() == len(catalog)
    record = index.collection.get(ids=[str(catalog.ids[5])], include=["metadatas", "documents"])
    assert record["metadatas"][0] == {
        "item_id": str(catalog.ids[5]),
        "index": 5,
        "title": catalog.titles[5],
        "asin": catalog.metadata["asin"][5],
    }
    assert index.collection.metadata["embedder"] == minilm().id
    assert index.collection.configuration_json["hnsw"]["space"] == "cosine"
    assert isinstance(index.collection._embedding_function, SemsrEmbeddingFunction)


def test_build_is_idempotent_and_resumes(catalog: Catalog, vectors: np.ndarray, tmp_path: Path) -> None:
    fresh = CatalogIndex(catalog, TAG, provider=minilm(), chroma=ChromaConfig(path=tmp_path / "c"), store_path=tmp_path)
    first = fresh.build(vectors=vectors, batch_size=64)
    assert (first.added, first.skipped) == (len(catalog), 0)
    fresh.collection.delete(ids=[str(item_id) for item_id in catalog.ids[:50]])  # as if a build had crashed
    resumed = fresh.build(vectors=vectors)
    assert (resumed.added, resumed.skipped) == (50, len(catalog) - 50)
    assert fresh.build(vectors=vectors).added == 0 and fresh.count() == len(catalog)


@pytest.mark.slow
def test_reopening_in_a_new_process_uses_our_embedding_function(index: CatalogIndex) -> None:
    script = (
        "import chromadb, tools.chroma_embedding\n"
        "from chromadb.config import Settings\n"
        f"client = chromadb.PersistentClient(path={str(index.store_path)!r},"
        " settings=Settings(anonymized_telemetry=False))\n"
        f"collection = client.get_collection({index.name!r})\n"
        "print(type(collection.configuration['embedding_function']).__name__, collection.count())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["SemsrEmbeddingFunction", str(index.count())]


def test_a_collection_built_by_another_embedder_is_refused(index: CatalogIndex, catalog: Catalog) -> None:
    other = CountingProvider(dim=384, name="other-model")
    with pytest.raises(ConfigError, match=r"test:other-model-384.*built with embedder 'minilm-l6-v2@"):
        CatalogIndex(catalog, TAG, provider=other, store_path=index.store_path, name=index.name)
    # without an explicit name another embedder simply gets a collection of its own
    assert collection_name("semsr", TAG, other.id) != index.name


# -- querying ----------------------------------------------------------------------------------------------------
def test_query_by_vector_agrees_with_exact_cosine(index: CatalogIndex, vectors: np.ndarray) -> None:
    overlaps = []
    for row in (0, 42, 123, 250):
        hits = index.query_vectors(vectors[row], 20)[0]
        assert hits[0].index == row and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        overlaps.append(len({h.index for h in hits} & set(exact_top(vectors, vectors[row], 20))) / 20)
        np.testing.assert_allclose([h.score for h in hits], vectors[[h.index for h in hits]] @ vectors[row], atol=1e-4)
    assert np.mean(overlaps) >= 0.95


def test_query_by_text_finds_matching_titles(index: CatalogIndex, catalog: Catalog) -> None:
    title = catalog.titles[7]
    hits = index.query_text(title, 5)
    assert hits[0].index == 7 and hits[0].title == title


def test_query_by_items_excludes_the_session_and_exclusions(index: CatalogIndex, vectors: np.ndarray) -> None:
    session = [index.catalog.ids[3], index.catalog.ids[9]]
    centre = vectors[[3, 9]].mean(axis=0)
    expected = exact_top(vectors, centre / np.linalg.norm(centre), 10, exclude={3, 9})
    hits = index.query_items(session, 10)
    assert {3, 9}.isdisjoint(h.index for h in hits)
    assert len({h.index for h in hits} & set(expected)) >= 9
    banned = hits[0].item_id
    again = index.query_items(session, 10, exclude_ids=[banned])
    assert banned not in [h.item_id for h in again] and len(again) == 10


def test_metadata_filters(index: CatalogIndex, catalog: Catalog) -> None:
    asin = catalog.metadata["asin"][11]
    hits = index.query_text("lipstick", 5, filters={"asin": asin})
    assert [h.index for h in hits] == [11]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.query_text("   ", 5), r"query='   ': is empty or whitespace"),
        (lambda ix: ix.query_text("lipstick", 0), r"k=0: must be an integer in 1\.\.300"),
        (lambda ix: ix.query_text("lipstick", 301), r"k=301"),
        (lambda ix: ix.query_items([-1], 5), r"item_ids=-1: unknown item id"),
        (lambda ix: ix.query_items(["not-a-number"], 5), r"item ids of this dataset are integers"),
        (lambda ix: ix.query_text("lipstick", 5, exclude_ids=[10**9]), r"exclude_ids=1000000000: unknown"),
        (lambda ix: ix.query_text("lipstick", 5, filters={"$bogus": 1}), r"filters=.*rejected by Chroma"),
        (lambda ix: ix.query_vectors(np.ones(7), 5), r"must have 384 columns"),
    ],
    ids=["blank-query", "k-zero", "k-too-big", "unknown-id", "bad-id-type", "unknown-exclude", "bad-filter", "dim"],
)
def test_bad_queries_are_clear_errors(index: CatalogIndex, call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(index)


def test_unusable_chroma_locations_are_clear_errors(catalog: Catalog, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"chroma\.path=.*cannot create the directory"):
        CatalogIndex(catalog, TAG, provider=minilm(), chroma=ChromaConfig(path=blocker / "chroma"), store_path=tmp_path)
    down = ChromaConfig(server_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match=r"chroma\.server_url=.*no Chroma server answers"):
        CatalogIndex(catalog, TAG, provider=minilm(), chroma=down, store_path=tmp_path)
    with pytest.raises(ConfigError, match=r"chroma\.server_url='localhost:8000'"):
        CatalogIndex(
            catalog, TAG, provider=minilm(), chroma=ChromaConfig(server_url="localhost:8000"), store_path=tmp_path
        )


# -- server mode -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``chroma run`` server on a free local port, stopped after the module."""
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    binary = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [str(binary), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not start on port {port}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
def test_server_mode_builds_and_queries(
    chroma_server: str, catalog: Catalog, vectors: np.ndarray, tmp_path: Path
) -> None:
    remote = CatalogIndex(
        catalog, TAG, provider=minilm(), chroma=ChromaConfig(server_url=chroma_server), store_path=tmp_path
    )
    assert type(remote.client).__name__ != "PersistentClient"
    report = remote.build(vectors=vectors, batch_size=128)
    assert report.added == len(catalog) and remote.count() == len(catalog)
    hits = remote.query_vectors(vectors[42], 10)[0]
    assert hits[0].index == 42
    assert remote.build(vectors=vectors).added == 0
    with pytest.raises(ConfigError, match="built with embedder"):
        CatalogIndex(
            catalog,
            TAG,
            provider=CountingProvider(dim=384),
            chroma=ChromaConfig(server_url=chroma_server),
            store_path=tmp_path,
            name=remote.name,
        )


# -- the LangChain tool ------------------------------------------------------------------------------------------
def test_tool_returns_text_for_the_llm_and_the_payload_as_artifact(index: CatalogIndex, catalog: Catalog) -> None:
    tool = make_semantic_search_tool(index)
    assert tool.name == "semantic_search" and tool.response_format == "content_and_artifact"
    call = {"type": "tool_call", "id": "call-1", "name": "semantic_search", "args": {"query": "red lipstick", "k": 5}}
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage)
    items = message.artifact["items"]
    assert len(items) == 5 and message.artifact["embedder"] == minilm().id
    assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)
    for item in items:
        assert catalog.titles[item["index"]] == item["title"] and catalog.ids[item["index"]] == item["item_id"]
        assert f"[{item['item_id']}]" in message.content
    assert message.content.startswith("Top 5 catalogue items for query 'red lipstick'")


def test_tool_with_a_session_and_a_query(index: CatalogIndex, catalog: Catalog) -> None:
    tool = make_semantic_search_tool(index)
    session = list(catalog.ids[20:23])
    args = {"query": "shampoo", "item_ids": session, "k": 8, "exclude_ids": [catalog.ids[0]]}
    message = tool.invoke({"type": "tool_call", "id": "c", "name": "semantic_search", "args": args})
    returned = {item["item_id"] for item in message.artifact["items"]}
    assert len(returned) == 8 and returned.isdisjoint([*session, catalog.ids[0]])
    assert "a session of 3 items" in message.content


def test_tool_rejects_a_call_with_nothing_to_search(index: CatalogIndex) -> None:
    with pytest.raises(ConfigError, match="give a query text, session item_ids, or both"):
        search(index, query=None, item_ids=[])
    with pytest.raises(ConfigError, match="empty or whitespace"):
        make_semantic_search_tool(index).invoke({"query": " \n", "k": 3})


# -- the CLI -----------------------------------------------------------------------------------------------------
def test_cli_index_with_a_vector_file(catalog: Catalog, vectors: np.ndarray, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from semsr.cli import app

    data = tmp_path / "shop"
    data.mkdir()
    (data / "items.csv").write_text(
        "item_id,title\n" + "".join(f"{i},item {i}\n" for i in catalog.ids[:30]), encoding="utf-8"
    )
    (data / "interactions.csv").write_text(
        "session_id,item_id,timestamp\n" + "".join(f"{n // 3},{i},{1000 + n}\n" for n, i in enumerate(catalog.ids[:30]))
    )
    np.savez(tmp_path / "v.npz", ids=np.array(catalog.ids[:30]), vectors=vectors[:30])
    runner = CliRunner()
    common = ["index", "--dataset", f"csv:{data}", "--no-progress", "--embedder", "file"]
    env = {"SEMSR_HOME": str(tmp_path / "home")}
    result = runner.invoke(app, [*common, "--vectors", str(tmp_path / "v.npz")], env=env)
    assert result.exit_code == 0, result.output
    assert '"added": 30' in result.output and FileEmbeddingProvider(tmp_path / "v.npz").id in result.output
    again = runner.invoke(app, [*common, "--vectors", str(tmp_path / "v.npz")], env=env)
    assert '"skipped": 30' in again.output
    down = runner.invoke(app, [*common, "--server-url", f"http://127.0.0.1:{free_port()}"], env=env)
    assert down.exit_code == 2 and "no Chroma server answers" in down.output
