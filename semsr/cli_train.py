"""``semsr train`` (fit a torch session recommender and cache its artefact) and ``semsr sr-recommend``
(load an artefact and recommend for a session of item ids).

``train`` runs the validation fit first (early stopping on the validation fold, never on test), then the
fit on all training sessions for the validated number of epochs, and caches both under
``<settings.home>/artifacts``; ``semsr eval --pipeline M`` afterwards reuses the cached test-fold model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evals.pipelines import RecommenderPipeline, build_pipeline
from semsr.cli_common import (
    DatasetOption,
    LoaderOption,
    ProgressOption,
    clear_errors,
    command_settings,
    console,
    load_protocol,
)
from sessiondata.errors import ConfigError
from sessiondata.loaders import load_dataset
from sr_models.neural.specs import neural_specs

NEURAL = [name for name, *_ in neural_specs()]


@clear_errors
def train_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help=f"One of: {', '.join(NEURAL)}.")],
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    seed: Annotated[int, typer.Option(help="Random seed (part of the artefact key).")] = 0,
    epochs: Annotated[int | None, typer.Option(help="Fixed epochs (skips early stopping on validation).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto (default: settings.device).")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: settings.threads).")] = None,
    progress: ProgressOption = True,
) -> None:
    """Train a torch session recommender on the validation fold, then on all training sessions; cache both."""
    if model not in NEURAL:
        raise ConfigError("model", model, f"not a torch model; choose one of {NEURAL}")
    settings = command_settings(ctx, progress=progress, device=device, threads=threads)
    protocol = load_protocol(dataset, loader, settings)
    overrides: dict[str, object] = {"seed": seed}
    if epochs is not None:
        overrides["epochs"] = epochs
    report: dict[str, object] = {"model": model, "dataset": protocol.dataset.name}
    folds = ("test",) if epochs is not None else ("valid", "test")
    for fold in folds:
        pipeline = build_pipeline(model, protocol, fold, settings=settings, progress=progress, **overrides)  # type: ignore[arg-type]
        assert isinstance(pipeline, RecommenderPipeline)
        fitted = pipeline.recommender
        history = [h for h in getattr(fitted, "history", []) if h.get("epoch", 0) > 0]
        report[fold] = {
            "artifact": str(getattr(fitted, "artifact_path", "")),
            "best_epoch": getattr(fitted, "best_epoch", None),
            "epochs": len(history),
            "last_epoch": history[-1] if history else None,
        }
    console.print_json(json.dumps(report, default=str))


@clear_errors
def sr_recommend_command(
    ctx: typer.Context,
    artifact: Annotated[Path, typer.Option(help="Artefact directory written by `semsr train`.")],
    item: Annotated[list[str], typer.Option("--item", "-i", help="Item id of the session, oldest first; repeat.")],
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Recommendations to return.")] = 10,
) -> None:
    """Recommend for one session with a trained torch artefact; unknown ids are reported and skipped."""
    from sr_models.neural import load_recommender
    from sr_models.neural.inference import recommend_session

    settings = command_settings(ctx)
    catalog = load_dataset(dataset, loader).catalog
    model = load_recommender(artifact, env=settings.model_env())
    result = recommend_session(model, catalog, item, k)
    titles = [catalog.titles[catalog.index_of(i)] for i in result.items]
    payload = {
        "model": model.name,
        "unknown_ids": result.unknown,
        "recommendations": [
            {"item_id": i, "score": round(s, 4), "title": t}
            for i, s, t in zip(result.items, result.scores, titles, strict=True)
        ],
    }
    console.print_json(json.dumps(payload, default=str))
