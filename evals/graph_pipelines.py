"""Pipelines that replay cases through the compiled LangGraph graph: the same path that serves users.

A case's prompt goes in as the session (external ids), the graph's ranked answer comes out. The graph is
asked for a few more items than k so the harness can apply the conservative tie rule at the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from graphs.context import Context
from graphs.graph import compile_graph
from graphs.resources import GraphServices, configured_sources
from semsr.settings import Settings
from sessiondata.protocol import EvalCase
from sr_models.base import Recommendation
from sr_models.ranking import conservative_cut

TIE_MARGIN = 10

# name -> context overrides (on top of Context defaults)
GRAPH_PIPELINES: dict[str, dict[str, Any]] = {
    "fused": {"use_llm": False, "fusion": "weighted"},
    "fused-rrf": {"use_llm": False, "fusion": "rrf"},
    "fused-learned": {"use_llm": False, "fusion": "learned"},
    "fused-llm": {"use_llm": True, "fusion": "weighted"},
    "graph-sr": {"use_llm": False, "semantic": False, "fusion": "weighted"},
    # opt-in: adds MSGAT-F, the best torch model (docs/sr_models.md), as a source; it trains for ~15 min on 2 cores
    "fused-neural": {"use_llm": False, "fusion": "weighted", "sr_sources": ("vsknn", "sr", "msgat-semf")},
}


# validation cases used to fit the fusion, for pipelines whose sources are too slow for the whole fold
FUSION_FIT_LIMIT: dict[str, int] = {"fused-llm": 300}


def graph_description(name: str) -> str:
    context = graph_context(name, "amazon-beauty", "test")
    return f"LangGraph graph: {context.fusion} fusion of {configured_sources(context)}"


def graph_context(name: str, dataset: str, fold: str, **overrides: Any) -> Context:
    return Context(dataset=dataset, fold=fold, **{**GRAPH_PIPELINES[name], **overrides})  # type: ignore[arg-type]


class GraphPipeline:
    """Replays cases through the compiled graph with a given context."""

    def __init__(self, name: str, context: Context, settings: Settings, *, concurrency: int = 4) -> None:
        self.name = name
        self.context = context
        self.concurrency = concurrency
        self.services = GraphServices(settings)
        self.graph = compile_graph(self.services)
        self.resources = self.services.resources(context)

    def params(self) -> dict[str, Any]:
        context = asdict(self.context)
        context.pop("return_sources", None)
        fusion, note = self.resources.fusion(self.context)
        return {
            "context": context,
            "sources": configured_sources(self.context),
            "fusion": asdict(fusion) if note is None else {"strategy": "rrf", "note": note},
        }

    def usage(self) -> dict[str, Any] | None:
        """LLM tokens, calls, latency and cost of this process's intent agent, if it was used."""
        agent = self.resources.__dict__.get("intent_agent")
        return agent.account.totals() if agent is not None else None

    def invoke_many(self, cases: Sequence[EvalCase], k: int) -> list[dict[str, Any]]:
        ids = self.resources.catalog.ids
        inputs = [{"items": [ids[i] for i in case.prompt], "k": k} for case in cases]
        return self.graph.batch(inputs, config={"max_concurrency": self.concurrency}, context=self.context)

    def rank(self, cases: Sequence[EvalCase], k: int, *, exclude_seen: bool) -> list[Recommendation]:
        if not exclude_seen:
            raise ValueError("the graph always excludes the session's own items; use exclude_seen=True")
        catalog = self.resources.catalog
        results = []
        for case, output in zip(cases, self.invoke_many(cases, k + TIE_MARGIN), strict=True):
            items = [catalog.index_of(r["item_id"]) for r in output["recommendations"]]
            scores = [float(r["score"]) for r in output["recommendations"]]
            items, scores = conservative_cut(items, scores, case.target, k)
            extras = {"timings": output.get("timings", {}), "degraded": output.get("degraded", [])}
            results.append(Recommendation(items, scores, extras))
        return results
