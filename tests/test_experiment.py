"""Experiments end to end: config files, a real kill and resume, the Ray executor, the report and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.executors import LocalExecutor, PipelineSpec
from evals.experiment import ExperimentConfig, load_experiment
from evals.harness import CASES_FILE, evaluate, read_records
from evals.pipelines import build_pipeline
from evals.report import check_comparable, load_runs, significance, write_report
from sessiondata.errors import ConfigError

SEMSR = str(Path(sys.executable).parent / "semsr")


def test_experiment_file_with_overrides(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        'name = "knn-only"\npipelines = ["popularity", {name = "vsknn", params = {k = 50}, limit = 100}]\n'
        "[protocol]\nseed = 3\n"
    )
    config = load_experiment(path, {"workers": 3, "protocol.exclude_seen": True})
    assert config.name == "knn-only" and config.workers == 3
    assert [p.name for p in config.pipelines] == ["popularity", "vsknn"]
    assert config.pipelines[1].params == {"k": 50} and config.pipelines[1].limit == 100
    assert config.protocol.seed == 3
    with pytest.raises(ValueError, match="executor"):
        ExperimentConfig.model_validate({"executor": "spark"})
    with pytest.raises(ConfigError, match="file not found"):
        load_experiment(tmp_path / "missing.toml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_experiment(tmp_path / "bad.json")


def test_killed_cli_run_resumes_without_losing_or_repeating_cases(tmp_path):
    out = tmp_path / "run"
    command = [SEMSR, "eval", "--pipeline", "sknn", "--out", str(out), "--limit", "1500", "--batch-size", "20"]
    process = subprocess.Popen([*command, "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cases = out / CASES_FILE
    deadline = time.time() + 240
    while time.time() < deadline and (not cases.exists() or len(cases.read_bytes().splitlines()) < 100):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = len(read_records(cases))
    assert 0 < written < 1500, "the run must have been killed mid-way"
    finished = subprocess.run([*command, "--no-progress"], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    ids = [json.loads(line)["case_id"] for line in cases.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 1500
    assert f"{1500 - written} new cases" in finished.stdout


def test_report_refuses_runs_with_different_protocols(tmp_path, beauty_protocol, settings):
    popularity = build_pipeline("popularity", beauty_protocol, settings=settings)
    evaluate(popularity, beauty_protocol, tmp_path / "a", limit=50, progress=False)
    evaluate(popularity, beauty_protocol, tmp_path / "b", limit=60, progress=False)
    with pytest.raises(ConfigError, match=r"not comparable.*limit"):
        check_comparable(load_runs(tmp_path))
    with pytest.raises(ConfigError, match="not comparable"):
        write_report(tmp_path)


def test_report_aggregates_metrics_significance_and_plots(tmp_path, beauty_protocol, settings):
    for name in ("popularity", "sr"):
        evaluate(
            build_pipeline(name, beauty_protocol, settings=settings),
            beauty_protocol,
            tmp_path / name,
            limit=400,
            progress=False,
        )
    # a "fused" run: sequential rules under another name, to exercise the fused-vs-component tests
    fused = build_pipeline("sr", beauty_protocol, settings=settings)
    fused.name = "fused"
    evaluate(fused, beauty_protocol, tmp_path / "fused", limit=400, progress=False)
    runs = load_runs(tmp_path)
    rows = {(r["fused"], r["vs"]): r for r in significance(runs)}
    assert rows[("fused", "sr")]["hr@20 diff"] == 0.0 and rows[("fused", "sr")]["hr@20 p"] == 1.0
    assert rows[("fused", "popularity")]["hr@20 diff"] > 0 and rows[("fused", "popularity")]["hr@20 p"] < 0.05
    slow = tmp_path / "slow"
    evaluate(
        build_pipeline("vsknn", beauty_protocol, settings=settings),
        beauty_protocol,
        slow / "vsknn",
        limit=100,
        progress=False,
    )
    report = write_report(tmp_path, names=["popularity", "sr", "fused"]).read_text()
    assert "| sr | SemSR |" in report and "| V-SKNN | published |" in report
    subset = write_report(tmp_path, names=["popularity", "sr", "fused"], partial=["slow/vsknn"]).read_text()
    assert "On the 100 cases `vsknn` was run on" in subset
    assert "Fused vs each component" in report and "By prompt length" in report
    for png in ("metrics.png", "metrics_by_k.png", "by_session_length.png", "quality_vs_cost.png"):
        assert (tmp_path / "report" / png).stat().st_size > 5_000


@pytest.mark.slow
def test_ray_executor_matches_the_local_one(tmp_path, beauty_protocol, settings):
    ray = pytest.importorskip("ray")
    from evals.executors import RayExecutor

    pipeline = build_pipeline("sr", beauty_protocol, settings=settings)
    spec = PipelineSpec("sr", "amazon-beauty", "test")
    try:
        remote = evaluate(
            pipeline,
            beauty_protocol,
            tmp_path / "ray",
            limit=300,
            progress=False,
            executor=RayExecutor(settings, workers=2, shard_size=100),
            spec=spec,
        )
    finally:
        ray.shutdown()
    local = evaluate(
        pipeline, beauty_protocol, tmp_path / "local", limit=300, progress=False, executor=LocalExecutor(64), spec=spec
    )
    assert remote.metrics["metrics"] == local.metrics["metrics"]
    by_ray = read_records(tmp_path / "ray" / CASES_FILE)
    by_local = read_records(tmp_path / "local" / CASES_FILE)
    assert set(by_ray) == set(by_local)
    assert all(by_ray[c].recommendations == by_local[c].recommendations for c in by_local)


@pytest.mark.slow
def test_process_executor_replays_the_graph_as_this_process_does(tmp_path, slice_prepared, slice_settings):
    """Two spawned workers, each building the graph pipeline from its spec, give the same cases.jsonl
    lists and metrics as the replay in this process; a long graph replay picks the processes."""
    from evals.executors import ProcessExecutor, replay_executor
    from evals.graph_pipelines import GraphPipeline

    dataset = slice_settings.dataset
    pipeline = GraphPipeline("fused", slice_settings, dataset=dataset)
    spec = PipelineSpec("fused", dataset, "test")
    workers = ProcessExecutor(slice_settings, workers=2, batch_size=20)
    remote = evaluate(
        pipeline, slice_prepared, tmp_path / "pool", limit=60, progress=False, executor=workers, spec=spec
    )
    local = evaluate(
        pipeline, slice_prepared, tmp_path / "local", limit=60, progress=False, executor=LocalExecutor(20), spec=spec
    )
    assert remote.metrics["metrics"] == local.metrics["metrics"]
    by_pool, by_local = read_records(tmp_path / "pool" / CASES_FILE), read_records(tmp_path / "local" / CASES_FILE)
    assert set(by_pool) == set(by_local) and len(by_local) == 60
    assert all(by_pool[c].recommendations == by_local[c].recommendations for c in by_local)
    assert isinstance(
        replay_executor(pipeline, slice_settings.model_copy(update={"replay_workers": 2}), 4469), ProcessExecutor
    )
    assert isinstance(replay_executor(pipeline, slice_settings, 60), LocalExecutor)  # too few cases to pay a start


def test_the_shipped_example_experiment_names_real_pipelines():
    from evals.pipelines import pipeline_names

    config = load_experiment(Path(__file__).resolve().parents[1] / "experiments" / "example.toml")
    assert {run.name for run in config.pipelines} <= set(pipeline_names())
