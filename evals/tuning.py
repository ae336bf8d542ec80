"""Hyper-parameter search on the validation fold only; the winner is stored for every later run
(under ``SEMSR_HOME/tuned``, where :func:`sr_models.registry.build_model` finds it before the shipped ones).

Random search over the model's grid (seeded, with the budget recorded), each trial fitted on the
sub-train sessions and scored on the validation cases through the same ranking code as the harness. The
test split is never touched here.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals.metrics import per_case, rank_of
from evals.pipelines import build_pipeline
from semsr.settings import Settings
from sessiondata.errors import ConfigError
from sessiondata.protocol import Protocol
from sr_models.registry import model_spec, tuned_path


def parse_objective(objective: str) -> tuple[str, int]:
    metric, _, k = objective.partition("@")
    if metric not in ("hr", "mrr", "ndcg") or not k.isdigit():
        raise ConfigError("objective", objective, "write METRIC@K with METRIC in hr, mrr, ndcg")
    return metric, int(k)


def validation_metrics(
    protocol: Protocol, model: str, params: dict[str, Any], k: int, settings: Settings, *, extra_k: tuple[int, ...] = ()
) -> dict[str, float]:
    """HR/MRR/NDCG@k (and at each of ``extra_k``) of ``model`` with ``params`` on the validation fold."""
    fold = protocol.valid
    pipeline = build_pipeline(model, protocol, "valid", settings=settings, **params)
    depth = max((k, *extra_k))
    ranks: list[int | None] = []
    for start in range(0, len(fold.cases), 512):
        batch = fold.cases[start : start + 512]
        results = pipeline.rank(batch, depth, exclude_seen=protocol.config.exclude_seen)
        for case, result in zip(batch, results, strict=True):
            ranks.append(rank_of(case.target, result.items))
    return {
        f"{name}@{cut}": float(values.mean())
        for cut in dict.fromkeys((k, *extra_k))
        for name, values in per_case(ranks, cut).items()
    }


def sample_grid(grid: dict[str, list[Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """``budget`` distinct configurations drawn from the grid (all of it when smaller)."""
    keys = sorted(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[key] for key in keys))]
    if len(combos) <= budget:
        return combos
    return random.Random(seed).sample(combos, budget)


def tune(
    protocol: Protocol,
    model: str,
    settings: Settings,
    *,
    budget: int = 30,
    objective: str = "ndcg@20",
    seed: int = 0,
    progress: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Search ``model``'s grid on the validation fold; write and return the tuning record."""
    spec = model_spec(model)
    if not spec.grid:
        raise ConfigError("model", model, "has no hyper-parameters to tune")
    metric, k = parse_objective(objective)
    started = time.perf_counter()
    trials = []
    best: dict[str, Any] | None = None
    for params in tqdm(sample_grid(spec.grid, budget, seed), desc=f"tune {model}", disable=not progress):
        scores = validation_metrics(protocol, model, params, k, settings)
        trials.append({"params": params, "valid": scores})
        if best is None or scores[f"{metric}@{k}"] > best["valid"][f"{metric}@{k}"]:
            best = trials[-1]
    assert best is not None
    record = {
        "model": model,
        "dataset": protocol.dataset.fingerprint().as_dict(),
        "selected_on": "validation fold (cut from train by end time; test never used)",
        "objective": objective,
        "params": best["params"],
        "valid": best["valid"],
        "search": {"kind": "random", "budget": budget, "seed": seed, "grid": spec.grid, "n_trials": len(trials)},
        "seconds": round(time.perf_counter() - started, 1),
        "tuned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trials": trials,
    }
    if write:
        path = tuned_path(settings.paths.tuned, protocol.dataset.name, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record
