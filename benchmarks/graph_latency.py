"""Latency of one recommendation request through the compiled graph, on this machine's CPU.

Measures end-to-end and per-node p50/p95 for single requests (real test sessions of the settings'
dataset) on the served profile (no LLM) and on ``fused-llm`` with a cached LLM (the response cache
answers after a warm-up pass), and the graph's own overhead: end-to-end time minus the time spent inside
the nodes on the critical path. Both profiles must be prepared first (``semsr prepare``). Each run also
records the untraced end-to-end latency, the process's CPU time per request and the load average around
it (the machine may be shared: a wall-clock figure means little without the load beside it).

Run: ``python -m benchmarks.graph_latency [--requests 200] [--name graph_latency]``; writes
``benchmarks/results/NAME.json`` and ``.md`` (``SEMSR_THREADS=1 ... --name graph_latency_threads1``: one BLAS
thread per serving process).
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


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(array, 50)), 2), "p95_ms": round(float(np.percentile(array, 95)), 2)}


def measure(semsr: Any, requests: int, *, profile: str, protocol: Any = None) -> dict[str, Any]:
    """Per-request timings of ``profile`` (prepared beforehand: ``semsr prepare --profile NAME``) on the first
    ``requests`` test prompts of ``protocol`` (default: the settings' dataset, loaded here)."""
    from graphs.context import Context
    from graphs.tracing import JsonlTracer, read_trace
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    context = Context(profile=profile)
    serving = semsr.services.profile(profile)
    if protocol is None:
        protocol = build_protocol(load_dataset(semsr.settings.dataset), semsr.settings.protocol)
    sessions = [[serving.catalog.ids[i] for i in case.prompt] for case in protocol.test.cases[:requests]]
    semsr.recommend(sessions[0], k=20, context=context)  # load models, index, embedder
    uses_llm = any(source.uses_llm for source in serving.spec.sources)
    if uses_llm:  # warm the response cache so the timed pass measures cached LLM calls
        for items in sessions:
            semsr.recommend(items, k=20, context=context)
    trace_path = RESULTS / f".trace-{os.getpid()}.jsonl"
    trace_path.unlink(missing_ok=True)
    untraced = []  # the plain request, as a caller without a tracer sees it
    load_before, cpu = os.getloadavg()[0], time.process_time()
    for items in sessions:
        started = time.perf_counter()
        semsr.recommend(items, k=20, context=context)
        untraced.append(time.perf_counter() - started)
    cpu_ms = (time.process_time() - cpu) / len(sessions) * 1000.0
    totals = []
    for items in sessions:
        started = time.perf_counter()
        semsr.recommend(items, k=20, context=context, callbacks=[JsonlTracer(trace_path)])
        totals.append(time.perf_counter() - started)
    per_node: dict[str, list[float]] = {}
    for record in read_trace(trace_path):
        if record.get("type") == "node":
            per_node.setdefault(record["node"], []).append(record["seconds"])
    trace_path.unlink(missing_ok=True)
    n = len(totals)
    # nodes on the critical path: validate, then the slowest branch, then fuse and explain
    branches = [
        [
            a + b + c
            for a, b, c in zip(per_node["infer_intent"], per_node["clarify"], per_node["intent_retrieval"], strict=True)
        ],
        per_node["session_models"],
        per_node["session_semantics"],
        per_node["llm_proposals"],
    ]
    critical = [
        per_node["validate"][i] + max(branch[i] for branch in branches) + per_node["fuse"][i] + per_node["explain"][i]
        for i in range(n)
    ]
    overhead = [t - c for t, c in zip(totals, critical, strict=True)]
    return {
        "requests": n,
        "profile": profile,
        "use_llm": uses_llm,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_ms_per_request": round(cpu_ms, 2),
        "untraced": _percentiles(untraced),
        "end_to_end": _percentiles(totals),
        "nodes": {node: _percentiles(values) for node, values in sorted(per_node.items())},
        "graph_overhead": _percentiles(overhead),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--llm-requests", type=int, default=30, help="Requests for the cached-LLM pass (0: skip).")
    parser.add_argument("--name", default="graph_latency", help="Results file stem under benchmarks/results/.")
    args = parser.parse_args()
    from graphs.api import SemSR
    from semsr.settings import apply_threads, load_settings

    settings = load_settings()
    apply_threads(settings)
    semsr = SemSR(settings)
    RESULTS.mkdir(exist_ok=True)
    runs = [measure(semsr, args.requests, profile=settings.profile)]
    if args.llm_requests:
        try:
            runs.append(measure(semsr, args.llm_requests, profile="fused-llm"))
        except Exception as error:  # no local LLM runtime installed: report it instead of failing
            runs.append({"use_llm": True, "error": f"{type(error).__name__}: {error}"})
    result = {"machine": f"{os.cpu_count()} CPU cores", "threads": settings.threads, "runs": runs}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    head = f"# Graph latency (one request, CPU; SEMSR_THREADS={settings.threads})"
    lines = [head, "", "| run | part | p50 ms | p95 ms |", "|---|---|---:|---:|"]
    for run in runs:
        label = "cached LLM" if run["use_llm"] else "no LLM"
        if "error" in run:
            lines.append(f"| {label} | error: {run['error']} | | |")
            continue
        plain, traced, load = run["untraced"], run["end_to_end"], run["load_average"]
        lines.append(f"| {label} | end to end, no tracer | {plain['p50_ms']} | {plain['p95_ms']} |")
        lines.append(f"| {label} | end to end, traced | {traced['p50_ms']} | {traced['p95_ms']} |")
        lines.append(f"| {label} | CPU ms per request (all threads) | {run['cpu_ms_per_request']} | |")
        lines.append(f"| {label} | load average before / after ({os.cpu_count()} cores) | {load[0]} | {load[1]} |")
        for node, values in run["nodes"].items():
            lines.append(f"| {label} | {node} | {values['p50_ms']} | {values['p95_ms']} |")
        overhead = run["graph_overhead"]
        lines.append(f"| {label} | graph overhead | {overhead['p50_ms']} | {overhead['p95_ms']} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
