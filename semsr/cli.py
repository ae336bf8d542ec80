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
from typer._click import exceptions as click_errors  # typer vendors click: its own error classes

from evals.degraded import degraded_line
from evals.executors import PipelineSpec, replay_executor
from evals.experiment import ExperimentConfig, load_experiment, parse_params, run_experiment
from evals.graph_pipelines import graph_description
from evals.harness import evaluate
from evals.pipelines import ALIASES, build_pipeline, pipeline_names
from evals.tuning import tune
from semsr.cli_agents import intent_command
from semsr.cli_common import (
    DatasetOption,
    LoaderOption,
    ProgressOption,
    clear_errors,
    command_settings,
    console,
    errors,
    load_entry_settings,
    load_protocol,
)
from semsr.cli_graph import recommend_command, trace_command
from semsr.cli_index import index_command
from semsr.cli_profile import prepare_command, profile_app
from semsr.cli_train import train_command
from semsr.tables import results_table
from sessiondata.errors import ConfigError
from sr_models.registry import MODELS, tuned_record

app = typer.Typer(add_completion=False, no_args_is_help=True, help="SemSR: semantics-aware session recommendation.")


@app.callback()
def main_callback(ctx: typer.Context) -> None:
    """SemSR: semantics-aware session recommendation. Settings: SEMSR_* environment variables (see README)."""
    load_entry_settings(ctx)


app.command(name="index")(index_command)
app.command(name="recommend")(recommend_command)
app.command(name="trace")(trace_command)
app.command(name="intent")(intent_command)
app.command(name="train")(train_command)
app.command(name="prepare")(prepare_command)
app.add_typer(profile_app, name="profile")


@app.command()
@clear_errors
def info(ctx: typer.Context, dataset: DatasetOption = "amazon-beauty", loader: LoaderOption = None) -> None:
    """Print a dataset's fingerprint and the cases its protocol yields."""
    settings = command_settings(ctx)
    protocol = load_protocol(dataset, loader, settings)
    console.print_json(json.dumps({"test": protocol.card("test"), "valid": protocol.fold("valid").summary()}))


@app.command()
def pipelines(ctx: typer.Context) -> None:
    """List the pipelines ``semsr eval`` can run."""
    settings = command_settings(ctx)
    for name in pipeline_names():
        found = tuned_record("amazon-beauty", ALIASES.get(name, name), settings.paths.tuned)
        tuned = f"tuned on amazon-beauty ({found[1]})" if found else ""
        if name in ALIASES:
            description = f"the best semantic source: {ALIASES[name]}"
        elif name in MODELS:
            description = MODELS[name].description
        else:
            description = graph_description(name)
        console.print(f"[bold]{name:14}[/] {description}  [dim]{tuned}[/]")


@app.command(name="eval")
@clear_errors
def eval_command(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", "-p", help="Pipeline (see `semsr pipelines`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory; a rerun into it resumes.")] = None,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N cases (smoke runs).")] = None,
    fold: Annotated[str, typer.Option(help="'test' (report) or 'valid' (tuning).")] = "test",
    param: Annotated[list[str] | None, typer.Option(help="Override a hyper-parameter: KEY=VALUE.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Cases scored per batch.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run a whole experiment file (TOML/JSON/YAML).")] = None,
    override: Annotated[list[str] | None, typer.Option("--set", help="Override an experiment key: KEY=VALUE.")] = None,
    progress: ProgressOption = True,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) if any case was answered degraded (a source faulted).")
    ] = False,
) -> None:
    """Evaluate one pipeline into OUT (cases.jsonl, metrics.json, protocol.json), or a whole --config experiment."""
    settings = command_settings(ctx, batch_size=batch_size, progress=progress)
    if config is not None:
        experiment = load_experiment(config, parse_params(override))
        _print_summary(run_experiment(experiment, settings, progress=settings.progress), strict=strict)
        return
    if pipeline is None or out is None:
        raise ConfigError("pipeline/out", None, "give --pipeline and --out (or --config FILE for an experiment)")
    if fold not in ("test", "valid"):
        raise ConfigError("fold", fold, "must be 'test' or 'valid'")
    if pipeline not in pipeline_names():
        raise ConfigError("pipeline", pipeline, f"unknown; choose one of {pipeline_names()}")
    protocol = load_protocol(dataset, loader, settings)
    started = time.perf_counter()
    overrides = parse_params(param)
    runner = build_pipeline(pipeline, protocol, fold, settings=settings, progress=settings.progress, **overrides)  # type: ignore[arg-type]
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
        spec=PipelineSpec(pipeline, dataset, fold, overrides, loader),
        executor=replay_executor(runner, settings, len(protocol.fold(fold).cases[:limit])),  # type: ignore[arg-type]
    )
    title = f"{protocol.dataset.name}: {pipeline} on the {fold} fold ({result.metrics['n_cases']} cases)"
    console.print(
        results_table(
            {_flagged_name(pipeline, result.metrics): result.metrics["metrics"]},
            protocol.dataset.name,
            title=title,
            show_published=fold == "test" and limit is None,
        )
    )
    console.print(f"wrote {out}/cases.jsonl, metrics.json, protocol.json ({result.n_new_cases} new cases)")
    _flag_degraded({pipeline: result.metrics}, strict=strict)


@app.command(name="tune")
@clear_errors
def tune_command(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Option("--pipeline", "-p")],
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    budget: Annotated[int, typer.Option(help="Configurations tried (random search over the grid).")] = 30,
    objective: Annotated[str, typer.Option(help="Validation metric to maximise, e.g. ndcg@20.")] = "ndcg@20",
    progress: ProgressOption = True,
) -> None:
    """Tune a pipeline on the validation fold (never the test split) and store the winner in SEMSR_HOME/tuned."""
    settings = command_settings(ctx, progress=progress)
    protocol = load_protocol(dataset, loader, settings)
    model = ALIASES.get(pipeline, pipeline)
    record = tune(protocol, model, settings, budget=budget, objective=objective, seed=settings.seed, progress=progress)
    console.print_json(json.dumps({k: record[k] for k in ("model", "objective", "params", "valid", "seconds")}))


@app.command()
@clear_errors
def run(
    ctx: typer.Context,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    pipeline: Annotated[list[str] | None, typer.Option("--pipeline", "-p", help="Repeat to choose.")] = None,
    out: Annotated[Path | None, typer.Option(help="Runs directory (default: settings.runs_dir/DATASET).")] = None,
    executor: Annotated[str, typer.Option(help="'local' or 'ray'.")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join (default: a local one).")] = None,
    progress: ProgressOption = True,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 1) if any case ran degraded.")] = False,
) -> None:
    """The main job: tune/train what is missing, fit the fusion on validation, evaluate the default
    pipelines on the test split, write the report, print the table."""
    settings = command_settings(ctx, progress=progress)
    fields: dict[str, object] = {"dataset": dataset, "loader": loader, "out": out, "executor": executor}
    if pipeline:
        fields["pipelines"] = pipeline
    if ray_address:
        fields["ray_address"] = ray_address
    _print_summary(run_experiment(ExperimentConfig.model_validate(fields), settings, progress=progress), strict=strict)


def _print_summary(summary: dict[str, object], *, strict: bool = False) -> None:
    results = summary["results"]
    full = summary.get("full_metrics") or {}
    flagged = {_flagged_name(n, full.get(n, {})): m for n, m in results.items()}  # type: ignore[union-attr, attr-defined]
    console.print(results_table(flagged, str(summary["dataset"])))
    console.print(f"seconds per pipeline: {summary['seconds']}")
    if "report" in summary:
        console.print(f"report: {summary['report']}")
    _flag_degraded(summary.get("full_metrics") or {}, strict=strict)  # type: ignore[arg-type]


def _flagged_name(name: str, metrics: dict[str, object]) -> str:
    """The table's row name, flagged when some of its cases ran degraded."""
    n = (metrics.get("degraded") or {}).get("n_cases", 0)  # type: ignore[union-attr]
    return f"{name} (DEGRADED: {n} cases)" if n else name


def _flag_degraded(metrics_by_pipeline: dict[str, dict[str, object]], *, strict: bool) -> None:
    """Say under the table which runs had degraded cases; with ``--strict`` such a run fails (exit 1)."""
    lines = [f"{name}: {line}" for name, m in metrics_by_pipeline.items() if (line := degraded_line(m))]
    for line in lines:
        errors.print(f"[bold yellow]warning:[/] {line}", highlight=False)
    if strict and lines:
        errors.print("[bold red]error:[/] --strict: the run had degraded cases (see metrics.json 'degraded')")
        raise typer.Exit(1)


def main() -> None:
    """The console entry point: like ``app()``, but a usage error (``--k 1.5``, an unknown option) is one
    line on stderr with exit status 2, as every other bad input is, not a multi-line usage box."""
    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError:
        code = app(["--help"], standalone_mode=False)
    except click_errors.UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx is not None else ""
        message = " ".join(error.format_message().split())
        errors.print(f"[bold red]error:[/] {where}{message} (see --help)", highlight=False)
        code = 2
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
