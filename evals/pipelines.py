"""Pipelines the harness can replay: anything that ranks the catalogue for a batch of cases.

A pipeline receives the case targets only to apply the protocol's conservative tie rule (a target tied
with other items goes after them); it must not use them otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from typing import Protocol as Interface

from sessiondata.errors import ConfigError
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


# pipeline names that stand for another: ``semantic`` is the best semantic source (validation-picked)
ALIASES: dict[str, str] = {"semantic": "title-knn"}


def pipeline_names() -> list[str]:
    from graphs.profiles import PROFILES

    return sorted([*MODELS, *PROFILES, *ALIASES])


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
    pipeline is a serving profile: it is prepared first where it is not (``semsr prepare``: models fitted,
    the fusion fitted on the validation fold, never on the test split), then replayed through the graph.
    """
    model_name = ALIASES.get(name, name)
    if model_name not in MODELS:  # registry models never import LangGraph (the table runs where only torch is)
        from evals.graph_pipelines import GraphPipeline
        from evals.prepare import prepare_profile
        from graphs.profiles import profile_spec

        profile_spec(name)  # an unknown name is one clear error
        if overrides:
            raise ConfigError("params", overrides, f"{name} is a serving profile: its settings live in the profile")
        prepare_profile(name, protocol, settings, progress=progress, fit=fold == "test")
        return GraphPipeline(name, settings, dataset=protocol.dataset.spec or protocol.dataset.name, fold=fold)
    model = build_model(model_name, protocol.dataset.name, env=settings.model_env(progress=progress), **overrides)
    model.fit(train_data(protocol, fold))
    return RecommenderPipeline(name, model)
