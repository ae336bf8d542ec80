"""What the ranker's fit measures about itself on the validation fold (never the test split): candidate
recall by N per source and for the union, and weighted / reciprocal-rank / logistic fusion of the very
same candidates beside the ranker. :mod:`evals.ranker_fit` stores these in the fusion's ``fitted_on``
(protocol card, manifest); the report's "Ranking stage" section reads them from there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evals.candidate_choice import Proposed, target_positions
from evals.fusion_fit import ValidationSet, fit_learned, fit_weighted
from graphs.fusion import rrf_model
from graphs.state import Candidate
from sr_models.ranking import grouped_target_ranks, mean_metrics

if TYPE_CHECKING:
    from evals.ranker_fit import Query, Rows

RECALL_AT = (10, 20, 50, 100, 200)  # cut-offs of the recall-by-N table (capped at what a source proposes)


def holdout_metrics(scores: np.ndarray, rows: Rows, k: int = 20) -> dict[str, float]:
    offsets = np.concatenate([[0], np.cumsum(rows.groups)]).astype(np.int64)
    return mean_metrics(grouped_target_ranks(scores, offsets, np.asarray(rows.target_rows)), k)


def baselines(
    queries: Sequence[Query], per_query: Sequence[dict[str, list[Candidate]]], sources: list[str]
) -> dict[str, dict[str, float]]:
    """Weighted, RRF and logistic fusion of the same candidates: fitted on the earlier sessions' last-item
    queries, scored on the holdout's (where the ranker stopped)."""
    fit_part = [(r, q.target) for q, r in zip(queries, per_query, strict=True) if q.last and not q.holdout]
    held_part = [(r, q.target) for q, r in zip(queries, per_query, strict=True) if q.last and q.holdout]
    fit_set = ValidationSet.build([r for r, _ in fit_part], [t for _, t in fit_part], sources)
    held = ValidationSet.build([r for r, _ in held_part], [t for _, t in held_part], sources)
    out: dict[str, dict[str, float]] = {}
    for name, model in (
        ("weighted", fit_weighted(fit_set)),
        ("learned", fit_learned(fit_set)),
        ("rrf", rrf_model(sources)),
    ):
        # these fusions are linear in the per-source features: score the stacked matrix directly
        width = held.matrix.shape[1] // len(sources)
        if model.strategy == "learned":
            scores = held.matrix @ np.asarray(model.coefficients)
        else:
            column = 1 if model.strategy == "rrf" else 0
            weights = np.array([model.weights.get(s, 0.0) for s in sources])
            scores = held.matrix[:, column::width] @ weights
        out[name] = held.objective(scores, 20)
    return out


def candidate_recall(
    queries: Sequence[Query], per_query: Sequence[dict[str, list[Candidate]]], sources: list[str]
) -> dict[str, float]:
    """Share of holdout last-item queries whose target each source (and the union) proposed."""
    held = [(q.target, r) for q, r in zip(queries, per_query, strict=True) if q.last and q.holdout]
    recall = {s: float(np.mean([any(c["item"] == t for c in r.get(s, ())) for t, r in held])) for s in sources}
    recall["union"] = float(np.mean([any(c["item"] == t for s in sources for c in r.get(s, ())) for t, r in held]))
    return recall


def recall_by_n(
    queries: Sequence[Query],
    per_query: Sequence[dict[str, Proposed]],
    sources: list[str],
    proposed: int,
    cutoffs: Sequence[int] = RECALL_AT,
) -> dict[str, Any]:
    """Share of the validation fold's last-item queries (the protocol's validation cases) whose target is in
    each source's top N, and in the union of every source's top N, for each N up to ``proposed`` (what each
    source proposes, as gathered; candidates are listed best first)."""
    ns = [n for n in cutoffs if n < proposed] + [proposed]
    cases = [(q.target, r) for q, r in zip(queries, per_query, strict=True) if q.last]
    positions = target_positions([t for t, _ in cases], [r for _, r in cases], sources)
    table: dict[str, dict[str, float]] = {}
    for column, source in enumerate(sources):
        table[source] = {str(n): float(np.mean(positions[:, column] <= n)) for n in ns}
    table["union"] = {str(n): float(np.mean((positions <= n).any(axis=1))) for n in ns}
    return {"scope": "validation fold, last-item queries", "n_queries": len(cases), "by_n": table}
