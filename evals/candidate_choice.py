"""How many candidates each source proposes, chosen on the validation fold: greedy union recall at a budget.

A ranker profile may give a grid of list lengths (``ProfileSpec.candidate_grid``, e.g. 25/50/100/200) and a
budget (``candidate_budget``: the most candidates all ranked sources propose together, i.e. what one request
costs the ranker). Every source starts at the grid's smallest N; then, step by step, the source whose next
grid step adds the most union recall per added candidate takes it, while the budget allows and a step
still adds recall. Union recall (the share of queries whose target some source proposed) bounds what any
ranker can reach, and it is computed for every allocation from one gathering at the largest N, whereas
choosing by the ranker's own metric would cost one LightGBM fit per step. The queries are the validation
fold's last-item queries outside the ranker's early-stopping slice (the protocol's kind of case), so the
slice that scores the ranker plays no part in the choice. Nothing here reads the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from graphs.state import Candidate
from sessiondata.errors import ConfigError

if TYPE_CHECKING:
    from evals.ranker_fit import Query

# one source's proposal for one query: the graph's candidate list, or (items, scores) arrays, best first
Proposed = Sequence[Candidate] | tuple[np.ndarray, np.ndarray]


def target_positions(
    targets: Sequence[int], per_query: Sequence[dict[str, Proposed]], sources: Sequence[str]
) -> np.ndarray:
    """(queries, sources) 1-based position of each query's target in each source's list (inf: absent)."""
    positions = np.full((len(targets), len(sources)), np.inf)
    for row, (target, results) in enumerate(zip(targets, per_query, strict=True)):
        for column, source in enumerate(sources):
            found = np.flatnonzero(_items(results.get(source, ())) == target)
            if found.size:
                positions[row, column] = found[0] + 1
    return positions


def _items(proposed: Proposed) -> np.ndarray:
    if isinstance(proposed, tuple):  # (items, scores) arrays, as the ranker fit gathers them
        return proposed[0]
    return np.fromiter((c["item"] for c in proposed), dtype=np.int64, count=len(proposed))


def union_recall(positions: np.ndarray, ns: Sequence[int]) -> float:
    """Share of rows whose target is within the first ``ns[j]`` of some source ``j``."""
    if positions.shape[0] == 0:
        return 0.0
    return float(np.mean((positions <= np.asarray(ns, dtype=np.float64)).any(axis=1)))


def greedy_choice(positions: np.ndarray, sources: Sequence[str], grid: Sequence[int], budget: int) -> dict[str, Any]:
    """The greedy allocation of the module docstring: ``chosen`` N per source, each step taken, the recall."""
    steps = sorted(set(grid))
    if not steps or steps[0] < 1:
        raise ConfigError("candidate_grid", list(grid), "needs at least one positive list length")
    if steps[0] * len(sources) > budget:
        raise ConfigError(
            "candidate_budget", budget, f"is below {len(sources)} sources x the grid's smallest N ({steps[0]})"
        )
    level = [0] * len(sources)
    current = union_recall(positions, [steps[0]] * len(sources))
    taken: list[dict[str, Any]] = []
    while True:
        spent = sum(steps[i] for i in level)
        best: tuple[float, int, float] | None = None  # (gain per candidate, source, recall)
        for j, at in enumerate(level):
            if at + 1 >= len(steps) or spent - steps[at] + steps[at + 1] > budget:
                continue
            trial = [steps[i] for i in level]
            trial[j] = steps[at + 1]
            recall = union_recall(positions, trial)
            rate = (recall - current) / (steps[at + 1] - steps[at])
            if best is None or rate > best[0]:
                best = (rate, j, recall)
        if best is None or best[0] <= 0:
            break
        _, j, current = best
        level[j] += 1
        taken.append({"source": sources[j], "n": steps[level[j]], "union_recall": round(current, 5)})
    chosen = {source: steps[level[j]] for j, source in enumerate(sources)}
    return {"chosen": chosen, "union_recall": current, "steps": taken}


def choose_candidates(
    queries: Sequence[Query],
    per_query: Sequence[dict[str, Proposed]],
    sources: Sequence[str],
    grid: Sequence[int],
    budget: int,
) -> dict[str, Any]:
    """Choose each source's N on the non-holdout last-item queries (lists gathered at the grid's largest N)."""
    rows = [i for i, q in enumerate(queries) if q.last and not q.holdout]
    positions = target_positions([queries[i].target for i in rows], [per_query[i] for i in rows], sources)
    choice = greedy_choice(positions, list(sources), grid, budget)
    per_source = {s: float(np.mean(positions[:, j] <= choice["chosen"][s])) for j, s in enumerate(sources)}
    return {
        **choice,
        "grid": sorted(set(grid)),
        "budget": budget,
        "recall_at_chosen": per_source,
        "scope": "validation fold, last-item queries outside the early-stopping slice",
        "n_queries": len(rows),
        "rule": "greedy: the largest union-recall gain per added candidate, within the budget",
    }


def truncate(per_query: Sequence[dict[str, Proposed]], chosen: dict[str, int]) -> list[dict[str, Proposed]]:
    """Each query's lists cut to the chosen N (lists are best first, as the graph's sources propose)."""
    return [{s: _cut(c, chosen.get(s)) for s, c in results.items()} for results in per_query]


def _cut(proposed: Proposed, n: int | None) -> Proposed:
    if n is None:
        return proposed
    if isinstance(proposed, tuple):
        return proposed[0][:n], proposed[1][:n]
    return proposed[:n]
