"""Resume of a graph pipeline (the serving path): a rerun adds nothing, a run killed with SIGKILL resumes.

The run identity once compared a tuple in memory with the list read back from protocol.json, so every
rerun of ``--pipeline fused`` was refused as "a different run"; these tests replay the prepared slice's
fused profile (tests/conftest.py) and require every case exactly once and the uninterrupted metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.harness import CASES_FILE, METRICS_FILE, PROTOCOL_FILE, evaluate

LIMIT = 90


@pytest.fixture(scope="module")
def reference(slice_prepared, slice_settings, tmp_path_factory):
    """An uninterrupted fused run of the first LIMIT slice test cases."""
    from evals.graph_pipelines import GraphPipeline

    out = tmp_path_factory.mktemp("fused-reference")
    pipeline = GraphPipeline("fused", slice_settings, dataset=slice_settings.dataset)
    result = evaluate(pipeline, slice_prepared, out, limit=LIMIT, batch_size=30, progress=False)
    return pipeline, out, result


def _case_ids(out: Path) -> list[str]:
    return [json.loads(line)["case_id"] for line in (out / CASES_FILE).read_text().splitlines()]


def test_rerunning_a_fused_run_adds_no_case_and_keeps_the_metrics(reference, slice_prepared):
    pipeline, out, first = reference
    assert first.n_new_cases == LIMIT
    again = evaluate(pipeline, slice_prepared, out, limit=LIMIT, batch_size=30, progress=False)
    assert again.n_new_cases == 0
    assert again.metrics["metrics"] == first.metrics["metrics"]
    assert sorted(_case_ids(out)) == sorted(c.case_id for c in slice_prepared.test.cases[:LIMIT])


def _kill_and_resume(out: Path, slice_settings, after_lines: int) -> None:
    """Start ``semsr eval --pipeline fused``, SIGKILL it once ``after_lines`` lines are written (0: as soon
    as its protocol card exists), then rerun it to completion."""
    env = {**os.environ, "SEMSR_HOME": str(slice_settings.home), "SEMSR_THREADS": "1"}
    command = [
        sys.executable,
        "-c",
        "from semsr.cli import main; main()",
        "eval",
        "--pipeline",
        "fused",
        "--out",
        str(out),
    ]
    command += ["--dataset", slice_settings.dataset, "--limit", str(LIMIT), "--batch-size", "30", "--no-progress"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    cases = out / CASES_FILE
    while time.monotonic() < deadline and process.poll() is None:
        written = cases.read_bytes().count(b"\n") if cases.exists() else -1
        if (after_lines == 0 and (out / PROTOCOL_FILE).exists()) or written >= after_lines > 0:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"the run ended before the kill point: {process.stderr.read().decode()[-500:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-800:]


@pytest.mark.parametrize(
    "after_lines",
    [30, pytest.param(0, marks=pytest.mark.slow), pytest.param(60, marks=pytest.mark.slow)],
)
def test_a_fused_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(
    reference, slice_prepared, slice_settings, tmp_path, after_lines
):
    _, reference_out, first = reference
    _kill_and_resume(tmp_path, slice_settings, after_lines)
    ids = _case_ids(tmp_path)
    assert len(ids) == len(set(ids)) == LIMIT
    assert set(ids) == {c.case_id for c in slice_prepared.test.cases[:LIMIT]}
    metrics = json.loads((tmp_path / METRICS_FILE).read_text())
    assert metrics["metrics"] == first.metrics["metrics"]
    by_case = {json.loads(line)["case_id"]: json.loads(line) for line in (reference_out / CASES_FILE).open()}
    for line in (tmp_path / CASES_FILE).open():
        record = json.loads(line)
        assert record["recommendations"] == by_case[record["case_id"]]["recommendations"]
