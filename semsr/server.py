"""Entry point for ``langgraph dev`` / LangGraph server (see langgraph.json): the same compiled graph.

The server brings its own checkpointer, so the graph is compiled without one here. The project settings
(``SEMSR_*`` environment variables) are loaded once, at import, and bound to the graph's services.
"""

from __future__ import annotations

from graphs.graph import compile_graph
from graphs.resources import GraphServices
from semsr.settings import apply_threads, load_settings

settings = load_settings()
apply_threads(settings)
graph = compile_graph(GraphServices(settings))
