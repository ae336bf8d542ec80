"""``semsr train``: fit a torch session recommender and cache its artefact (recommendations for a session
come from the graph: ``semsr recommend --profile NAME``).

``train`` runs the validation fit first (early stopping on the validation fold, never on test), then the
fit on all training sessions for the validated number of epochs, and caches both under
``<settings.home>/artifacts``; ``semsr eval --pipeline M`` afterwards reuses the cached test-fold model.
``--fold valid`` (or ``test``) runs one of the two.

Started by ``torchrun`` (``torchrun --nproc_per_node=N -m semsr train ...``), every process runs this
command and the fits are data-parallel (:mod:`sr_models.neural.distributed`): gloo on the CPU, NCCL on
CUDA, one artefact written by rank 0, which alone prints the report.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

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
    max_epochs: Annotated[
        int | None, typer.Option(min=1, help="Cap on the validation fit's epochs (part of the artefact key).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto (default: settings.device).")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: settings.threads).")] = None,
    fold: Annotated[
        Literal["both", "valid", "test"], typer.Option(help="Train the validation fit, the test fit, or both.")
    ] = "both",
    progress: ProgressOption = True,
) -> None:
    """Train a torch session recommender on the validation fold, then on all training sessions; cache both."""
    if model not in NEURAL:
        raise ConfigError("model", model, f"not a torch model; choose one of {NEURAL}")
    from sr_models.neural import distributed

    settings = command_settings(ctx, progress=progress, device=device, threads=threads)
    world = distributed.start(settings.device)  # rank 0 of 1 unless torchrun started this process
    if not world.main:
        settings = settings.model_copy(update={"progress": False})
        progress = False
    protocol = load_protocol(dataset, loader, settings)
    overrides: dict[str, object] = {"seed": seed}
    if epochs is not None:
        overrides["epochs"] = epochs
    if max_epochs is not None:
        overrides["max_epochs"] = max_epochs
    report: dict[str, object] = {"model": model, "dataset": protocol.dataset.name}
    folds = ("test",) if epochs is not None else ("valid", "test")
    if fold != "both":
        folds = (fold,)
    for name in folds:
        pipeline = build_pipeline(model, protocol, name, settings=settings, progress=progress, **overrides)  # type: ignore[arg-type]
        assert isinstance(pipeline, RecommenderPipeline)
        fitted = pipeline.recommender
        history = [h for h in getattr(fitted, "history", []) if h.get("epoch", 0) > 0]
        report[name] = {
            "artifact": str(getattr(fitted, "artifact_path", "")),
            "best_epoch": getattr(fitted, "best_epoch", None),
            "epochs": len(history),
            "last_epoch": history[-1] if history else None,
        }
    if world.active:
        report["world"] = world.size
    distributed.finish()
    if world.main:
        console.print_json(json.dumps(report, default=str))
