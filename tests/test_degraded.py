"""A fault that lowers the numbers is counted beside them: metrics.json, the CLI table, ``--strict``.

A source of the prepared ``fused`` profile dies mid-run (its model raises from the second batch on, as a
model behind a dead server would); the graph degrades those cases, and the run's metrics say how many,
by source and by reason. ``semsr eval --strict`` over the same directory (resumed: no new case) fails.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from evals.degraded import count_degraded, degraded_line, split_note
from evals.harness import METRICS_FILE, evaluate

LIMIT, BATCH = 60, 30


def test_notes_split_into_source_and_a_stable_reason():
    assert split_note("intent: semantic index: Could not connect to 127.0.0.1:9") == ("intent", "semantic index")
    assert split_note("llm-agent: LLM unavailable (TimeoutError: slow)") == ("llm-agent", "LLM unavailable")
    assert split_note("no source produced candidates; recommended popular items instead")[0] == "answer"
    counts = count_degraded([[], ["sr: ConnectionError: gone"], ["sr: ConnectionError: again", "intent: x"], None])
    assert counts == {
        "n_cases": 2,
        "by_source": {"intent": 1, "sr": 2},
        "by_reason": {"intent: x": 1, "sr: ConnectionError": 2},
    }
    assert degraded_line({"n_cases": 4, "degraded": counts}).startswith("DEGRADED: 2 of 4 cases")
    assert degraded_line({"n_cases": 4, "degraded": count_degraded([[], []])}) is None


def test_a_source_dying_mid_run_is_counted_in_metrics_and_fails_strict(slice_prepared, slice_settings, tmp_path):
    from evals.graph_pipelines import GraphPipeline
    from semsr.cli import app

    pipeline = GraphPipeline("fused", slice_settings, dataset=slice_settings.dataset, concurrency=1)
    model = pipeline.serving.models["sr"]
    healthy, calls = model.score, {"n": 0}

    def dies_after_the_first_batch(prompts):
        calls["n"] += 1
        if calls["n"] > BATCH:
            raise ConnectionError("the model server went away")
        return healthy(prompts)

    model.score = dies_after_the_first_batch
    try:
        result = evaluate(pipeline, slice_prepared, tmp_path, limit=LIMIT, batch_size=BATCH, progress=False)
    finally:
        model.score = healthy
    written = json.loads((tmp_path / METRICS_FILE).read_text())
    assert written["degraded"] == result.metrics["degraded"]
    assert written["degraded"]["n_cases"] == LIMIT - BATCH
    assert written["degraded"]["by_source"] == {"sr": LIMIT - BATCH}
    assert written["degraded"]["by_reason"] == {"sr: ConnectionError": LIMIT - BATCH}

    runner = CliRunner()
    env = {"SEMSR_HOME": str(slice_settings.home), "SEMSR_THREADS": "1"}
    command = ["eval", "--pipeline", "fused", "--out", str(tmp_path), "--dataset", slice_settings.dataset]
    command += ["--limit", str(LIMIT), "--batch-size", str(BATCH), "--no-progress"]
    flagged = runner.invoke(app, command, env=env)
    assert flagged.exit_code == 0, flagged.output
    assert "DEGRADED: 30 cases" in flagged.output and "sr: ConnectionError (30)" in flagged.output
    strict = runner.invoke(app, [*command, "--strict"], env=env)
    assert strict.exit_code == 1 and "--strict" in strict.output
