"""Where one request's CPU goes: each graph node's CPU time, calling the served profile's nodes in order.

The nodes are called directly (no LangGraph loop, no tracer), with the state each would see, on real test
sessions of the settings' dataset; CPU time (``time.process_time``: every thread of this process) is far
less sensitive than wall time to other jobs on a shared machine. ``k`` is the list size asked for (the
replay asks for 100). The end-to-end figure of :mod:`benchmarks.graph_latency` minus these is LangGraph's
own cost and the wait for a core.

Run: ``python -m benchmarks.graph_node_cpu [--requests 200] [--k 20]``; writes
``benchmarks/results/graph_node_cpu_k{K}_threads{T}.json`` and ``.md``.
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
ORDER = (
    "validate_request",
    "session_models",
    "session_semantics",
    "shopper_intent",
    "clarify",
    "intent_retrieval",
    "query_retrieval",
    "llm_proposals",
    "fuse",
    "explain",
)


def run_nodes(nodes: Any, request: dict[str, Any], costs: dict[str, list[float]] | None) -> None:
    """One request through the nodes in graph order, merging updates as the graph's reducers do."""
    state: dict[str, Any] = dict(request)
    for name in ORDER:
        started = time.process_time()
        update = getattr(nodes, name)(state, None)
        if costs is not None:
            costs[name].append(time.process_time() - started)
        results = update.pop("source_results", "absent")
        state.update(update)
        if results is None:
            state["source_results"] = {}
        elif results != "absent":
            state["source_results"] = {**(state.get("source_results") or {}), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    from graphs.nodes import GraphNodes
    from graphs.services import ProfileServices
    from semsr.settings import apply_threads, load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    settings = load_settings()
    apply_threads(settings)
    services = ProfileServices(settings)
    nodes = GraphNodes(services)
    serving = services.profile()
    protocol = build_protocol(load_dataset(settings.dataset), settings.protocol)
    requests = [
        {"items": [serving.catalog.ids[i] for i in case.prompt], "k": args.k}
        for case in protocol.test.cases[: args.requests]
    ]
    for request in requests[:20]:  # warm: lazy parts, caches
        run_nodes(nodes, request, None)
    costs: dict[str, list[float]] = {name: [] for name in ORDER}
    load_before, started = os.getloadavg()[0], time.process_time()
    for request in requests:
        run_nodes(nodes, request, costs)
    total = (time.process_time() - started) / len(requests) * 1000.0
    table = {
        name: {
            "mean_ms": round(float(np.mean(v) * 1000), 3),
            "p50_ms": round(float(np.percentile(v, 50) * 1000), 3),
            "p95_ms": round(float(np.percentile(v, 95) * 1000), 3),
        }
        for name, v in costs.items()
    }
    result = {
        "profile": serving.spec.name,
        "requests": len(requests),
        "k": args.k,
        "threads": settings.threads,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_ms_per_request": round(total, 2),
        "nodes": table,
    }
    stem = f"graph_node_cpu_k{args.k}_threads{settings.threads}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# CPU per graph node ({serving.spec.name}, k={args.k}, SEMSR_THREADS={settings.threads})",
        "",
        f"{len(requests)} test sessions; {total:.2f} ms CPU per request in the nodes; load average "
        f"{result['load_average'][0]} before, {result['load_average'][1]} after ({os.cpu_count()} cores).",
        "",
        "| node | mean ms | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {v['mean_ms']} | {v['p50_ms']} | {v['p95_ms']} |" for name, v in table.items()),
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
