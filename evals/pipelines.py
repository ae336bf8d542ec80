"""Pipelines the harness can replay: anything that ranks the catalogue for a batch of cases.

A pipeline receives the case targets only to apply the protocol's conservative tie rule (a target tied
with other items goes after them); it must not use them otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from typing import Protocol as Interface

from sessiondata.protocol import EvalCase, FoldName, Protocol
from sr_models.base import Recommendation, Recommender, train_data
from sr_models.ranking import top_k
from sr_models.registry import MODELS, build_model

if TYPE_CHECKING:
    from semsr.settings import Settings


class RankingPipeline(Interface):
    name: str

    def params(self) -> dict[str, Any]: ...

    def rank(self, cases: Sequence[EvalCase], k: int, *, exclude_seen: bool) -> list[Recommendation]: ...


class RecommenderPipeline:
    """A fitted :class:`Recommender` scored over the full catalogue."""

    def __init__(self, name: str, recommender: Recommender) -> None:
        self.name = name
        self.recommender = recommender

    def params(self) -> dict[str, Any]:
        return self.recommender.params()

    def usage(self) -> dict[str, Any] | None:
        """LLM tokens, calls, latency and cost, for recommenders that call an LLM."""
        client = getattr(self.recommender, "client", None)
        account = getattr(client, "account", None)
        return account.totals() if account is not None else None

    def rank(self, cases: Sequence[EvalCase], k: int, *, exclude_seen: bool) -> list[Recommendation]:
        scores = self.recommender.score([case.prompt for case in cases])
        results = []
        for row, case in zip(scores, cases, strict=True):
            items, values = top_k(row, k, exclude=case.prompt if exclude_seen else (), target=case.target)
            results.append(Recommendation(items.tolist(), values.tolist()))
        return results


def _llm_agent(settings: Settings, **params: Any) -> Recommender:
    """The in-context LLM recommender (agents sit above sr_models), with the project's configuration."""
    from agents.recommender import LLMRecommender

    return LLMRecommender(
        **params,
        llm=settings.llm,
        home=settings.home,
        threads=settings.threads,
        embedder_config=settings.embedder,
    )


# pipelines built from layers above sr_models: name -> (factory, description)
AGENT_PIPELINES: dict[str, tuple[Any, str]] = {
    "llm-agent": (_llm_agent, "LLM proposes next titles, mapped to catalogue items by embedding similarity"),
}


# pipeline names that stand for another: ``semantic`` is the best semantic source (validation-picked)
ALIASES: dict[str, str] = {"semantic": "title-knn"}


def pipeline_names() -> list[str]:
    from evals.graph_pipelines import GRAPH_PIPELINES

    return sorted([*MODELS, *GRAPH_PIPELINES, *AGENT_PIPELINES, *ALIASES])


def build_pipeline(
    name: str,
    protocol: Protocol,
    fold: FoldName = "test",
    *,
    settings: Settings,
    progress: bool = False,
    **overrides: Any,
) -> RankingPipeline:
    """Build pipeline ``name`` for ``fold``.

    A registry model gets its tuned parameters for this dataset, then ``overrides``, and is fitted. A graph
    pipeline gets a context (``overrides`` are context fields); a fusion that must be fitted on the
    validation fold and is not yet is fitted first (the test split is never used for that).
    """
    model_name = ALIASES.get(name, name)
    if model_name not in MODELS:  # registry models never import LangGraph (the table runs where only torch is)
        from evals.graph_pipelines import FUSION_FIT_LIMIT, GRAPH_PIPELINES, GraphPipeline, graph_context

        if name in GRAPH_PIPELINES:
            context = graph_context(name, protocol.dataset.name, fold, **overrides)
            if context.fusion != "rrf" and fold == "test":
                from evals.fusion_fit import fit_fusion, fusion_is_fitted

                if not fusion_is_fitted(protocol, context, settings):
                    fit_fusion(protocol, name, settings, progress=progress, limit=FUSION_FIT_LIMIT.get(name))
            return GraphPipeline(name, context, settings)
    if model_name in AGENT_PIPELINES:
        model = AGENT_PIPELINES[model_name][0](settings, **overrides)
    else:
        model = build_model(model_name, protocol.dataset.name, env=settings.model_env(progress=progress), **overrides)
    model.fit(train_data(protocol, fold))
    return RecommenderPipeline(name, model)
