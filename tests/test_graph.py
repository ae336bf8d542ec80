"""The LangGraph state machine on a real slice of Beauty: every route, conversations, interrupts, bad input.

The slice (the 700 latest-ending sessions and their items, as a CSV pair) keeps embedding and model
fitting to seconds; the graph, the Chroma index, MiniLM and the kNN models are all the real ones.
"""

from __future__ import annotations

import csv
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from graphs.api import Answer, SemSR
from graphs.context import Context
from graphs.resources import InvalidSession
from graphs.tracing import JsonlTracer, read_trace
from semsr.settings import Settings

# the kNN session models fit in seconds; the torch models have tests of their own
FAST_SOURCES = ("vsknn", "sr")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def slice_spec(beauty, tmp_path_factory) -> str:
    """Write the latest-ending 700 Beauty sessions and their items as a CSV pair; return its dataset spec."""
    root = tmp_path_factory.mktemp("beauty-slice")
    sessions = sorted(beauty.sessions, key=lambda s: s.end_time)[-700:]
    catalog = beauty.catalog
    used = sorted({i for s in sessions for i in s.items})
    with (root / "items.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["item_id", "title"])
        writer.writerows([catalog.ids[i], catalog.titles[i]] for i in used)
    with (root / "interactions.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["session_id", "item_id", "timestamp"])
        for session in sessions:
            writer.writerows(
                [session.session_id, catalog.ids[i], t] for i, t in zip(session.items, session.times, strict=True)
            )
    return f"csv:{root}"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("semsr-home")


@pytest.fixture(scope="module")
def semsr(home) -> SemSR:
    return SemSR(Settings(home=home, threads=1))


@pytest.fixture(scope="module")
def context(slice_spec) -> Context:
    return Context(dataset=slice_spec, use_llm=False, fusion="rrf", sr_sources=FAST_SOURCES)


@pytest.fixture(scope="module")
def slice_items(slice_spec, semsr):
    res = semsr.services.resources(Context(dataset=slice_spec))
    test = res.protocol.test
    return res, test


def test_normal_route_fuses_every_source(semsr, context, slice_items):
    res, test = slice_items
    case = test.cases[0]
    items = [res.catalog.ids[i] for i in case.prompt]
    result = semsr.recommend(items, k=10, context=context)
    assert isinstance(result, Answer)
    assert len(result.recommendations) == 10
    assert [r["rank"] for r in result.recommendations] == list(range(1, 11))
    sources = set().union(*(r["contributions"] for r in result.recommendations))
    assert {"vsknn", "sr", "semantic"} <= sources
    assert not set(items) & {r["item_id"] for r in result.recommendations}
    scores = [r["score"] for r in result.recommendations]
    assert scores == sorted(scores, reverse=True)
    assert all(r["title"] for r in result.recommendations)
    assert result.explanation.startswith("Recommended because")
    assert not [d for d in result.degraded if not d.startswith("fusion")]


def test_cold_items_go_the_semantic_path(semsr, context, slice_items):
    res, _ = slice_items
    unseen = [i for i in range(len(res.catalog)) if i not in res.train_items]
    assert unseen, "the slice must hold items only seen in held-out sessions"
    item = res.catalog.ids[unseen[0]]
    result = semsr.recommend([item], k=5, context=context)
    assert result.cold_items == [item]
    assert any(d.startswith("vsknn: ") for d in result.degraded)
    assert len(result.recommendations) == 5
    assert all(set(r["contributions"]) == {"semantic"} for r in result.recommendations)


def test_llm_down_degrades_to_the_other_sources(semsr, context, slice_items, home):
    from agents.config import LLMConfig

    res, test = slice_items
    down = LLMConfig(base_url=f"http://127.0.0.1:{_closed_port()}/v1", timeout=3, http_retries=0, cache_mode="live")
    offline = SemSR(Settings(home=home, threads=1, llm=down))
    items = [res.catalog.ids[i] for i in test.cases[1].prompt]
    result = offline.recommend(items, k=5, context=replace(context, use_llm=True))
    assert any(d.startswith("intent: LLM unavailable") for d in result.degraded)
    assert "some sources were unavailable" in result.explanation
    assert len(result.recommendations) == 5


def test_chroma_down_falls_back_to_session_models(semsr, context, slice_items, home):
    from tools.config import ChromaConfig

    res, test = slice_items
    down = ChromaConfig(server_url=f"http://127.0.0.1:{_closed_port()}")
    offline = SemSR(Settings(home=home, threads=1, chroma=down))
    items = [res.catalog.ids[i] for i in test.cases[2].prompt]
    result = offline.recommend(items, k=5, context=context)
    assert any(d.startswith("semantic: semantic index") for d in result.degraded)
    assert len(result.recommendations) == 5
    assert all("semantic" not in r["contributions"] for r in result.recommendations)


def test_a_conversation_adds_items_to_its_thread(semsr, context, slice_items):
    res, test = slice_items
    first, second = (res.catalog.ids[i] for i in (*test.cases[3].prompt[:1], test.cases[4].target))
    one = semsr.recommend([first], k=5, thread_id="shopper-1", context=context)
    two = semsr.recommend([second], k=5, thread_id="shopper-1", context=context)
    assert one.session == [first]
    assert two.session == [first, second]
    assert semsr.thread_session("shopper-1") == [first, second]
    assert second not in {r["item_id"] for r in two.recommendations}
    fresh = semsr.recommend([second], k=5, thread_id="shopper-1", context=context, reset=True)
    assert fresh.session == [second]


def test_low_confidence_intent_asks_a_question_and_resumes(semsr, context, slice_items, home):
    res, test = slice_items
    ctx = replace(context, use_llm=True, clarify_below=0.5)
    semsr.services.resources(ctx).__dict__["intent_agent"] = lambda titles, timeout: {
        "summary": "Something for the hair",
        "categories": ["hair care"],
        "attributes": {},
        "keywords": ["hair", "shampoo", "conditioner"],
        "confidence": 0.2,
    }
    items = [res.catalog.ids[i] for i in test.cases[5].prompt]
    asked = semsr.recommend(items, k=5, thread_id="shopper-2", context=ctx)
    assert asked.question and "Something for the hair" in asked.question
    assert asked.recommendations == []
    done = semsr.answer("shopper-2", "a dry shampoo", context=ctx)
    assert len(done.recommendations) == 5
    assert "a dry shampoo" in done.explanation
    assert "intent" in set().union(*(r["contributions"] for r in done.recommendations))
    with pytest.raises(InvalidSession, match="no pending question"):
        semsr.answer("shopper-2", "again", context=ctx)
    del semsr.services.resources(ctx).__dict__["intent_agent"]


def test_streaming_reports_each_node(semsr, context, slice_items):
    res, test = slice_items
    items = [res.catalog.ids[i] for i in test.cases[6].prompt]
    nodes = [node for node, _ in semsr.stream_updates(items, k=3, context=context)]
    assert nodes[0] == "validate" and nodes[-1] == "fuse"
    assert {"sr_rerank", "session_semantics", "infer_intent"} <= set(nodes)


def test_trace_records_every_node_with_latency(semsr, context, slice_items, tmp_path):
    res, test = slice_items
    items = [res.catalog.ids[i] for i in test.cases[7].prompt]
    semsr.recommend(items, k=3, context=context, callbacks=[JsonlTracer(tmp_path / "trace.jsonl")])
    records = read_trace(tmp_path / "trace.jsonl")
    nodes = {r["node"] for r in records if r["type"] == "node"}
    assert {"validate", "sr_rerank", "session_semantics", "fuse"} <= nodes
    assert all(r["seconds"] >= 0 for r in records if r["type"] == "node")


def test_bad_input_is_named_or_documented(semsr, context, slice_items):
    res, test = slice_items
    known = res.catalog.ids[test.cases[8].prompt[0]]
    with pytest.raises(InvalidSession, match="the session is empty"):
        semsr.recommend([], context=context)
    with pytest.raises(InvalidSession, match="no known item"):
        semsr.recommend([10**9, "123456789"], context=context)
    with pytest.raises(InvalidSession, match=r"items\[0\]='not-an-id': item ids of this dataset are integers"):
        semsr.recommend(["not-an-id", known], context=context)
    with pytest.raises(InvalidSession, match="k=0"):
        semsr.recommend([known], k=0, context=context)
    with pytest.raises(InvalidSession, match="k=101"):
        semsr.recommend([known], k=101, context=context)
    with pytest.raises(InvalidSession, match="unknown thread"):
        semsr.answer("never-started", "hi", context=context)
    with pytest.raises(InvalidSession, match="thread_id"):
        semsr.recommend([known], thread_id="  ", context=context)
    # unknown ids are reported and skipped; ids given as strings are accepted
    mixed = semsr.recommend([str(known), 10**9], k=3, context=context)
    assert mixed.unknown_items == [10**9] and mixed.session == [known]
    # duplicates are kept in the session, never recommended back
    twice = semsr.recommend([known, known], k=3, context=context)
    assert twice.session == [known, known] and known not in {r["item_id"] for r in twice.recommendations}
    # a 10,000-item session is served from its most recent items
    many = [res.catalog.ids[i % len(res.catalog)] for i in range(10_000)]
    huge = semsr.recommend(many, k=3, context=context)
    assert len(huge.recommendations) == 3 and len(huge.session) == 10_000


@pytest.mark.slow
def test_langgraph_dev_serves_the_graph_on_loopback(slice_spec, slice_items, home, tmp_path):
    """`langgraph dev` starts from langgraph.json and answers a run on 127.0.0.1."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from langgraph_sdk import get_sync_client

    res, test = slice_items
    port = _closed_port()
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SEMSR_HOME": str(home), "SEMSR_THREADS": "1", "LANGSMITH_TRACING": "false"}
    command = [
        str(Path(sys.executable).parent / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(repo / "langgraph.json"),
    ]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                time.sleep(1)
        else:
            pytest.fail("langgraph dev did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        client = get_sync_client(url=f"http://127.0.0.1:{port}")
        items = [res.catalog.ids[i] for i in test.cases[9].prompt]
        output = client.runs.wait(
            None,
            "semsr",
            input={"items": items, "k": 4},
            context={"dataset": slice_spec, "use_llm": False, "fusion": "rrf", "sr_sources": list(FAST_SOURCES)},
        )
        assert len(output["recommendations"]) == 4
        assert output["session"] == items
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_langsmith_variables_do_not_break_a_request(slice_spec, slice_items, home):
    """With LangSmith switched on but unreachable, tracing fails in the background, never the request.

    Runs in a subprocess: LangSmith caches its environment for the life of a process.
    """
    import json
    import os
    import subprocess
    import sys

    res, test = slice_items
    items = [res.catalog.ids[i] for i in test.cases[10].prompt]
    script = (
        "import json, sys\n"
        "from graphs.api import recommend\n"
        "from graphs.context import Context\n"
        f"context = Context(dataset={slice_spec!r}, use_llm=False, fusion='rrf', sr_sources={FAST_SOURCES!r})\n"
        f"answer = recommend({items!r}, k=3, context=context)\n"
        "print(json.dumps(len(answer.recommendations)))\n"
    )
    env = {
        **os.environ,
        "SEMSR_HOME": str(home),  # the Python API reads the settings from the environment
        "SEMSR_THREADS": "1",
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_API_KEY": "test-key",
        "LANGSMITH_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == 3


def test_recommend_and_trace_commands(slice_spec, slice_items, home, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from semsr.cli import app

    res, test = slice_items
    monkeypatch.setenv("SEMSR_HOME", str(home))
    monkeypatch.setenv("SEMSR_THREADS", "1")
    items = [str(res.catalog.ids[i]) for i in test.cases[11].prompt]
    trace = tmp_path / "trace.jsonl"
    sources = [flag for name in FAST_SOURCES for flag in ("--source", name)]
    args = [
        "recommend",
        "--dataset",
        slice_spec,
        "--no-llm",
        "--fusion",
        "rrf",
        "--k",
        "4",
        "--trace",
        str(trace),
        *sources,
    ]
    result = CliRunner().invoke(app, [*args, "--items", *items[:1], *items[1:]])
    assert result.exit_code == 0, result.output
    assert "Recommendations for" in result.output and "Recommended because" in result.output
    as_json = CliRunner().invoke(app, [*args, "--json", "--items", items[0]])
    assert as_json.exit_code == 0 and '"recommendations"' in as_json.output
    shown = CliRunner().invoke(app, ["trace", str(trace)])
    assert shown.exit_code == 0 and "sr_rerank" in shown.output and "fuse" in shown.output
    bad = CliRunner().invoke(app, ["recommend", "--dataset", slice_spec, *sources, "--k", "0", "--items", items[0]])
    assert bad.exit_code == 2 and "k=0" in bad.output
    missing = CliRunner().invoke(app, ["trace", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output
