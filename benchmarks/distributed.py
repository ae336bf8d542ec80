"""One process against ``torchrun`` processes for torch training: ``python -m benchmarks distributed``.

For each seed, ``semsr train --fold valid`` (the validation fit, early stopping capped at ``--max-epochs``)
runs once on one process and once under ``torchrun --nproc_per_node=N`` (gloo on the CPU, DDP), each in a
fresh ``SEMSR_HOME`` on the latest ``--sessions`` Beauty sessions (a CSV slice, loaded through ``csv:DIR``).
Recorded per run: the last epoch's validation HR/NDCG@20, seconds per epoch, wall seconds of the command,
and for the distributed run what its epoch record says (examples per rank, overlap between the ranks'
shares, spread of the ranks' weights). ``--params`` sets hyper-parameters the way a ``semsr tune`` record
would (default: the small GRU4Rec of ``tests/test_distributed.py``; ``{}`` for the shipped defaults).

Results go to ``benchmarks/results/distributed.json`` and ``.md`` (``--out NAME``: ``NAME.json``, ``.md``).
The machine is shared: the load average is recorded beside each run; read the seconds with it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.fuzz_recommend import write_slice

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SMALL_GRU4REC = {"dim": 64, "n_negatives": 256}


def write_tuned(home: Path, spec: str, model: str, params: dict[str, Any]) -> Path:
    """A tuning record for ``model`` on dataset ``spec`` under ``home`` (what ``semsr tune`` writes, here
    not tuned: the benchmark's and the test's fixed settings), so ``semsr train`` builds that model."""
    name = Path(spec.split(":", 1)[-1]).name
    record = {
        "model": model,
        "dataset": {"name": name},
        "selected_on": "not tuned: fixed settings of benchmarks/distributed.py",
        "objective": "ndcg@20",
        "params": params,
        "valid": {},
        "seconds": 0.0,
        "tuned_at": "2026-12-02T00:00:00Z",
    }
    target = home / "tuned" / name / f"{model}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record))
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_command(spec: str, model: str, seed: int, max_epochs: int, nproc: int) -> list[str]:
    """``semsr train`` of the validation fit on one process, or under torchrun on ``nproc``."""
    args = ["train", "--model", model, "--dataset", spec, "--fold", "valid", "--max-epochs", str(max_epochs)]
    args += ["--seed", str(seed), "--device", "cpu", "--threads", "1", "--no-progress"]
    if nproc == 1:
        return [sys.executable, "-m", "semsr", *args]
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    return [*launcher, "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "semsr", *args]


def run_once(spec: str, model: str, params: dict[str, Any], seed: int, max_epochs: int, nproc: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="semsr-ddp-") as tmp:
        home = write_tuned(Path(tmp), spec, model, params)
        env = {**os.environ, "SEMSR_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(
            train_command(spec, model, seed, max_epochs, nproc), env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{nproc} process(es), seed {seed}: {done.stderr[-2000:]}")
        (log,) = (home / "artifacts").rglob("train_log.jsonl")
        epochs = [json.loads(line) for line in log.read_text().splitlines()][1:]
    last = epochs[-1]
    row = {"nproc": nproc, "seed": seed, "epochs": len(epochs), "wall_seconds": round(wall, 1), "load": load}
    row["seconds_per_epoch"] = round(sum(e["epoch_seconds"] for e in epochs) / len(epochs), 2)
    row.update({k: round(last[k], 4) for k in ("hr@20", "ndcg@20")})
    row.update({k: last[k] for k in ("shard_examples", "shard_overlap", "weights_spread") if k in last})
    return row


def render(result: dict[str, Any]) -> str:
    lines = [
        "# One process vs torchrun (DDP, gloo, CPU)",
        "",
        f"`{result['command']}` on {result['machine']}; {result['setting']}.",
        "",
        "| processes | seed | epochs | HR@20 | NDCG@20 | s/epoch | wall s | load "
        "| examples per rank | overlap | weight spread |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        shard = r.get("shard_examples", "")
        cells = [
            r["nproc"],
            r["seed"],
            r["epochs"],
            r["hr@20"],
            r["ndcg@20"],
            r["seconds_per_epoch"],
            r["wall_seconds"],
        ]
        cells += [f"{r['load']:.1f}", shard, r.get("shard_overlap", ""), r.get("weights_spread", "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for nproc, summary in result["summary"].items():
        lines.append("")
        lines.append(f"{nproc} process(es): NDCG@20 mean {summary['ndcg_mean']:.4f} (range {summary['ndcg_range']})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000, help="Latest Beauty sessions in the slice.")
    parser.add_argument("--model", default="gru4rec")
    parser.add_argument("--params", type=json.loads, default=SMALL_GRU4REC, help="JSON hyper-parameters.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--out", default="distributed", help="Results file name under benchmarks/results/.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semsr-slice-") as tmp:
        spec = write_slice(Path(tmp), args.sessions)
        runs = [
            run_once(spec, args.model, args.params, seed, args.max_epochs, nproc)
            for seed in args.seeds
            for nproc in (1, args.nproc)
        ]
    summary = {}
    for nproc in (1, args.nproc):
        values = [r["ndcg@20"] for r in runs if r["nproc"] == nproc]
        summary[str(nproc)] = {"ndcg_mean": sum(values) / len(values), "ndcg_range": [min(values), max(values)]}
    result = {
        "command": " ".join(["python -m benchmarks.distributed", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} CPUs",
        "setting": f"{args.model} {json.dumps(args.params)}, latest {args.sessions} Beauty sessions, validation fold",
        "runs": runs,
        "summary": summary,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
