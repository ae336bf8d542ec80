"""One-request cost of the session-kNN models: ``python -m benchmarks.knn_latency [--requests 300]``.

V-SKNN and ``vsknn-sem`` (V-SKNN with session-vector neighbours, :mod:`sr_models.semantic_knn`), each with
its tuned parameters for the dataset, fitted on the test fold's training sessions (what serving loads):
fit seconds, then ``score`` of one test prompt at a time (what a graph source node does) over
``--requests`` prompts, p50/p95 ms, and for ``vsknn-sem`` the share spent on the session-vector part (the
prompt's vector and its cosine to every training session). ``--sem-param KEY=VALUE`` overrides a
``vsknn-sem`` parameter (e.g. ``keep=0.33``: a third of the principal directions, a 3x smaller session
matrix) and ``--out STEM`` names the results, ``benchmarks/results/STEM.json`` and ``.md`` (default
``knn_latency``). The machine is shared: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def measure(dataset: str, requests: int, threads: int, sem_overrides: dict[str, Any]) -> dict[str, Any]:
    from semsr.settings import apply_threads, load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol
    from sr_models.base import train_data
    from sr_models.registry import build_model
    from sr_models.semantic_knn import SemanticKNN

    settings = load_settings(threads=threads)
    apply_threads(settings)
    protocol = build_protocol(load_dataset(dataset), settings.protocol)
    data = train_data(protocol, "test")
    prompts = [list(case.prompt) for case in protocol.test.cases[:requests]]
    env = settings.model_env(progress=False)
    rows: dict[str, Any] = {}
    for name in ("vsknn", "vsknn-sem"):
        started = time.perf_counter()
        overrides = sem_overrides if name == "vsknn-sem" else {}
        model = build_model(name, protocol.dataset.name, env=env, **overrides).fit(data)
        fit = time.perf_counter() - started
        model.score(prompts[:5])  # warm-up
        total, vector = [], []
        for prompt in prompts:
            started = time.perf_counter()
            model.score([prompt])
            total.append(time.perf_counter() - started)
            if isinstance(model, SemanticKNN):
                started = time.perf_counter()
                model.session_cosines([prompt])
                vector.append(time.perf_counter() - started)
        row: dict[str, Any] = {"fit_s": round(fit, 2), "score_one": _percentiles(total), "params": model.params()}
        if vector:
            row["session_vector_part"] = _percentiles(vector)
            row["training_sessions"] = int(model.session_matrix.shape[0])
        rows[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "params"}), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sem-param", action="append", default=[], help="vsknn-sem override KEY=VALUE (JSON value)")
    parser.add_argument("--out", default="knn_latency", help="results file stem under benchmarks/results/")
    args = parser.parse_args()
    sem = {key: json.loads(value) for key, _, value in (item.partition("=") for item in args.sem_param)}
    load_start = os.getloadavg()[0]
    rows = measure(args.dataset, args.requests, args.threads, sem)
    result = {
        "dataset": args.dataset,
        "requests": args.requests,
        "threads": args.threads,
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "vsknn_sem_overrides": sem,
        "models": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = [
        f"# Session-kNN one-request cost ({args.dataset}, {args.requests} test prompts, {args.threads} thread)",
        "",
        f"Load average at start / end: {result['load_average'][0]} / {result['load_average'][1]} (shared machine).",
        f"vsknn-sem overrides of its tuned parameters: {sem or 'none'}.",
        "",
        "| model | fit s | score one p50 ms | p95 ms | session-vector part p50 / p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        part = row.get("session_vector_part")
        vector = f"{part['p50_ms']} / {part['p95_ms']}" if part else "—"
        score = row["score_one"]
        lines.append(f"| `{name}` | {row['fit_s']} | {score['p50_ms']} | {score['p95_ms']} | {vector} |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
