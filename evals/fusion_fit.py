"""Fit the graph's fusion on the validation fold: run the graph there, collect every source's candidates,
and choose weights (or a learned ranker) that maximise validation NDCG@20. The test split is never used.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from tqdm import tqdm

from evals.graph_pipelines import GraphPipeline, graph_context
from graphs.fusion import FusionModel, ValidationSet, fit_learned, fit_weighted
from graphs.resources import configured_sources, resources_for
from sessiondata.protocol import Protocol


def collect_validation_candidates(
    protocol: Protocol, pipeline: str, *, batch_size: int = 128, progress: bool = True, limit: int | None = None
) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """Per validation case, each source's candidates as the graph produced them (models fitted on sub-train)."""
    context = replace(graph_context(pipeline, protocol.dataset.name, "valid"), return_sources=True, fusion="rrf")
    runner = GraphPipeline(f"{pipeline}-valid", context)
    cases = protocol.valid.cases[:limit] if limit else protocol.valid.cases
    per_case: list[dict[str, Any]] = []
    with tqdm(total=len(cases), desc=f"fusion: {pipeline} on validation", unit="case", disable=not progress) as bar:
        for start in range(0, len(cases), batch_size):
            batch = cases[start : start + batch_size]
            for output in runner.invoke_many(batch, 20):
                per_case.append(output.get("source_candidates", {}))
            bar.update(len(batch))
    return per_case, [case.target for case in cases], configured_sources(context)


def fit_fusion(
    protocol: Protocol, pipeline: str = "fused", *, progress: bool = True, limit: int | None = None
) -> dict[str, FusionModel]:
    """Fit the weighted and the learned fusion for ``pipeline``'s sources and store both."""
    started = time.perf_counter()
    per_case, targets, sources = collect_validation_candidates(protocol, pipeline, progress=progress, limit=limit)
    serving = graph_context(pipeline, protocol.dataset.name, "test")
    data = ValidationSet.build(per_case, targets, sources)
    models = {"weighted": fit_weighted(data), "learned": fit_learned(data)}
    resources = resources_for(serving)
    for strategy, model in models.items():
        model.fitted_on.update(
            {
                "fold": "valid",
                "valid_digest": protocol.train_digest("valid"),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        model.save(resources.fusion_path(serving, strategy))
    return models


def fusion_is_fitted(protocol: Protocol, context: Any) -> bool:
    return resources_for(context).fusion_path(context, context.fusion).exists()
