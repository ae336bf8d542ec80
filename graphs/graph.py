"""The SemSR state machine.

```
                ┌─► session_models (sr models: kNN, rules, torch) ────────────────────┐
                ├─► session_semantics (title kNN) ─────────────────────────────────────┤
validate ───────┼─► infer_intent (LLM) ─► clarify ─► intent_retrieval (Chroma) ────────┼─► fuse ─► explain ─► END
                ├─► query_retrieval (what the shopper said; Chroma) ───────────────────┤
                └─► llm_proposals (LLM recommender, approach i) ───────────────────────┘
```

The source branches run in parallel, each adding its own entries to ``source_results``; ``fuse`` waits
for all of them. A branch whose source the serving profile lacks returns at once, so every profile runs
this one compiled graph, and so does every interface (Python API, CLI, LangGraph server and its chat
channel, the ``recommend_products`` tool, the page, evaluation). The compiled graph also works as a
subgraph of an assistant's own graph (it reads and answers on ``messages``).

Every node is blocking code (numpy, SQLite, Chroma, a bounded wait on the LLM). A synchronous caller runs
it as it is; an async caller (the LangGraph server, ``ainvoke``/``astream``) runs it in the process's node
pool (``settings.node_threads``), so concurrent runs neither block the event loop nor queue behind the
loop's small default pool (cpu_count + 4 threads) while they wait on the LLM. A run cancelled because
its client went away stops waiting at once; its node thread ends within ``llm.call_timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextvars import copy_context
from functools import partial
from typing import Any

from langgraph._internal._constants import CONFIG_KEY_RUNNER_SUBMIT
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.nodes import GraphNodes
from graphs.services import ProfileServices
from graphs.state import InputState, OutputState, State

SOURCE_BRANCHES = ("session_models", "session_semantics", "intent_retrieval", "query_retrieval", "llm_proposals")


def offloaded(name: str, node: Callable[..., Any], pool: Executor) -> RunnableCallable:
    """``node`` as it is for ``invoke``/``stream``, and run in ``pool`` for ``ainvoke``/``astream``
    (the run's context is copied into the thread, as LangGraph's own offloading does: ``interrupt`` and
    the runtime work there)."""

    async def in_pool(*args: Any, **kwargs: Any) -> Any:
        call = partial(copy_context().run, node, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    # trace=False: the graph's task already opens one callback run per node (what the JSONL trace and
    # LangSmith record); a traced callable would nest a second run of the same name inside it
    return RunnableCallable(node, in_pool, name=name, trace=False)


class BranchPool:
    """Persistent threads for the parallel branches of *synchronous* runs (``invoke``, ``stream``, ``batch``).

    LangGraph's sync runner otherwise opens a fresh thread pool for every run and starts threads in it for
    the source branches: ~2 thread starts per request, which cost more than the branches' work on a loaded
    machine. :meth:`config` hands the runner this pool's ``submit`` through LangGraph's runner-submit config
    key (internal to the pinned langgraph, as ``RunnableCallable`` is; ``tests/test_graph.py`` checks that
    no thread starts per request); the branches still run side by side, each in the run's copied context.
    Async runs (the server) keep their own path: the node pool of :func:`offloaded`.
    """

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="semsr-branch")

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        __name__: str | None = None,
        __cancel_on_exit__: bool = False,
        __reraise_on_exit__: bool = True,
        __next_tick__: bool = False,
        **kwargs: Any,
    ) -> Any:
        """LangGraph's ``Submit`` signature (its background executor's), on the persistent threads."""
        context = copy_context()
        if __next_tick__:
            return self.pool.submit(_next_tick, context.run, fn, *args, **kwargs)
        return self.pool.submit(context.run, fn, *args, **kwargs)

    def config(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """``config`` with this pool as the sync runner's executor (keys starting ``__`` never reach
        checkpoint metadata)."""
        config = dict(config or {})
        config["configurable"] = {**config.get("configurable", {}), CONFIG_KEY_RUNNER_SUBMIT: self._submitter}
        return config

    def _submitter(self) -> Callable[..., Any]:
        return self.submit


def _next_tick(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Yield to other threads, then run (LangGraph's ``next_tick``)."""
    time.sleep(0)
    return fn(*args, **kwargs)


def build_graph(services: ProfileServices) -> StateGraph:
    """The graph's shape, its nodes bound to ``services`` (the prepared profiles of this process)."""
    nodes = GraphNodes(services)
    pool = ThreadPoolExecutor(max_workers=services.settings.node_threads, thread_name_prefix="semsr-node")
    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    for name, node in (
        ("validate", nodes.validate_request),
        ("session_models", nodes.session_models),
        ("session_semantics", nodes.session_semantics),
        ("infer_intent", nodes.shopper_intent),
        ("clarify", nodes.clarify),
        ("intent_retrieval", nodes.intent_retrieval),
        ("query_retrieval", nodes.query_retrieval),
        ("llm_proposals", nodes.llm_proposals),
        ("fuse", nodes.fuse),
        ("explain", nodes.explain),
    ):
        builder.add_node(name, offloaded(name, node, pool))
    builder.add_edge(START, "validate")
    for branch in ("session_models", "session_semantics", "infer_intent", "query_retrieval", "llm_proposals"):
        builder.add_edge("validate", branch)
    builder.add_edge("infer_intent", "clarify")
    builder.add_edge("clarify", "intent_retrieval")
    builder.add_edge(list(SOURCE_BRANCHES), "fuse")
    builder.add_edge("fuse", "explain")
    builder.add_edge("explain", END)
    return builder


def compile_graph(services: ProfileServices, checkpointer: Any = None) -> Any:
    """The compiled graph; pass a checkpointer for conversations (threads) and interrupts."""
    return build_graph(services).compile(checkpointer=checkpointer, name="semsr")
