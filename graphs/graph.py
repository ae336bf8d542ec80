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
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.nodes import GraphNodes
from graphs.services import ProfileServices
from graphs.state import InputState, OutputState, State

SOURCE_BRANCHES = ("session_models", "session_semantics", "intent_retrieval", "query_retrieval", "llm_proposals")


def build_graph(services: ProfileServices) -> StateGraph:
    """The graph's shape, its nodes bound to ``services`` (the prepared profiles of this process)."""
    nodes = GraphNodes(services)
    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node("validate", nodes.validate_request)
    builder.add_node("session_models", nodes.session_models)
    builder.add_node("session_semantics", nodes.session_semantics)
    builder.add_node("infer_intent", nodes.shopper_intent)
    builder.add_node("clarify", nodes.clarify)
    builder.add_node("intent_retrieval", nodes.intent_retrieval)
    builder.add_node("query_retrieval", nodes.query_retrieval)
    builder.add_node("llm_proposals", nodes.llm_proposals)
    builder.add_node("fuse", nodes.fuse)
    builder.add_node("explain", nodes.explain)
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
