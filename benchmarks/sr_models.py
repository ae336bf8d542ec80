"""Speed of the torch session recommenders on this machine's CPU: ``python -m benchmarks sr_models``.

Per model (each in its own subprocess, so peak memory is its own):

* training seconds per epoch on the full Beauty validation-fold training sessions, extrapolated from
  ``--train-batches`` timed mini-batches after two warm-up batches (the real batch size and data);
* epochs to converge: the best epoch recorded by the validation fit in the artefact store, when one ran
  (``python -m evals.sr_table run``), else null;
* inference latency for one session (p50/p95 over ``--single`` test prompts) and throughput for batches
  of 256 test prompts (full-catalogue scores);
* peak resident memory of the process (MB).

Results go to ``benchmarks/results/sr_models.json`` and ``.md``. The machine is shared: the load average
at start and end is recorded, read the numbers with it. RecBole's published CPU epoch times on this data
(DESIGN.md, 2 threads on an idle machine) are quoted beside ours for reference, not re-measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sr_models.neural.specs import neural_specs

RESULTS = Path(__file__).parent / "results"
MODELS = [name for name, *_ in neural_specs()]  # every torch model and SemSR variant
RECBOLE_SECONDS_PER_EPOCH = {"gru4rec": 156, "srgnn": 270, "sasrec": 473, "bert4rec": 1087}


def measure(name: str, train_batches: int, single: int, threads: int) -> dict[str, Any]:
    import torch

    from semsr.settings import load_settings
    from sessiondata.loaders.beauty import load_amazon_beauty
    from sessiondata.protocol import build_protocol
    from sr_models.base import train_data
    from sr_models.neural.data import iterate_batches
    from sr_models.neural.recommender import NeuralRecommender, resolve_device
    from sr_models.neural.semsr_text import title_vectors
    from sr_models.neural.trainer import TrainConfig, batch_loss
    from sr_models.registry import build_model

    protocol = build_protocol(load_amazon_beauty())
    data = train_data(protocol, "valid")
    settings = load_settings(threads=threads, device="cpu")
    env = settings.model_env(progress=False)
    model = build_model(name, protocol.dataset.name, env=env, cache=False)
    assert isinstance(model, NeuralRecommender)
    model.device = resolve_device("cpu")
    torch.set_num_threads(threads)
    semantic = model.hyper["semantic"]
    vectors = (
        title_vectors(data.catalog, model.hyper["semantic_source"], env, data.digest) if semantic != "none" else None
    )
    encoder = model.build_encoder(data.n_items, vectors)
    examples = model.examples(data)
    config: TrainConfig = model.train_config(1, None)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    n_batches = -(-len(examples) // config.batch_size)
    times = []
    encoder.train()
    for step, batch in enumerate(iterate_batches(examples, config.batch_size, config.max_len, shuffle=True, rng=rng)):
        if step >= train_batches + 2:
            break
        started = time.perf_counter()
        loss = batch_loss(encoder, encoder.prepare(batch, generator), config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= 2:
            times.append(time.perf_counter() - started)
    model.encoder, model.n_items = encoder.eval(), data.n_items
    prompts = [case.prompt for case in protocol.test.cases]
    latencies = []
    for prompt in prompts[:single]:
        started = time.perf_counter()
        model.score([prompt])
        latencies.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    n_scored = 0
    for start in range(0, min(len(prompts), 256 * 4), 256):
        n_scored += len(model.score(prompts[start : start + 256]))
    throughput = n_scored / (time.perf_counter() - started)
    from sr_models.neural.artifacts import ArtifactStore

    best_epoch = ArtifactStore(settings.paths.artifacts).read_epochs(
        protocol.dataset.name, model.name, model.epoch_params()
    )
    return {
        "model": name,
        "params": {k: model.params()[k] for k in ("dim", "max_len", "batch_size")},
        "train_examples": len(examples),
        "train_batches_timed": len(times),
        "seconds_per_epoch": round(float(np.mean(times)) * n_batches, 1),
        "epochs_to_converge": best_epoch,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
        "throughput_sessions_per_s_batch256": round(throughput, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "recbole_seconds_per_epoch_reference": RECBOLE_SECONDS_PER_EPOCH.get(name),
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Torch session recommenders: CPU speed on Amazon Beauty",
        "",
        f"Command: `python -m benchmarks sr_models` · threads {payload['threads']} · torch {payload['torch']} · "
        f"load average {payload['load_start']} at start, {payload['load_end']} at end (shared 2-core machine).",
        "",
        "| model | dim | s/epoch | epochs to converge | latency p50 ms | latency p95 ms | sessions/s (batch 256) |"
        " peak RSS MB | RecBole s/epoch (DESIGN.md, idle) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["results"]:
        if "error" in row:
            lines.append(f"| {row['model']} | error: {row['error']} |||||||||")
            continue
        lines.append(
            f"| {row['model']} | {row['params']['dim']} | {row['seconds_per_epoch']} | {row['epochs_to_converge']} | "
            f"{row['latency_ms_p50']} | {row['latency_ms_p95']} | {row['throughput_sessions_per_s_batch256']} | "
            f"{row['peak_rss_mb']} | {row['recbole_seconds_per_epoch_reference'] or '–'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU speed of the torch session recommenders.")
    parser.add_argument("--model", action="append", help="Benchmark only these (repeat).")
    parser.add_argument("--train-batches", type=int, default=10)
    parser.add_argument("--single", type=int, default=100, help="Single-session calls timed.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.train_batches, args.single, args.threads)))
        return
    import torch

    payload: dict[str, Any] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "load_start": round(os.getloadavg()[0], 2),
        "results": [],
    }
    for name in args.model or MODELS:
        command = [sys.executable, "-m", "benchmarks.sr_models", "--one", name, "--threads", str(args.threads)]
        command += ["--train-batches", str(args.train_batches), "--single", str(args.single)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        row = json.loads(lines[-1]) if done.returncode == 0 and lines else {"model": name, "error": done.stderr[-300:]}
        payload["results"].append(row)
        print(json.dumps(row), flush=True)
    payload["load_end"] = round(os.getloadavg()[0], 2)
    previous = args.out / "sr_models.json"
    if args.model and previous.exists():  # a partial rerun replaces its rows and keeps the others
        fresh = {row["model"] for row in payload["results"]}
        kept = [row for row in json.loads(previous.read_text())["results"] if row["model"] not in fresh]
        order = {name: i for i, name in enumerate(MODELS)}
        payload["results"] = sorted(kept + payload["results"], key=lambda row: order.get(row["model"], len(order)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sr_models.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / "sr_models.md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
