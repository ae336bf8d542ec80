"""``sr_rerank``: the LangChain tool through which the graph (or an agent) asks data-driven session
recommenders to score the catalogue for a session, or to re-rank a given candidate list.

Answers with ``content_and_artifact``: a short ranked list an LLM can read, and the payload (per model:
dense item indices and raw scores) for code such as the fusion node. Items of the session that the models
never saw in training are reported as cold; if none is known, the tool says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from sessiondata.errors import ConfigError
from sessiondata.ids import require_known
from sessiondata.schema import Catalog
from sr_models.base import Recommender
from sr_models.ranking import top_k

TOOL_NAME = "sr_rerank"


class SRRerankArgs(BaseModel):
    item_ids: list[int | str] = Field(..., description="Item ids of the current session, oldest first.")
    k: int = Field(20, description="Items to return per model (1..catalogue size).")
    candidate_ids: list[int | str] | None = Field(None, description="Only score these items (re-rank a list).")
    models: list[str] | None = Field(None, description="Which session models to ask (default: all).")


class SRReranker:
    """Fitted session recommenders plus what they need to take external ids."""

    def __init__(self, models: Mapping[str, Recommender], catalog: Catalog, train_items: frozenset[int]) -> None:
        self.models = models  # shared, not copied: models loaded later become available
        self.catalog = catalog
        self.train_items = train_items

    def rerank(
        self,
        item_ids: list[int | str],
        k: int = 20,
        candidate_ids: list[int | str] | None = None,
        models: list[str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        if not item_ids:
            raise ConfigError("item_ids", item_ids, "give at least one item of the session")
        if not 1 <= k <= len(self.catalog):
            raise ConfigError("k", k, f"must be from 1 to {len(self.catalog)}")
        chosen = models or list(self.models)
        unknown = [m for m in chosen if m not in self.models]
        if unknown:
            raise ConfigError("models", unknown[0], f"not loaded; available: {sorted(self.models)}")
        session = require_known(self.catalog, item_ids, field="item_ids")
        known = [i for i in session if i in self.train_items]
        payload: dict[str, Any] = {"cold_items": [self.catalog.ids[i] for i in session if i not in self.train_items]}
        if not known:
            payload["models"] = {}
            return "No session item was seen in training: the session models cannot score it (cold start).", payload
        allowed = (
            None
            if candidate_ids is None
            else np.asarray(require_known(self.catalog, candidate_ids, field="candidate_ids"))
        )
        results: dict[str, dict[str, list]] = {}
        lines = []
        for name in chosen:
            scores = self.models[name].score([known])[0]
            if allowed is not None:
                masked = np.full_like(scores, -np.inf)
                masked[allowed] = scores[allowed]
                scores = masked
            items, values = top_k(scores, k, exclude=set(session))
            results[name] = {"items": items.tolist(), "scores": values.tolist()}
            top = ", ".join(f"[{self.catalog.ids[i]}] {self.catalog.titles[i][:50]}" for i in items[:3])
            lines.append(f"{name}: {top}")
        payload["models"] = results
        return "Session models' top items:\n" + "\n".join(lines), payload


def make_sr_rerank_tool(reranker: SRReranker) -> StructuredTool:
    """The ``sr_rerank`` tool bound to ``reranker``."""
    return StructuredTool.from_function(
        func=reranker.rerank,
        name=TOOL_NAME,
        description=(
            "Score the catalogue (or re-rank candidate_ids) for a shopping session with data-driven session "
            "recommenders trained on past sessions. Use it for what shoppers like this one viewed next."
        ),
        args_schema=SRRerankArgs,
        response_format="content_and_artifact",
    )
