"""Entry point for ``langgraph dev`` / LangGraph server (see langgraph.json): the same compiled graph.

The server brings its own checkpointer, so the graph is compiled without one here. The project settings
(``SEMSR_*`` environment variables) are loaded once, at import, and bound to the graph's services. The
served profile is loaded here too: a server whose profile is not prepared refuses to start, with one
line naming ``semsr prepare``, instead of failing its first caller; the catalogue index and the embedder that
answer what a shopper says are opened here too, so the first query does not wait for them.
"""

from __future__ import annotations

import sys

from graphs.graph import compile_graph
from graphs.services import ProfileServices
from semsr.settings import apply_threads, load_settings
from sessiondata.errors import ConfigError, DataError

settings = load_settings()
apply_threads(settings)
services = ProfileServices(settings)
try:
    served = services.profile()
except (ConfigError, DataError) as error:
    print(f"semsr: cannot serve: {error}", file=sys.stderr)
    raise SystemExit(2) from None
if served.spec.query_source is not None:  # open the index and load the embedder now, not in a shopper's query
    try:
        served.search_tool.invoke({"query": "warm up", "k": 1})
    except Exception as error:  # the query source degrades per request; the other sources still serve
        print(f"semsr: the catalogue index is not available yet: {error}", file=sys.stderr)
graph = compile_graph(services)
