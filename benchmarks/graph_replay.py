"""Seconds and cases/s of the test replay through the compiled graph, and the metrics recomputed from it.

Runs the documented command ``semsr eval --dataset DATASET --pipeline PROFILE --out DIR`` in a fresh
process (so loading counts, as a user sees it), reads the machine's load average before and after (this
machine is shared: a timing means little without it), then recomputes HR/NDCG/MRR from the run's
``cases.jsonl`` exactly as an outside scorer would. With ``--reference DIR`` (an earlier run of the same
profile, e.g. the main job's ``runs/DATASET/PROFILE``) it also counts the cases whose ranked lists differ.

Run: ``python -m benchmarks.graph_replay [--dataset amazon-beauty] [--profile fused] [--reference DIR]``;
writes ``benchmarks/results/graph_replay.json`` and ``.md``. The profile must be prepared (``semsr prepare``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SHOWN = ("hr@20", "ndcg@20", "mrr@20", "hr@100")


def load() -> float:
    """The 1-minute load average (runnable processes; this machine has ``os.cpu_count()`` cores)."""
    return round(os.getloadavg()[0], 2)


def replay(dataset: str, profile: str, out: Path) -> dict[str, Any]:
    """Run ``semsr eval`` into ``out`` (emptied first) and time it."""
    command = [sys.executable, "-m", "semsr", "eval", "--dataset", dataset, "--pipeline", profile, "--out", str(out)]
    before, started = load(), time.perf_counter()
    subprocess.run([*command, "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return {"command": " ".join(command[1:]), "seconds": round(seconds, 1), "load_before": before, "load_after": load()}


def rescored(out: Path, dataset: str) -> dict[str, Any]:
    """Metrics recomputed from ``out/cases.jsonl`` for every test case (a missing case is an error)."""
    from evals.harness import score_directory
    from semsr.settings import load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    protocol = build_protocol(load_dataset(dataset), load_settings().protocol)
    metrics = score_directory(out, protocol, [case.case_id for case in protocol.test.cases])
    return {"n_cases": metrics["n_cases"], **{name: round(metrics["metrics"][name], 4) for name in SHOWN}}


def differing(out: Path, reference: Path) -> dict[str, int]:
    """Cases whose ranked list (and whose list at 20) differs from the reference run's."""
    from evals.harness import CASES_FILE, read_records

    mine, theirs = read_records(out / CASES_FILE), read_records(reference / CASES_FILE)
    shared = set(mine) & set(theirs)
    return {
        "cases_compared": len(shared),
        "lists_differ": sum(mine[c].recommendations != theirs[c].recommendations for c in shared),
        "top20_differ": sum(mine[c].recommendations[:20] != theirs[c].recommendations[:20] for c in shared),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--profile", default="fused")
    parser.add_argument("--reference", type=Path, help="An earlier run directory of the same profile to compare to.")
    parser.add_argument("--out", type=Path, help="Where the run goes (default: a temporary directory).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / args.profile
        timing = replay(args.dataset, args.profile, out)
        metrics = rescored(out, args.dataset)
        compared = differing(out, args.reference) if args.reference else None
    n = metrics["n_cases"]
    result = {
        "machine": f"{os.cpu_count()} CPU cores",
        "dataset": args.dataset,
        "profile": args.profile,
        **timing,
        "cases_per_s": round(n / timing["seconds"], 1),
        "metrics": metrics,
        "reference": {"dir": str(args.reference), **compared} if compared else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "graph_replay.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Replay of the {args.dataset} test split through the graph ({args.profile})",
        "",
        f"`{timing['command']}` on {result['machine']}: {timing['seconds']} s for {n} cases "
        f"({result['cases_per_s']} cases/s), load average {timing['load_before']} before, "
        f"{timing['load_after']} after.",
        "",
        "Recomputed from cases.jsonl: " + ", ".join(f"{name} {metrics[name]}" for name in SHOWN) + ".",
    ]
    if compared:
        lines += [
            "",
            f"Against {args.reference}: {compared['lists_differ']} of {compared['cases_compared']} ranked lists "
            f"differ ({compared['top20_differ']} in their top 20).",
        ]
    (RESULTS / "graph_replay.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
