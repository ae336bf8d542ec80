"""Pipelines that replay cases through the compiled LangGraph graph: the same path that serves users.

Each graph pipeline is a serving profile (:mod:`graphs.profiles`): a case's prompt goes in as the session
(external ids), the profile's ranked answer comes out. The graph is asked for a few more items than k so
the harness can apply the conservative tie rule at the cut (:func:`sr_models.ranking.conservative_cut`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphs.context import Context
from graphs.graph import BranchPool, compile_graph
from graphs.profiles import PROFILES, profile_spec
from graphs.services import ProfileServices, ServingProfile
from semsr.settings import Settings
from sessiondata.protocol import EvalCase
from sr_models.base import Recommendation
from sr_models.ranking import conservative_cut

TIE_MARGIN = 10  # extra items asked for, so the conservative tie rule sees ties just past k


def replay_k(k: int, max_k: int) -> int:
    """The k a replay asks the graph for: ``k + TIE_MARGIN`` within what the graph serves (``max_k``, 100).
    At the largest cut-off (100) the margin is what fits: a target tied with an item past the served list
    cannot be seen there, which can only move HR/MRR@100 by such rare boundary ties."""
    return min(k + TIE_MARGIN, max(k, max_k))


GRAPH_PIPELINES = PROFILES  # every serving profile is a pipeline of the same name


def graph_description(name: str) -> str:
    spec = profile_spec(name)
    return f"LangGraph graph, profile {name}: {spec.description} ({spec.fusion} fusion of {spec.source_names})"


class GraphPipeline:
    """Replays cases through the compiled graph serving one prepared profile."""

    def __init__(
        self,
        profile: str,
        settings: Settings,
        *,
        dataset: str,
        fold: str = "test",
        return_sources: bool = False,
        concurrency: int = 4,
    ) -> None:
        self.name = profile
        self.concurrency = concurrency
        self.services = ProfileServices(settings)
        self.graph = compile_graph(self.services)
        self.branches = BranchPool(settings.node_threads)
        self.context = Context(profile=profile, dataset=dataset, fold=fold, return_sources=return_sources)  # type: ignore[arg-type]

    @property
    def serving(self) -> ServingProfile:
        return self.services.profile(self.name, self.context.fold, dataset=self.context.dataset)

    def params(self) -> dict[str, Any]:
        serving = self.serving
        sources = serving.manifest.folds[serving.fold].sources
        return {
            "profile": serving.manifest.version_tag,
            "fold_served": serving.fold,
            "sources": {name: {"model": s.model, "params": s.params} for name, s in sources.items()},
            "fusion": serving.fusion.model_dump(mode="json"),
            "max_session_items": serving.spec.max_session_items,
        }

    def usage(self) -> dict[str, Any] | None:
        """LLM tokens, calls, latency and cost of this profile's LLM clients, if they ran."""
        return self.serving.llm_usage()

    def invoke_many(self, cases: Sequence[EvalCase], k: int) -> list[dict[str, Any]]:
        ids = self.serving.catalog.ids
        inputs = [{"items": [ids[i] for i in case.prompt], "k": k} for case in cases]
        config = self.branches.config({"max_concurrency": self.concurrency})
        return self.graph.batch(inputs, config=config, context=self.context)

    def rank(self, cases: Sequence[EvalCase], k: int, *, exclude_seen: bool) -> list[Recommendation]:
        if not exclude_seen:
            raise ValueError("the graph always excludes the session's own items; use exclude_seen=True")
        catalog = self.serving.catalog
        results = []
        for case, output in zip(cases, self.invoke_many(cases, replay_k(k, self.serving.max_k)), strict=True):
            items = [catalog.index_of(r["item_id"]) for r in output["recommendations"]]
            scores = [float(r["score"]) for r in output["recommendations"]]
            items, scores = conservative_cut(items, scores, case.target, k)
            extras = {"timings": output.get("timings", {}), "degraded": output.get("degraded", [])}
            results.append(Recommendation(items, scores, extras))
        return results
