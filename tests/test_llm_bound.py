"""A slow LLM under concurrent requests: each call is bounded by ``llm.call_timeout`` (the answer comes
degraded, flagged ``LLM timeout``), and async callers (the LangGraph server) run the graph's blocking nodes
in its node pool, so more concurrent runs than the event loop's default pool holds wait on the LLM at once.
The ``llm-agent`` profile on the Beauty slice, its LLM the scripted fake."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from fakes.openai_chat import FakeChatServer, tool_call

from agents.bounded import BoundedCalls
from agents.config import LLMConfig
from agents.errors import LLMFailure
from evals.prepare import prepare_profile
from graphs.api import SemSR
from graphs.context import Context


def test_a_call_past_its_bound_is_an_llm_timeout_and_a_queued_one_never_starts():
    calls = BoundedCalls(LLMConfig(base_url="http://127.0.0.1:9/v1", call_timeout=0.2, max_concurrent_calls=1))
    started = time.perf_counter()
    with pytest.raises(LLMFailure) as failure:
        calls.run(time.sleep, 1.5)
    assert failure.value.kind == "timeout" and time.perf_counter() - started < 0.6
    ran = []
    with pytest.raises(LLMFailure):
        calls.run(ran.append, 1)  # queued behind the sleeping call: cancelled before it starts
    time.sleep(1.5)
    assert ran == [] and calls.run(ran.append, 2, budget=1.0) is None and ran == [2]


def _slice_case(protocol, n: int) -> list:
    return [protocol.dataset.catalog.ids[i] for i in protocol.test.cases[n].prompt]


def _answer(protocol) -> dict:
    catalog = protocol.dataset.catalog
    return {"titles": [t for t in catalog.titles if 10 < len(t) < 60][:2]}


@pytest.mark.slow  # prepares the llm-agent profile on the slice
def test_a_slow_llm_is_cut_at_its_timeout_and_flagged(slice_protocol, slice_settings):
    with FakeChatServer([tool_call("NextProducts", _answer(slice_protocol), delay=3)]) as server:
        llm = LLMConfig(base_url=server.base_url, model="fake-model", cache_mode="live", http_retries=0, call_timeout=1)
        settings = slice_settings.model_copy(update={"llm": llm})
        prepare_profile("llm-agent", slice_protocol, settings, progress=False)
        result = SemSR(settings).recommend(_slice_case(slice_protocol, 2), k=5, context=Context(profile="llm-agent"))
    assert result.timings["llm-agent"] < 2.5 and len(result.recommendations) == 5  # the fake answers after 3 s
    assert any(note.startswith("llm-agent: LLM timeout (LLMFailure") for note in result.degraded)


@pytest.mark.slow
def test_concurrent_async_runs_wait_on_the_llm_together(slice_protocol, slice_settings):
    """18 runs, each waiting 1 s on the LLM: more of them wait on the LLM at the same moment than the loop's
    default pool has threads (cpu_count + 4), so they do not queue behind each other. Counted on the fake
    server (requests in flight at once), not timed, so a loaded machine cannot fail or pass it by accident."""
    runs = 18
    replies = [tool_call("NextProducts", _answer(slice_protocol), delay=1) for _ in range(runs + 1)]
    with FakeChatServer(replies) as server:
        llm = LLMConfig(base_url=server.base_url, model="fake-model", cache_mode="live", http_retries=0)
        settings = slice_settings.model_copy(update={"llm": llm})
        prepare_profile("llm-agent", slice_protocol, settings, progress=False)
        semsr = SemSR(settings)
        context = Context(profile="llm-agent")
        semsr.recommend(_slice_case(slice_protocol, 0), k=5, context=context)  # loads the profile once
        graph = semsr.graph(persistent=False)

        async def all_at_once() -> list:
            requests = [{"items": _slice_case(slice_protocol, n), "k": 5} for n in range(1, runs + 1)]
            return await asyncio.gather(*(graph.ainvoke(r, context=context) for r in requests))

        outputs = asyncio.run(all_at_once())
        together = server.server.max_in_flight
    assert all(len(o["recommendations"]) == 5 and not o["degraded"] for o in outputs)
    pool = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
    assert together > pool, f"at most {together} of {runs} runs waited on the LLM at once: they queued"
