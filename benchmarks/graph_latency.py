"""Latency of one recommendation request through the compiled graph, on this machine's CPU.

Measures end-to-end and per-node p50/p95 for single requests (real Beauty test sessions), without the
LLM and with a cached LLM (the response cache answers after a warm-up pass), and the graph's own
overhead: end-to-end time minus the time spent inside the nodes.

Run: ``python -m benchmarks.graph_latency [--requests 200]``; writes
``benchmarks/results/graph_latency.json`` and ``.md``.
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


def measure(semsr: Any, requests: int, *, use_llm: bool) -> dict[str, object]:
    from graphs.context import Context
    from graphs.tracing import JsonlTracer, read_trace

    recommend = semsr.recommend
    context = Context(use_llm=use_llm, fusion="weighted")
    res = semsr.services.resources(context)
    cases = res.protocol.test.cases[:requests]
    sessions = [[res.catalog.ids[i] for i in case.prompt] for case in cases]
    recommend(sessions[0], k=20, context=context)  # load models, index, embeddings
    if use_llm:  # warm the response cache so the timed pass measures cached LLM calls
        for items in sessions:
            recommend(items, k=20, context=context)
    trace_path = RESULTS / f".trace-{os.getpid()}.jsonl"
    trace_path.unlink(missing_ok=True)
    totals = []
    for items in sessions:
        started = time.perf_counter()
        recommend(items, k=20, context=context, callbacks=[JsonlTracer(trace_path)])
        totals.append(time.perf_counter() - started)
    per_node: dict[str, list[float]] = {}
    for record in read_trace(trace_path):
        if record.get("type") == "node":
            per_node.setdefault(record["node"], []).append(record["seconds"])
    trace_path.unlink(missing_ok=True)
    # nodes on the critical path: validate, then the slowest branch, then fuse
    branch_intent = [
        a + b + c
        for a, b, c in zip(
            per_node.get("infer_intent", []),
            per_node.get("clarify", []),
            per_node.get("intent_retrieval", []),
            strict=True,
        )
    ]
    critical = [
        v + max(i, s, m) + f
        for v, i, s, m, f in zip(
            per_node["validate"],
            branch_intent,
            per_node["sr_rerank"],
            per_node["session_semantics"],
            per_node["fuse"],
            strict=True,
        )
    ]
    overhead = [t - c for t, c in zip(totals, critical, strict=True)]
    return {
        "requests": len(sessions),
        "use_llm": use_llm,
        "end_to_end": _percentiles(totals),
        "nodes": {node: _percentiles(values) for node, values in sorted(per_node.items())},
        "graph_overhead": _percentiles(overhead),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--llm-requests", type=int, default=30, help="Requests for the cached-LLM pass (0: skip).")
    args = parser.parse_args()
    from graphs.api import SemSR
    from semsr.settings import apply_threads, load_settings

    settings = load_settings()
    apply_threads(settings)
    semsr = SemSR(settings)
    RESULTS.mkdir(exist_ok=True)
    runs = [measure(semsr, args.requests, use_llm=False)]
    if args.llm_requests:
        try:
            runs.append(measure(semsr, args.llm_requests, use_llm=True))
        except Exception as error:  # no local LLM runtime installed: report it instead of failing
            runs.append({"use_llm": True, "error": f"{type(error).__name__}: {error}"})
    result = {"machine": f"{os.cpu_count()} CPU cores", "threads": settings.threads, "runs": runs}
    (RESULTS / "graph_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Graph latency (one request, CPU)", "", "| run | part | p50 ms | p95 ms |", "|---|---|---:|---:|"]
    for run in runs:
        label = "cached LLM" if run["use_llm"] else "no LLM"
        if "error" in run:
            lines.append(f"| {label} | error: {run['error']} | | |")
            continue
        lines.append(f"| {label} | end to end | {run['end_to_end']['p50_ms']} | {run['end_to_end']['p95_ms']} |")
        for node, values in run["nodes"].items():
            lines.append(f"| {label} | {node} | {values['p50_ms']} | {values['p95_ms']} |")
        overhead = run["graph_overhead"]
        lines.append(f"| {label} | graph overhead | {overhead['p50_ms']} | {overhead['p95_ms']} |")
    (RESULTS / "graph_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
