"""One typed configuration per experiment (a file plus command-line overrides), saved with its results.

An experiment evaluates a list of pipelines on one dataset under one protocol into one directory, then
writes the report. ``semsr run`` is the default experiment; ``semsr eval --config FILE`` runs any other.
Files may be TOML, JSON or YAML; keys mirror :class:`ExperimentConfig`.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sessiondata.errors import ConfigError
from sessiondata.protocol import ProtocolConfig

DEFAULT_PIPELINES = (
    "popularity",
    "sknn",
    "vsknn",
    "sr",
    "semantic",
    "fused",
    "fused-learned",
    "fused-rrf",
)


class PipelineRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameter or context overrides.")
    limit: int | None = Field(None, ge=1, description="Only the first N cases (slow pipelines, smoke runs).")


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    dataset: str = "amazon-beauty"
    loader: str | None = None
    pipelines: list[PipelineRun] = Field(default_factory=lambda: [PipelineRun(name=n) for n in DEFAULT_PIPELINES])
    protocol: ProtocolConfig | None = Field(None, description="None: the settings' protocol.")
    out: Path | None = Field(None, description="None: <runs_dir>/<dataset>.")
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="Ray cluster to join ('auto', ray://host:port); None = local.")
    workers: int = Field(2, ge=1)
    report: bool = True

    @field_validator("pipelines", mode="before")
    @classmethod
    def _names_to_runs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` flags (``--param``, ``--set``); values are read as JSON when they parse (numbers,
    true, null, lists), else kept as text."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("param", pair, "write KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def load_experiment(path: Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read an experiment file and apply ``overrides`` (dotted keys allowed: ``protocol.seed=3``)."""
    if not path.exists():
        raise ConfigError("config", str(path), "file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError("config", str(path), f"cannot be parsed: {error}") from None
    for dotted, value in (overrides or {}).items():
        target = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return ExperimentConfig.model_validate(data)


def run_experiment(config: ExperimentConfig, settings: Any, *, progress: bool = True) -> dict[str, Any]:
    """Evaluate every pipeline of ``config`` (resuming finished work) and write the report."""
    from evals.executors import PipelineSpec, RayExecutor, replay_executor
    from evals.harness import evaluate
    from evals.pipelines import ALIASES, build_pipeline, pipeline_names
    from evals.prepare import record_metrics
    from evals.report import write_report
    from evals.tuning import tune
    from graphs.profiles import PROFILES
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol
    from sr_models.registry import MODELS, tuned_params

    unknown = [run.name for run in config.pipelines if run.name not in pipeline_names()]
    if unknown:
        raise ConfigError("pipelines", unknown[0], f"unknown; choose from {pipeline_names()}")
    protocol_config = config.protocol or settings.protocol
    protocol = build_protocol(load_dataset(config.dataset, config.loader), protocol_config)
    root = config.out or settings.runs_dir / protocol.dataset.name
    root.mkdir(parents=True, exist_ok=True)
    (root / "experiment.json").write_text(config.model_dump_json(indent=2) + "\n")
    ray = (
        RayExecutor(settings, address=config.ray_address, workers=config.workers) if config.executor == "ray" else None
    )
    results: dict[str, dict[str, float]] = {}
    full_metrics: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for run in config.pipelines:
        started = time.perf_counter()
        model_name = ALIASES.get(run.name, run.name)
        spec = MODELS.get(model_name)
        tuned = tuned_params(protocol.dataset.name, model_name, settings.paths.tuned)
        if spec is not None and spec.grid and not run.params and tuned is None:
            tune(protocol, model_name, settings, seed=settings.seed, progress=progress)
        pipeline = build_pipeline(run.name, protocol, "test", settings=settings, progress=progress, **run.params)
        result = evaluate(
            pipeline,
            protocol,
            root / run.name,
            limit=run.limit,
            batch_size=settings.batch_size,
            progress=progress,
            executor=ray or replay_executor(pipeline, settings, len(protocol.test.cases[: run.limit])),
            spec=PipelineSpec(run.name, config.dataset, "test", run.params, config.loader),
            replace_stale=True,
        )
        if run.name in PROFILES and run.limit is None:
            record_metrics(settings, protocol.dataset.spec, run.name, "test", result.metrics, root / run.name)
        results[run.name] = result.metrics["metrics"]
        full_metrics[run.name] = result.metrics
        timings[run.name] = round(time.perf_counter() - started, 1)
    summary: dict[str, Any] = {"dataset": protocol.dataset.name, "results": results, "seconds": timings}
    degraded = {name: m["degraded"] for name, m in full_metrics.items() if m.get("degraded", {}).get("n_cases")}
    if degraded:
        summary["degraded"] = degraded
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["full_metrics"] = full_metrics
    full = [run.name for run in config.pipelines if run.limit is None]
    partial = [run.name for run in config.pipelines if run.limit is not None]
    if config.report and full:
        summary["report"] = str(write_report(root, names=full, partial=partial))
    return summary
