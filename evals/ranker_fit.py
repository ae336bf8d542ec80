"""Fit the ``ranker`` fusion (LightGBM LambdaMART) on the validation fold, where its base models never saw
the labels; the graph only applies it (:mod:`graphs.ranker`).

* **Queries.** Every prefix of every validation session is one query (prompt: the items before, target:
  the next item; a target already in its prompt is skipped, the graph never recommends it). The protocol
  scores only last-item queries, so those weigh ``LAST_ITEM_WEIGHT`` times more.
* **Candidates.** The validation fold's sources (fitted on sub-train) propose through
  :func:`graphs.candidates.model_candidates`, the path the graph's source nodes take, batched over
  queries; features come from :mod:`graphs.ranker_features`, the module serving uses.
* **Rows.** Per training query the target and at most ``NEGATIVES`` sampled other candidates (a query
  whose target no source proposed teaches nothing and is dropped).
* **Early stopping** on the latest ``HOLDOUT_FRACTION`` of the validation sessions by end time, scored
  as the protocol scores (last-item queries, every candidate, NDCG@20); its metrics are the ranker's
  validation metrics, beside weighted, reciprocal-rank and logistic fusions of the same candidates
  fitted on the earlier sessions, and each source's candidate recall by N (:mod:`evals.ranker_eval`;
  the leave-one-source-out ablation is :mod:`evals.ranker_ablation`, a command of its own).

For the test fold the base models are refit on the whole training split (``semsr prepare``) and this
ranker is applied unchanged. Nothing here reads the test split.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evals.candidate_choice import choose_candidates, truncate
from evals.ranker_eval import RECALL_AT, baselines, candidate_recall, holdout_metrics, recall_by_n
from graphs.candidates import as_candidates, known_window, model_top
from graphs.profiles import ProfileSpec
from graphs.ranker import RankerFusion
from graphs.ranker_features import feature_names, ranker_features, session_context
from graphs.services import ProfileServices, ServingProfile
from graphs.state import Candidate
from semsr.settings import Settings
from sessiondata.files import exclusive_lock
from sessiondata.protocol import Protocol

LAST_ITEM_WEIGHT = 3.0
NEGATIVES = 50
HOLDOUT_FRACTION = 0.2
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [20],
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 30,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
ROUNDS, PATIENCE = 600, 40


RANKED_KINDS = ("session-model", "title-knn")  # the sources the ranker reads (a query is blended by its rule)


def ranked_sources(spec: ProfileSpec) -> list[str]:
    return [source.name for source in spec.sources if source.kind in RANKED_KINDS]


def proposed_per_source(spec: ProfileSpec) -> int:
    """The most candidates any ranked source proposes (the recall-by-N table stops there)."""
    return max(source.candidates for source in spec.sources if source.kind in RANKED_KINDS)


@dataclass(frozen=True)
class Query:
    prompt: tuple[int, ...]
    target: int
    last: bool  # the protocol's case of its session
    holdout: bool  # the session is in the later-in-time early-stopping slice


def prefix_queries(protocol: Protocol) -> list[Query]:
    """Every prefix of every validation session (see the module docstring), holdout flagged by end time."""
    cases = protocol.valid.cases
    end = {s.session_id: s.end_time for s in protocol.dataset.sessions}
    order = sorted(range(len(cases)), key=lambda i: (end[cases[i].session_id], i))
    held = set(order[len(order) - max(1, round(len(order) * HOLDOUT_FRACTION)) :])
    queries = []
    for index, case in enumerate(cases):
        items = (*case.prompt, case.target)
        for position in range(1, len(items)):
            prompt, target = items[:position], items[position]
            if target not in prompt:
                queries.append(Query(prompt, target, position == len(items) - 1, index in held))
    return queries


Lists = tuple[np.ndarray, np.ndarray]  # one source's proposal as arrays: items and scores, best first


def gather_lists(
    serving: ServingProfile, queries: list[Query], *, batch_size: int = 256, progress: bool
) -> list[dict[str, Lists]]:
    """Each query's candidates per source, as the graph's source nodes would propose them, kept as arrays
    (a few hundred thousand lists of up to a few hundred items: dicts per candidate would cost ~10 GB)."""
    spec = serving.spec
    per_query: list[dict[str, Lists]] = [{} for _ in queries]
    sources = [s for s in spec.sources if s.kind in RANKED_KINDS]
    total = len(sources) * len(queries)
    with tqdm(total=total, desc=f"ranker: candidates of {spec.name}", unit="query", disable=not progress) as bar:
        for source in sources:
            model = serving.models[source.name]
            for start in range(0, len(queries), batch_size):
                chunk = queries[start : start + batch_size]
                windows = [
                    known_window(q.prompt[-spec.max_session_items :], source.kind, serving.is_cold) for q in chunk
                ]
                rows = [i for i, w in enumerate(windows) if w]
                found = model_top(
                    model, [windows[i] for i in rows], [sorted(set(chunk[i].prompt)) for i in rows], source.candidates
                )
                for i, (items, scores) in zip(rows, found, strict=True):
                    per_query[start + i][source.name] = (items.astype(np.int32), scores)
                bar.update(len(chunk))
    return per_query


def as_candidate_lists(per_query: list[dict[str, Lists]]) -> list[dict[str, list[Candidate]]]:
    return [{s: as_candidates(*found) for s, found in results.items()} for results in per_query]


def gather_candidates(
    serving: ServingProfile, queries: list[Query], *, batch_size: int = 256, progress: bool
) -> list[dict[str, list[Candidate]]]:
    """Each query's candidates per source, as the graph's source nodes would propose them."""
    return as_candidate_lists(gather_lists(serving, queries, batch_size=batch_size, progress=progress))


@dataclass
class Rows:
    """Stacked (query, candidate) rows for LightGBM."""

    matrix: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    target_rows: list[int] = field(default_factory=list)  # per query, the target's row (-1: not proposed)
    n_rows: int = 0

    def add(self, matrix: np.ndarray, label: np.ndarray, weight: float) -> None:
        hit = np.flatnonzero(label)
        self.target_rows.append(self.n_rows + int(hit[0]) if hit.size else -1)
        self.n_rows += label.size
        self.matrix.append(matrix.astype(np.float32))
        self.labels.append(label)
        self.groups.append(label.size)
        self.weights.append(np.full(label.size, weight))

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = self.matrix[0].shape[1] if self.matrix else 0
        matrix = np.concatenate(self.matrix) if self.matrix else np.zeros((0, width), np.float32)
        return matrix, np.concatenate(self.labels), np.concatenate(self.weights)


def build_rows(
    serving: ServingProfile,
    queries: list[Query],
    per_query: list[dict[str, list[Candidate]]],
    *,
    seed: int,
    progress: bool = False,
    sources: list[str] | None = None,
) -> tuple[Rows, Rows]:
    """Training rows (sampled negatives, holdout sessions left out) and early-stopping rows (holdout
    last-item queries, every candidate, kept even when the target was not proposed), over ``sources``
    (default: every ranked source of the profile; the ablation passes fewer)."""
    rng = np.random.default_rng(seed)
    sources = sources if sources is not None else ranked_sources(serving.spec)
    train, stop = Rows(), Rows()
    recent = serving.recent_popularity
    assert recent is not None, "prepare writes the recent popularity of a ranker profile"
    pairs = zip(queries, per_query, strict=True)
    for query, results in tqdm(pairs, total=len(queries), desc="ranker: features", unit="query", disable=not progress):
        if query.holdout and not query.last:
            continue
        window = list(query.prompt[-serving.spec.max_session_items :])
        context = session_context(window, serving.popularity, recent, serving.models)
        items, matrix = ranker_features(results, sources, context)
        label = (items == query.target).astype(np.float64)
        if query.holdout:
            stop.add(matrix, label, 1.0)
            continue
        if not label.any():
            continue
        negatives = np.flatnonzero(label == 0)
        if negatives.size > NEGATIVES:
            negatives = rng.choice(negatives, NEGATIVES, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(label), negatives]))
        train.add(matrix[keep], label[keep], LAST_ITEM_WEIGHT if query.last else 1.0)
    return train, stop


def train_ranker(train: Rows, stop: Rows, sources: list[str], *, threads: int, seed: int) -> RankerFusion:
    """LambdaMART with early stopping on the holdout rows (groups without a target carry no gradient)."""
    import lightgbm

    x, y, w = train.stacked()
    names = feature_names(sources)
    dtrain = lightgbm.Dataset(x, y, weight=w, group=train.groups, feature_name=names, free_raw_data=True)
    sx, sy, _ = stop.stacked()
    dstop = lightgbm.Dataset(sx, sy, group=stop.groups, reference=dtrain)
    params = {**PARAMS, "num_threads": threads, "seed": seed}
    booster = lightgbm.train(
        params,
        dtrain,
        num_boost_round=ROUNDS,
        valid_sets=[dstop],
        valid_names=["holdout"],
        callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
    )
    best = int(booster.best_iteration or booster.current_iteration())
    model = RankerFusion(sources=sources, features=names, best_iteration=best)
    model.fitted_on["params"] = {**params, "rounds": ROUNDS, "patience": PATIENCE}
    return model.attach(booster)


def subsample_queries(queries: list[Query], limit: int | None, seed: int) -> list[Query]:
    """At most ``limit`` of ``queries`` (a seeded sample in their order; all when ``limit`` is None)."""
    if limit is None or len(queries) <= limit:
        return queries
    keep = np.sort(np.random.default_rng(seed).choice(len(queries), limit, replace=False))
    return [queries[i] for i in keep]


def fit_profile_ranker(
    settings: Settings,
    protocol: Protocol,
    spec: ProfileSpec,
    dataset: str,
    *,
    progress: bool = True,
    max_queries: int | None = None,
) -> tuple[RankerFusion, Path]:
    """Fit ``spec``'s ranker on the validation fold and save it (a directory) beside the profile's models;
    keyed like :func:`evals.fusion_fit.fit_profile_fusion`, so it is refit only when an input changed.

    ``max_queries`` caps the prefix queries it learns from (a seeded sample): the scale benchmark uses it
    to prepare a servable profile on a million sessions; the main job fits on all of them."""
    from evals.prepare import models_root

    services = ProfileServices(settings)
    manifest = services.manifest(spec.name, dataset)
    key = hashlib.sha256(
        json.dumps(
            [
                spec.model_dump(mode="json"),
                manifest.folds["valid"].model_dump(mode="json"),
                PARAMS,
                NEGATIVES,
                RECALL_AT,
                *([max_queries] if max_queries is not None else []),  # uncapped keys stay as they were
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    path = models_root(settings, dataset) / "fusion" / f"{spec.name}-ranker-{key}"
    with exclusive_lock(path):
        if (path / "ranker.json").exists():
            return RankerFusion.load(path), path
        started = time.perf_counter()
        serving = services.profile(spec.name, "valid", dataset=dataset)
        queries = subsample_queries(prefix_queries(protocol), max_queries, settings.seed)
        lists = gather_lists(serving, queries, progress=progress)
        sources = ranked_sources(spec)
        by_n = recall_by_n(queries, lists, sources, proposed_per_source(spec))
        choice = None
        if spec.candidate_grid:  # each source's N chosen on validation, then the lists cut to it
            assert spec.candidate_budget is not None
            choice = choose_candidates(queries, lists, sources, spec.candidate_grid, spec.candidate_budget)
            lists = truncate(lists, choice["chosen"])
        per_query = as_candidate_lists(lists)
        del lists
        train, stop = build_rows(serving, queries, per_query, seed=settings.seed, progress=progress)
        model = train_ranker(train, stop, sources, threads=settings.threads, seed=settings.seed)
        sx, _, _ = stop.stacked()
        gains = model._booster.feature_importance(importance_type="gain", iteration=model.best_iteration)
        model.fitted_on.update(
            {
                "fold": "valid",
                "valid_digest": protocol.train_digest("valid"),
                "valid": holdout_metrics(model.score_matrix(sx, threads=settings.threads), stop),
                "valid_scope": "latest sessions by end time (early-stopping slice), last-item queries",
                "same_candidates": baselines(queries, per_query, sources),
                "candidate_recall": candidate_recall(queries, per_query, sources),
                "recall_by_n": by_n,
                **({"candidate_choice": choice} if choice else {}),
                "queries": {"train": len(train.groups), "holdout": len(stop.groups), "all_prefixes": len(queries)},
                "rows": train.n_rows,
                "last_item_weight": LAST_ITEM_WEIGHT,
                "negatives": NEGATIVES,
                "importance_gain": {n: round(float(g), 1) for n, g in zip(model.features, gains, strict=True)},
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        temporary = path.with_name(path.name + ".tmp")
        model.save(temporary)
        temporary.rename(path)
    return RankerFusion.load(path), path
