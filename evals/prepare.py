"""``semsr prepare``: turn a serving profile's spec into everything serving needs, and a manifest saying so.

For each fold (``valid``: models fitted on sub-train, for fitting the fusion; ``test``: models fitted on
the whole training split, what shoppers get) it fits every source's model with its tuned hyper-parameters
(tuning first, on the validation fold, where a model has never been tuned on this dataset) and saves it
(:mod:`sr_models.persist`); it writes the catalogue and the fold's item statistics, builds the Chroma
index when a source retrieves by text, and fits the fusion by replaying the validation cases through the
graph (:mod:`evals.fusion_fit`). Each artefact is locked while it is built and reused when it exists
(keyed by what made it), so preparation resumes after a kill and side-by-side runs build things once.
The manifest (:class:`~graphs.profiles.ProfileManifest`) records every path with its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from graphs.profiles import (
    ArtifactRef,
    FoldArtifacts,
    ProfileManifest,
    ProfileSpec,
    SourceArtifact,
    SourceSpec,
    dataset_key,
    manifest_path,
    profile_spec,
    write_manifest,
)
from semsr.settings import Settings
from sessiondata.files import exclusive_lock, file_sha256
from sessiondata.protocol import FoldName, Protocol
from sr_models.base import train_data
from sr_models.persist import HEADER_FILE, directory_digest, read_header, save_model
from sr_models.popularity import item_counts, latest_sessions
from sr_models.registry import MODELS, build_model, tuned_params

FOLDS: tuple[FoldName, ...] = ("valid", "test")


def models_root(settings: Settings, dataset: str) -> Path:
    return settings.paths.models / dataset_key(dataset)


def _ref(settings: Settings, path: Path) -> ArtifactRef:
    sha = directory_digest(path) if path.is_dir() else file_sha256(path)
    return ArtifactRef(path=str(path.relative_to(settings.home)), sha256=sha)


def _key(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def prepare_catalog(settings: Settings, protocol: Protocol, dataset: str) -> ArtifactRef:
    """The catalogue as served (external ids and titles), keyed by the dataset's fingerprint."""
    catalog = protocol.dataset.catalog
    directory = models_root(settings, dataset) / f"catalog-{protocol.dataset.fingerprint().sha256}"
    with exclusive_lock(directory):
        if not (directory / "catalog.json").exists():
            directory.mkdir(parents=True, exist_ok=True)
            temporary = directory / "catalog.json.tmp"
            temporary.write_text(json.dumps({"ids": list(catalog.ids), "titles": list(catalog.titles)}))
            os.replace(temporary, directory / "catalog.json")
    return _ref(settings, directory)


def fold_directory(settings: Settings, protocol: Protocol, dataset: str, fold: FoldName) -> Path:
    return models_root(settings, dataset) / f"{fold}-{protocol.train_digest(fold)}"


def prepare_stats(settings: Settings, protocol: Protocol, dataset: str, fold: FoldName) -> ArtifactRef:
    """Which items the fold's models saw in training (cold items) and how many sessions hold each."""
    path = fold_directory(settings, protocol, dataset, fold) / "stats.npz"
    with exclusive_lock(path):
        if not path.exists():
            train = protocol.fold(fold).train
            n_items = len(protocol.dataset.catalog)
            popularity = item_counts(train, n_items, unit="session")
            temporary = path.with_name("stats.tmp.npz")
            np.savez(temporary, train_mask=popularity > 0, popularity=popularity)
            os.replace(temporary, path)
    return _ref(settings, path)


RECENT_FRACTION = 0.1  # "recent popularity": the latest tenth of the fold's training sessions, by end time


def prepare_recent(settings: Settings, protocol: Protocol, dataset: str, fold: FoldName) -> ArtifactRef:
    """How many of the fold's latest training sessions (``RECENT_FRACTION``, by end time) hold each item:
    the ranker's recent-popularity feature (trends the all-time count hides)."""
    path = fold_directory(settings, protocol, dataset, fold) / f"recent-{RECENT_FRACTION}.npz"
    with exclusive_lock(path):
        if not path.exists():
            latest = latest_sessions(protocol.fold(fold).train, RECENT_FRACTION)
            popularity = item_counts(latest, len(protocol.dataset.catalog), unit="session")
            temporary = path.with_name("recent.tmp.npz")
            np.savez(temporary, popularity=popularity)
            os.replace(temporary, path)
    return _ref(settings, path)


def source_model(
    settings: Settings, protocol: Protocol, dataset: str, fold: FoldName, source: SourceSpec, *, progress: bool
) -> tuple[Any, Path]:
    """The source's unfitted model (tuned parameters, then the spec's) and the directory it is saved in."""
    assert source.model is not None
    model = build_model(source.model, protocol.dataset.name, env=settings.model_env(progress=progress), **source.params)
    return model, fold_directory(settings, protocol, dataset, fold) / f"{source.model}-{_key(model.params())}"


def prepare_source(
    settings: Settings, protocol: Protocol, dataset: str, fold: FoldName, source: SourceSpec, *, progress: bool
) -> SourceArtifact:
    """The source's model fitted on ``fold``'s training sessions and saved (reused when already there)."""
    if source.model is None:
        return SourceArtifact()
    model, directory = source_model(settings, protocol, dataset, fold, source, progress=progress)
    with exclusive_lock(directory):
        if not (directory / HEADER_FILE).exists():
            started = time.perf_counter()
            model.fit(train_data(protocol, fold))
            save_model(model, directory)
            if progress:
                print(f"prepared {source.model} [{fold}] in {time.perf_counter() - started:.1f} s", flush=True)
    # what the artefact was fitted with (its header), e.g. the title kNN's index, which only the fit knows
    params = read_header(directory)["params"]
    return SourceArtifact(model=source.model, params=params, artifact=_ref(settings, directory))


def tune_missing(settings: Settings, protocol: Protocol, spec: ProfileSpec, *, progress: bool) -> None:
    """Tune, on the validation fold, every non-torch source never tuned on this dataset (torch grids cost
    hours of CPU: those train with their defaults, epochs chosen on validation)."""
    from evals.tuning import tune
    from sr_models.neural.specs import neural_specs

    neural = {name for name, *_ in neural_specs()}
    for source in spec.sources:
        model = source.model
        if model is None or model in neural:
            continue
        if MODELS[model].grid and tuned_params(protocol.dataset.name, model, settings.paths.tuned) is None:
            tune(protocol, model, settings, seed=settings.seed, progress=progress)


def prepare_index(settings: Settings, protocol: Protocol) -> dict[str, Any]:
    """The Chroma catalogue index (built from the embedding cache; resumable), for text retrieval."""
    from embeddings.catalog import embed_space, space_provider
    from embeddings.config import default_provider
    from embeddings.finetuned import resolve_embedder
    from tools.chroma_index import CatalogIndex

    catalog = protocol.dataset.catalog
    embedder = resolve_embedder(  # what shoppers query: a fine-tuned embedder is the test fold's (whole train)
        settings.embedder, train_digest=protocol.train_digest("test"), embeddings_dir=settings.paths.embeddings
    )
    raw = default_provider(embedder, threads=settings.threads)
    vectors, transform = embed_space(
        catalog, raw, settings.embedder.postprocess, cache_dir=settings.paths.embeddings, progress=settings.progress
    )
    provider = space_provider(raw, transform, settings.paths.embeddings)
    tag = protocol.dataset.fingerprint().short
    index = CatalogIndex(
        catalog,
        tag,
        provider=provider,
        chroma=settings.chroma,
        store_path=settings.paths.chroma,
        embeddings_dir=settings.paths.embeddings,
        embedder_config=embedder,
    )
    with exclusive_lock(settings.paths.chroma / index.name):
        if index.count() < len(catalog):
            index.build(vectors=vectors, progress=settings.progress)
    return {"collection": index.name, "dataset_tag": tag, "embedder": provider.id, "n_items": index.count()}


def prepare_profile(
    name: str,
    protocol: Protocol,
    settings: Settings,
    *,
    progress: bool = True,
    fit: bool = True,
    ranker_queries: int | None = None,
    index: bool = True,
) -> ProfileManifest:
    """Prepare profile ``name`` on ``protocol``'s dataset (see the module docstring); returns its manifest.

    ``ranker_queries`` caps the validation queries a ranker fusion learns from (the scale benchmark's
    million-session data); None, the default, uses every one. ``index=False`` leaves the Chroma index out
    (the benchmark times it on its own): requests without a text query never open it, those with one are
    refused with a message naming ``semsr prepare``."""
    spec = profile_spec(name)
    dataset = protocol.dataset.spec or protocol.dataset.name
    path = manifest_path(settings.paths.profiles, dataset, name)
    started = time.perf_counter()
    tune_missing(settings, protocol, spec, progress=progress)
    catalog = prepare_catalog(settings, protocol, dataset)
    folds = {}
    for fold in FOLDS:
        sources = {
            s.name: prepare_source(settings, protocol, dataset, fold, s, progress=progress) for s in spec.sources
        }
        folds[fold] = FoldArtifacts(
            train_digest=protocol.train_digest(fold),
            stats=prepare_stats(settings, protocol, dataset, fold),
            sources=sources,
            recent=prepare_recent(settings, protocol, dataset, fold) if spec.fusion == "ranker" else None,
        )
    manifest = ProfileManifest(
        profile=spec,
        dataset={"spec": dataset, **protocol.dataset.fingerprint().as_dict()},
        protocol={"test": protocol.card("test"), "valid": protocol.valid.summary()},
        catalog=catalog,
        folds=folds,
        index=prepare_index(settings, protocol) if spec.needs_index and index else None,
        prepared_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with exclusive_lock(path):
        previous = _previous(path)
        if previous is not None and _same_artifacts(previous, manifest):
            manifest.fusion, manifest.metrics = previous.fusion, previous.metrics
        write_manifest(path, manifest)  # the valid fold can be served now: the fusion is fitted through it
        if fit and spec.needs_fit and manifest.fusion is None:
            from evals.fusion_fit import fit_profile_fusion
            from evals.ranker_fit import fit_profile_ranker

            if spec.fusion == "ranker":
                fusion, fusion_path = fit_profile_ranker(
                    settings, protocol, spec, dataset, progress=progress, max_queries=ranker_queries
                )
            else:
                fusion, fusion_path = fit_profile_fusion(settings, protocol, spec, dataset, progress=progress)
            manifest.fusion = {
                "strategy": fusion.strategy,
                "artifact": _ref(settings, fusion_path).model_dump(),
                "weights": fusion.weights,
                "fitted_on": fusion.fitted_on,
            }
            manifest.metrics["valid"] = fusion.fitted_on.get("valid")
            write_manifest(path, manifest)
    if progress:
        print(f"prepared profile {name} for {dataset} in {time.perf_counter() - started:.1f} s: {path}", flush=True)
    return manifest


def _previous(path: Path) -> ProfileManifest | None:
    try:
        return ProfileManifest.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def _same_artifacts(old: ProfileManifest, new: ProfileManifest) -> bool:
    """Whether a fitted fusion (and the metrics it earned) still belong to these artefacts."""
    keep = {"profile", "catalog", "folds", "index"}
    return old.model_dump(mode="json", include=keep) == new.model_dump(mode="json", include=keep)


def record_metrics(
    settings: Settings, dataset: str, profile: str, fold: str, metrics: dict[str, Any], run: Path
) -> None:
    """Write the metrics a profile earned on ``fold`` (the main job's test run) into its manifest."""
    path = manifest_path(settings.paths.profiles, dataset, profile)
    with exclusive_lock(path):
        manifest = _previous(path)
        if manifest is None:
            return
        headline = {k: v for k, v in metrics["metrics"].items() if k.split("@")[0] in ("hr", "mrr", "ndcg")}
        manifest.metrics[fold] = {"n_cases": metrics.get("n_cases"), **headline, "run": str(run)}
        write_manifest(path, manifest)
