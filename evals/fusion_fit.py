"""Fit the graph's fusion on the validation fold: run the graph there, collect every source's candidates,
and choose weights (or a learned ranker) that maximise validation NDCG@20. The test split is never used.

The graph only applies a fitted :class:`~graphs.fusion.FusionModel`; everything that fits one lives here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evals.graph_pipelines import GraphPipeline
from graphs.fusion import FEATURES_PER_SOURCE, FusionModel, feature_matrix
from graphs.profiles import ProfileSpec
from graphs.services import ProfileServices
from graphs.state import Candidate
from semsr.settings import Settings
from sessiondata.files import exclusive_lock
from sessiondata.protocol import Protocol
from sr_models.ranking import grouped_target_ranks, mean_metrics


@dataclass
class ValidationSet:
    """Per-case feature matrices stacked for fast objective evaluation."""

    sources: list[str]
    matrix: np.ndarray  # (total candidates, n_sources * 3)
    offsets: np.ndarray  # case c owns rows offsets[c]:offsets[c+1]
    target_row: np.ndarray  # global row of the target, -1 when no source proposed it

    @classmethod
    def build(
        cls, per_case: Sequence[Mapping[str, Sequence[Candidate]]], targets: Sequence[int], sources: Sequence[str]
    ) -> ValidationSet:
        matrices, offsets, target_rows = [], [0], []
        for results, target in zip(per_case, targets, strict=True):
            items, matrix = feature_matrix(results, sources)
            hit = np.flatnonzero(items == target)
            target_rows.append(offsets[-1] + int(hit[0]) if hit.size else -1)
            matrices.append(matrix)
            offsets.append(offsets[-1] + items.size)
        width = len(sources) * FEATURES_PER_SOURCE
        stacked = np.concatenate(matrices) if matrices else np.zeros((0, width))
        return cls(list(sources), stacked, np.asarray(offsets), np.asarray(target_rows))

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        """Conservative 1-based rank of each case's target under ``scores`` (0 = not proposed)."""
        return grouped_target_ranks(scores, self.offsets, self.target_row)

    def objective(self, scores: np.ndarray, k: int = 20) -> dict[str, float]:
        return mean_metrics(self.ranks(scores), k)


GRID_SOURCES = 4  # up to this many sources the weights are searched on the whole simplex grid


def fit_weighted(data: ValidationSet, *, metric: str = "ndcg@20", step: float = 0.1) -> FusionModel:
    """Grid over the weight simplex (then a finer local search) maximising ``metric`` on validation.

    A source that proposed nothing on validation (its LLM never answered, say) has a constant column: it
    cannot move any ranking there, so it gets weight 0 and stays out of the search (on the simplex it would
    otherwise soak up weight for free and speak for items it never ranked).
    """
    all_columns = data.matrix[:, 0::FEATURES_PER_SOURCE]
    active = [c for c in range(all_columns.shape[1]) if all_columns.shape[0] and np.ptp(all_columns[:, c]) > 0]
    if not active:
        active = list(range(all_columns.shape[1]))
    z_columns = all_columns[:, active]
    n = len(active)
    k = int(metric.split("@")[1])
    levels = np.round(np.arange(0.0, 1.0 + 1e-9, step), 6)
    best_weights, best_value, trials = np.ones(n) / n, -1.0, 0
    if n > GRID_SOURCES:  # the simplex grid grows as 11**n: start from equal weights, refine longer instead
        best_value, trials = data.objective(z_columns @ best_weights, k)[metric], 1
    for combo in itertools.product(levels, repeat=n) if n <= GRID_SOURCES else ():
        if abs(sum(combo) - 1.0) > 1e-6:
            continue
        weights = np.asarray(combo)
        value = data.objective(z_columns @ weights, k)[metric]
        trials += 1
        if value > best_value:
            best_weights, best_value = weights, value
    # local refinement around the best grid point
    for _ in range(2 if n <= GRID_SOURCES else 4):
        for i, j in itertools.permutations(range(n), 2):
            for delta in (step / 4, step / 2):
                weights = best_weights.copy()
                weights[i] += delta
                weights[j] -= delta
                if weights[j] < 0:
                    continue
                value = data.objective(z_columns @ weights, k)[metric]
                trials += 1
                if value > best_value:
                    best_weights, best_value = weights, value
    scores = z_columns @ best_weights
    weights = np.zeros(all_columns.shape[1])
    weights[active] = best_weights
    return FusionModel(
        strategy="weighted",
        sources=data.sources,
        weights={s: round(float(w), 4) for s, w in zip(data.sources, weights, strict=True)},
        fitted_on={
            "metric": metric,
            "valid": data.objective(scores, k),
            "trials": trials,
            "cases": len(data.offsets) - 1,
        },
    )


def fit_learned(data: ValidationSet, *, epochs: int = 300, l2: float = 1e-3, lr: float = 0.5) -> FusionModel:
    """Logistic ranker (target vs other candidates of the same case) by full-batch gradient descent."""
    x = data.matrix
    y = np.zeros(x.shape[0])
    y[data.target_row[data.target_row >= 0]] = 1.0
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    xs = (x - mean) / std
    positive_weight = (y.size - y.sum()) / max(y.sum(), 1.0)
    sample_weight = np.where(y > 0, positive_weight, 1.0)
    sample_weight /= sample_weight.mean()
    coef = np.zeros(x.shape[1])
    for _ in range(epochs):
        logits = xs @ coef
        prob = 1.0 / (1.0 + np.exp(-logits))
        gradient = xs.T @ ((prob - y) * sample_weight) / y.size + l2 * coef
        coef -= lr * gradient
    raw = coef / std  # fold the standardisation into the coefficients (the mean shift is a constant)
    scores = x @ raw
    return FusionModel(
        strategy="learned",
        sources=data.sources,
        coefficients=[float(c) for c in raw],
        fitted_on={"valid": data.objective(scores, 20), "epochs": epochs, "l2": l2, "cases": len(data.offsets) - 1},
    )


def collect_validation_candidates(
    settings: Settings, protocol: Protocol, spec: ProfileSpec, dataset: str, *, batch_size: int = 128, progress: bool
) -> tuple[list[dict[str, Any]], list[int]]:
    """Per validation case, each source's candidates as the graph produced them (models fitted on sub-train)."""
    runner = GraphPipeline(spec.name, settings, dataset=dataset, fold="valid", return_sources=True)
    limit = spec.fusion_fit_limit
    cases = protocol.valid.cases[:limit] if limit else protocol.valid.cases
    per_case: list[dict[str, Any]] = []
    with tqdm(total=len(cases), desc=f"fusion: {spec.name} on validation", unit="case", disable=not progress) as bar:
        for start in range(0, len(cases), batch_size):
            batch = cases[start : start + batch_size]
            for output in runner.invoke_many(batch, 20):
                per_case.append(output.get("source_candidates", {}))
            bar.update(len(batch))
    return per_case, [case.target for case in cases]


def fit_profile_fusion(
    settings: Settings, protocol: Protocol, spec: ProfileSpec, dataset: str, *, progress: bool = True
) -> tuple[FusionModel, Path]:
    """Fit ``spec``'s fusion on the validation fold and save it beside the profile's models.

    The file is keyed by the profile and the validation-fold artefacts it was fitted on, so a refit happens
    only when one of them changed; a kill mid-way leaves no file and the next run fits again.
    """
    from evals.prepare import models_root

    manifest = ProfileServices(settings).manifest(spec.name, dataset)
    key = hashlib.sha256(
        json.dumps(
            [spec.model_dump(mode="json"), manifest.folds["valid"].model_dump(mode="json")], sort_keys=True
        ).encode()
    ).hexdigest()[:12]
    path = models_root(settings, dataset) / "fusion" / f"{spec.name}-{spec.fusion}-{key}.json"
    with exclusive_lock(path):
        if path.exists():
            return FusionModel.load(path), path
        started = time.perf_counter()
        per_case, targets = collect_validation_candidates(settings, protocol, spec, dataset, progress=progress)
        data = ValidationSet.build(per_case, targets, spec.source_names)
        model = fit_learned(data) if spec.fusion == "learned" else fit_weighted(data)
        model.fitted_on.update(
            {
                "fold": "valid",
                "valid_digest": protocol.train_digest("valid"),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        model.save(path)
    return model, path
