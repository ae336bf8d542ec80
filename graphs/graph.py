"""The SemSR state machine.

```
validate ─┬─► infer_intent ─► clarify ─► intent_retrieval ─┐
          ├─► sr_rerank ───────────────────────────────────┼─► fuse ─► END
          └─► session_semantics ───────────────────────────┘
```

The intent branch (LLM), the session recommenders and the session's own title semantics run in
parallel, each writing its own state key; ``fuse`` waits for all three. Every interface (Python API,
CLI, LangGraph server, evaluation harness) runs this one compiled graph.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.nodes import GraphNodes
from graphs.resources import GraphServices
from graphs.state import InputState, OutputState, State


def build_graph(services: GraphServices) -> StateGraph:
    """The graph's shape, its nodes bound to ``services`` (models, index, LLM client, fitted fusion)."""
    nodes = GraphNodes(services)
    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node("validate", nodes.validate_session)
    builder.add_node("infer_intent", nodes.infer_intent)
    builder.add_node("clarify", nodes.clarify)
    builder.add_node("intent_retrieval", nodes.intent_retrieval)
    builder.add_node("sr_rerank", nodes.sr_rerank)
    builder.add_node("session_semantics", nodes.session_semantics)
    builder.add_node("fuse", nodes.fuse)
    builder.add_edge(START, "validate")
    builder.add_edge("validate", "infer_intent")
    builder.add_edge("validate", "sr_rerank")
    builder.add_edge("validate", "session_semantics")
    builder.add_edge("infer_intent", "clarify")
    builder.add_edge("clarify", "intent_retrieval")
    builder.add_edge(["intent_retrieval", "sr_rerank", "session_semantics"], "fuse")
    builder.add_edge("fuse", END)
    return builder


def compile_graph(services: GraphServices, checkpointer: Any = None) -> Any:
    """The compiled graph; pass a checkpointer for conversations (threads) and interrupts."""
    return build_graph(services).compile(checkpointer=checkpointer, name="semsr")
