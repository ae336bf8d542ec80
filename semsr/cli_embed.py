"""``semsr embed finetune``: prepare the fine-tuned MiniLM (``minilm-adapted``) of a dataset's two folds.

The fine-tune settings are ``settings.embedder.finetune`` (env ``SEMSR_EMBEDDER__FINETUNE__MAX_PAIRS`` etc.),
with the flags below on top; the same settings must be in force where the adapted embedder is used
(``SEMSR_EMBEDDER__KIND=minilm-adapted``), since they are part of the model's key.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from evals.finetune_run import run_finetune
from semsr.cli_common import (
    DatasetOption,
    LoaderOption,
    ProgressOption,
    clear_errors,
    command_settings,
    console,
    load_protocol,
)

embed_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Title embedders: fine-tuning.")


@embed_app.command(name="finetune")
@clear_errors
def finetune_command(
    ctx: typer.Context,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    max_epochs: Annotated[int | None, typer.Option(help="Epochs tried on validation (best kept).")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="Training pairs drawn per epoch (0 = all).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per step (in-batch negatives).")] = None,
    window: Annotated[int | None, typer.Option(help="Pairs of session items at most this many steps apart.")] = None,
    train_layers: Annotated[int | None, typer.Option(help="Top transformer layers trained (the rest frozen).")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW peak learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of pair draws and dropout.")] = None,
    device: Annotated[Literal["auto", "cpu", "cuda"] | None, typer.Option(help="Where to train.")] = None,
    folds: Annotated[
        Literal["both", "valid"], typer.Option(help="'both': validation then test fold; 'valid': only validation.")
    ] = "both",
    progress: ProgressOption = True,
) -> None:
    """Fine-tune MiniLM on title pairs of each fold's training sessions (epochs chosen on validation)."""
    settings = command_settings(ctx, progress=progress, device=device)
    given = {"max_epochs": max_epochs, "max_pairs": max_pairs, "batch_size": batch_size, "window": window}
    given |= {"lr": lr, "seed": seed, "train_layers": train_layers}
    updates = {key: value for key, value in given.items() if value is not None}
    if updates:
        finetune = settings.embedder.finetune.model_validate({**settings.embedder.finetune.model_dump(), **updates})
        settings = settings.model_copy(update={"embedder": settings.embedder.model_copy(update={"finetune": finetune})})
    protocol = load_protocol(dataset, loader, settings)
    report = run_finetune(protocol, settings, folds=folds, progress=settings.progress)
    console.print_json(json.dumps(report, default=str))
    console.print("use it with SEMSR_EMBEDDER__KIND=minilm-adapted (and the same SEMSR_EMBEDDER__FINETUNE__* settings)")
