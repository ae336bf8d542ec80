"""The LangGraph server under load: concurrent runs with a slow LLM, the LLM's own timeout, and clients that leave.

Serves the ``fused-llm`` profile (both LLM sources: intent and the LLM recommender) of a CSV slice of the
settings' dataset (its latest-ending ``--sessions`` sessions) with ``langgraph dev`` on 127.0.0.1, its
LLM a local fake that answers every call validly after ``--llm-delay`` seconds (``llm.cache_mode=live``:
every request really waits on it). Three phases, each against a fresh server:

1. ``--requests`` ``POST /runs/wait`` at ``--concurrency`` (test sessions of the slice): errors, p50/p95,
   throughput, how many answers were flagged degraded;
2. the same with ``llm.call_timeout`` below the LLM's delay (``--timeout-requests`` requests): every answer
   must come within the bound, flagged ``LLM timeout``;
3. ``--leave`` runs on threads whose clients hang up after 0.5 s, without saying ``on_disconnect``: the
   server must cancel them (``semsr/web.py`` makes ``"cancel"`` the default).

Run: ``python -m benchmarks.server_load`` (about 2 minutes on 2 cores); writes
``benchmarks/results/server_load.json``. The home is ``SEMSR_HOME/bench/server-load`` (prepared once).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fakes and server helpers

from fakes.openai_chat import CHAT, tool_call
from fakes.openai_http import FakeOpenAIServer, Reply, Request
from server_helpers import JOBS, free_port, start_langgraph, stop, wait_until_ready

RESULTS = Path(__file__).parent / "results"
INTENT = {
    "summary": "care products like the ones viewed",
    "categories": ["beauty"],
    "attributes": {},
    "keywords": ["cream", "hair", "nail"],
    "confidence": 0.9,
}
TITLES = {"titles": ["moisturizing face cream", "nail polish top coat", "shampoo for dry hair"]}


def slow_llm(delay: float) -> FakeOpenAIServer:
    """A fake chat endpoint answering each forced function call validly after ``delay`` seconds."""

    def answer(request: Request) -> Reply:
        function = (request.json or {})["tools"][0]["function"]
        arguments = TITLES if "titles" in function["parameters"].get("properties", {}) else INTENT
        return tool_call(function["name"], arguments, delay=delay)

    server = FakeOpenAIServer()
    server.route(CHAT, answer)
    return server


def prepare_home(home: Path, sessions: int, llm_url: str) -> tuple[str, list[list[Any]]]:
    """Write the slice, prepare ``fused-llm`` on it (fast LLM), return its dataset spec and test sessions."""
    from agents.config import LLMConfig
    from evals.prepare import prepare_profile
    from semsr.settings import load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol
    from sr_models.registry import SHIPPED_TUNED_DIR

    settings = load_settings()
    root = home / "data" / "slice"
    spec = f"csv:{root}"
    if not (root / "interactions.csv").exists():
        full = load_dataset(settings.dataset)
        chosen = sorted(full.sessions, key=lambda s: s.end_time)[-sessions:]
        used = sorted({i for s in chosen for i in s.items})
        root.mkdir(parents=True, exist_ok=True)
        items = [[full.catalog.ids[i], full.catalog.titles[i]] for i in used]
        rows = [[s.session_id, full.catalog.ids[i], t] for s in chosen for i, t in zip(s.items, s.times, strict=True)]
        with (root / "items.csv").open("w", newline="") as sink:
            csv.writer(sink).writerows([["item_id", "title"], *items])
        with (root / "interactions.csv").open("w", newline="") as sink:
            csv.writer(sink).writerows([["session_id", "item_id", "timestamp"], *rows])
    for model in ("vsknn", "sr", "title-knn"):
        target = home / "tuned" / root.name / f"{model}.json"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SHIPPED_TUNED_DIR / settings.dataset / f"{model}.json", target)
    llm = LLMConfig(base_url=llm_url, model="fake-model", cache_mode="live", http_retries=0)
    local = settings.model_copy(update={"home": home, "dataset": spec, "threads": 1, "progress": False, "llm": llm})
    protocol = build_protocol(load_dataset(spec), local.protocol)
    prepare_profile("fused-llm", protocol, local, progress=False)
    catalog = protocol.dataset.catalog
    return spec, [[catalog.ids[i] for i in case.prompt] for case in protocol.test.cases]


def post(url: str, body: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.status, json.loads(answer.read())


def load(base: str, sessions: list[list[Any]], requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` stateless runs at ``concurrency``: errors, latency percentiles, throughput, degraded."""

    def one(n: int) -> tuple[float, str | None, list[str]]:
        body = {"assistant_id": "semsr", "input": {"items": sessions[n % len(sessions)], "k": 10}}
        started = time.perf_counter()
        try:
            status, output = post(f"{base}/runs/wait", body, timeout=120)
        except (OSError, urllib.error.URLError, ValueError) as error:
            return time.perf_counter() - started, f"{type(error).__name__}: {error}", []
        seconds = time.perf_counter() - started
        if status != 200 or len(output.get("recommendations") or []) != 10:
            return seconds, f"HTTP {status}: {str(output)[:200]}", []
        return seconds, None, list(output.get("degraded") or [])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    seconds = np.asarray([s for s, error, _ in outcomes if error is None] or [float("nan")])
    errors = [error for _, error, _ in outcomes if error is not None]
    degraded = [notes for _, error, notes in outcomes if error is None and notes]
    reasons = sorted({note.split(" (")[0] for notes in degraded for note in notes})
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_examples": errors[:3],
        "p50_s": round(float(np.percentile(seconds, 50)), 3),
        "p95_s": round(float(np.percentile(seconds, 95)), 3),
        "max_s": round(float(np.max(seconds)), 3),
        "wall_s": round(wall, 2),
        "throughput_rps": round(requests / wall, 2),
        "degraded_answers": len(degraded),
        "degraded_reasons": reasons,
    }


def leave(base: str, sessions: list[list[Any]], runs: int) -> dict[str, Any]:
    """``runs`` runs on their own threads whose clients hang up after 0.5 s; the statuses the server records."""
    threads = []
    for n in range(runs):
        _, thread = post(f"{base}/threads", {}, timeout=30)
        body = {"assistant_id": "semsr", "input": {"items": sessions[n], "k": 10}}  # cancel: the server's default
        with contextlib.suppress(OSError, urllib.error.URLError):  # the client goes away, as intended
            post(f"{base}/threads/{thread['thread_id']}/runs/wait", body, timeout=0.5)
        threads.append(thread["thread_id"])
    time.sleep(3)
    statuses = []
    for thread in threads:
        with urllib.request.urlopen(f"{base}/threads/{thread}/runs", timeout=30) as answer:
            statuses += [run["status"] for run in json.loads(answer.read())]
    return {"runs": runs, "client_timeout_s": 0.5, "statuses": statuses}


def serve(
    home: Path, spec: str, llm_url: str, call_timeout: float, log: Path, phase: Any, jobs: int = JOBS
) -> dict[str, Any]:
    port = free_port()
    env = {
        "SEMSR_PROFILE": "fused-llm",
        "SEMSR_LLM__BASE_URL": llm_url,
        "SEMSR_LLM__MODEL": "fake-model",
        "SEMSR_LLM__CACHE_MODE": "live",
        "SEMSR_LLM__HTTP_RETRIES": "0",
        "SEMSR_LLM__CALL_TIMEOUT": str(call_timeout),
        "SEMSR_PROGRESS": "false",
    }
    server = start_langgraph(home, spec, port, log, env=env, jobs=jobs)
    try:
        wait_until_ready(server, port, log)
        return phase(f"http://127.0.0.1:{port}")
    finally:
        stop(server)


def main(argv: list[str] | None = None) -> None:
    from semsr.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--llm-delay", type=float, default=2.0, help="seconds the fake LLM takes per reply")
    parser.add_argument("--timeout-requests", type=int, default=32)
    parser.add_argument("--leave", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=700)
    parser.add_argument("--jobs", type=int, default=JOBS, help="the server's --n-jobs-per-worker (1: the dev default)")
    parser.add_argument("--out", type=Path, default=RESULTS / "server_load.json")
    args = parser.parse_args(argv)
    home = load_settings().home / "bench" / "server-load"
    with slow_llm(0) as fast:
        spec, sessions = prepare_home(home, args.sessions, fast.url)
    log = home / "server.log"
    with slow_llm(args.llm_delay) as llm:
        loaded = serve(
            home, spec, llm.url, 30.0, log, lambda b: load(b, sessions, args.requests, args.concurrency), args.jobs
        )
        bound = args.llm_delay / 2
        timed = serve(
            home,
            spec,
            llm.url,
            bound,
            log,
            lambda b: load(b, sessions, args.timeout_requests, args.concurrency),
            args.jobs,
        )
        left = serve(home, spec, llm.url, 30.0, log, lambda b: leave(b, sessions, args.leave), args.jobs)
        llm_calls = len(llm.calls(CHAT))
    result = {
        "server": f"langgraph dev --n-jobs-per-worker {args.jobs} (tests/server_helpers.py), 127.0.0.1",
        "profile": "fused-llm",
        "dataset": f"latest {args.sessions} sessions of {load_settings().dataset} (csv slice)",
        "llm_delay_s": args.llm_delay,
        "load": {**loaded, "llm_call_timeout_s": 30.0},
        "llm_timeout": {**timed, "llm_call_timeout_s": bound},
        "client_leaves": left,
        "llm_calls": llm_calls,
        "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: CPU work per request waits
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
