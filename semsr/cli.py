"""The ``semsr`` command: evaluate, tune and inspect pipelines on session datasets.

Every command reads one :class:`~semsr.settings.Settings` (env ``SEMSR_*``, then flags) and reports bad
input as one clear line naming the field and the value, with exit status 2. Shared pieces are in
:mod:`semsr.cli_common`; larger command groups live in their own ``semsr/cli_*.py`` modules.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from evals.harness import evaluate
from evals.pipelines import build_pipeline, pipeline_names
from evals.tuning import tune
from semsr.cli_common import (
    DatasetOption,
    LoaderOption,
    ProgressOption,
    clear_errors,
    console,
    limit_threads,
    load_protocol,
    parse_params,
)
from semsr.settings import load_settings
from semsr.tables import results_markdown, results_table
from sessiondata.errors import ConfigError
from sr_models.registry import MODELS, tuned_params

app = typer.Typer(add_completion=False, no_args_is_help=True, help="SemSR: semantics-aware session recommendation.")

DEFAULT_PIPELINES = ("popularity", "sknn", "vsknn", "sr")


@app.command()
@clear_errors
def info(dataset: DatasetOption = "amazon-beauty", loader: LoaderOption = None) -> None:
    """Print a dataset's fingerprint and the cases its protocol yields."""
    settings = load_settings()
    protocol = load_protocol(dataset, loader, settings)
    console.print_json(json.dumps({"test": protocol.card("test"), "valid": protocol.fold("valid").summary()}))


@app.command()
def pipelines() -> None:
    """List the pipelines ``semsr eval`` can run."""
    for name in pipeline_names():
        tuned = "tuned on amazon-beauty" if tuned_params("amazon-beauty", name) else ""
        console.print(f"[bold]{name:12}[/] {MODELS[name].description}  [dim]{tuned}[/]")


@app.command(name="eval")
@clear_errors
def eval_command(
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="Pipeline name (see `semsr pipelines`).")],
    out: Annotated[Path, typer.Option(help="Output directory; a rerun into it resumes.")],
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N cases (smoke runs).")] = None,
    fold: Annotated[str, typer.Option(help="'test' (report) or 'valid' (tuning).")] = "test",
    param: Annotated[list[str] | None, typer.Option(help="Override a hyper-parameter: KEY=VALUE.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Cases scored per batch.")] = None,
    progress: ProgressOption = True,
) -> None:
    """Evaluate one pipeline; writes cases.jsonl, metrics.json and protocol.json to OUT."""
    settings = load_settings(batch_size=batch_size, progress=progress)
    if fold not in ("test", "valid"):
        raise ConfigError("fold", fold, "must be 'test' or 'valid'")
    if pipeline not in pipeline_names():
        raise ConfigError("pipeline", pipeline, f"unknown; choose one of {pipeline_names()}")
    limit_threads(settings)
    protocol = load_protocol(dataset, loader, settings)
    started = time.perf_counter()
    runner = build_pipeline(pipeline, protocol, fold, **parse_params(param))  # type: ignore[arg-type]
    fit_seconds = time.perf_counter() - started
    result = evaluate(
        runner,
        protocol,
        out,
        fold=fold,  # type: ignore[arg-type]
        limit=limit,
        batch_size=settings.batch_size,
        progress=settings.progress,
        extra_card={"fit_seconds": round(fit_seconds, 2)},
    )
    title = f"{protocol.dataset.name}: {pipeline} on the {fold} fold ({result.metrics['n_cases']} cases)"
    console.print(
        results_table(
            {pipeline: result.metrics["metrics"]},
            protocol.dataset.name,
            title=title,
            show_published=fold == "test" and limit is None,
        )
    )
    console.print(f"wrote {out}/cases.jsonl, metrics.json, protocol.json ({result.n_new_cases} new cases)")


@app.command(name="tune")
@clear_errors
def tune_command(
    pipeline: Annotated[str, typer.Option("--pipeline", "-p")],
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    budget: Annotated[int, typer.Option(help="Configurations tried (random search over the grid).")] = 30,
    objective: Annotated[str, typer.Option(help="Validation metric to maximise, e.g. ndcg@20.")] = "ndcg@20",
    progress: ProgressOption = True,
) -> None:
    """Tune a pipeline on the validation fold (never the test split) and store the winner."""
    settings = load_settings(progress=progress)
    limit_threads(settings)
    protocol = load_protocol(dataset, loader, settings)
    record = tune(protocol, pipeline, budget=budget, objective=objective, seed=settings.seed, progress=progress)
    console.print_json(json.dumps({k: record[k] for k in ("model", "objective", "params", "valid", "seconds")}))


@app.command()
@clear_errors
def run(
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    pipeline: Annotated[list[str] | None, typer.Option("--pipeline", "-p", help="Repeat to choose.")] = None,
    out: Annotated[Path | None, typer.Option(help="Runs directory (default: settings.runs_dir/DATASET).")] = None,
    progress: ProgressOption = True,
) -> None:
    """The main job: evaluate the default pipelines on the test split and print the comparison table."""
    settings = load_settings(progress=progress)
    limit_threads(settings)
    protocol = load_protocol(dataset, loader, settings)
    root = out or settings.runs_dir / protocol.dataset.name
    chosen = pipeline or list(DEFAULT_PIPELINES)
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        started = time.perf_counter()
        if MODELS[name].grid and tuned_params(protocol.dataset.name, name) is None:
            console.print(f"{name}: no tuned parameters for {protocol.dataset.name}; tuning on validation first")
            tune(protocol, name, seed=settings.seed, progress=progress)
        runner = build_pipeline(name, protocol, "test")
        result = evaluate(runner, protocol, root / name, batch_size=settings.batch_size, progress=progress)
        results[name] = result.metrics["metrics"]
        timings[name] = round(time.perf_counter() - started, 1)
    console.print(results_table(results, protocol.dataset.name))
    summary = {"dataset": protocol.dataset.name, "results": results, "seconds": timings}
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (root / "summary.md").write_text(results_markdown(results, protocol.dataset.name))
    console.print(f"seconds per pipeline: {timings}")
    console.print(f"results: {root}/summary.md")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
