"""Entry point for ``langgraph dev`` / LangGraph server (see langgraph.json): the same compiled graph.

The server brings its own checkpointer, so the graph is compiled without one here; resources are
configured from the project settings (``SEMSR_*`` environment variables) once, at import.
"""

from __future__ import annotations

from graphs.graph import compile_graph
from graphs.resources import configure
from semsr.settings import load_settings

configure(load_settings().resource_config())
graph = compile_graph()
