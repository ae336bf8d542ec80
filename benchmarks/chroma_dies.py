"""A Chroma server dying mid-run is counted in the run's metrics.json (the bar of the hardening issue).

Setup (not measured): a real ``chroma run`` server on 127.0.0.1, a scripted OpenAI-compatible fake LLM
(tests/fakes) that always returns the same intent, the ``fused-llm`` profile prepared on a Beauty slice
with its catalogue index in that server. Then ``fused-llm`` is evaluated on the first ``--cases`` test
cases, and the Chroma server is killed (SIGKILL) once ``--kill-after`` cases are written. Reported: the
cases written, ``metrics.json``'s ``degraded`` block and whether it counts the cases after the kill.

Run: ``python -m benchmarks.chroma_dies [--cases 120] [--kill-after 40]`` (SEMSR_HOME: a scratch home);
writes ``benchmarks/results/chroma_dies.json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
INTENT = {
    "summary": "hair care",
    "categories": ["hair"],
    "keywords": ["shampoo", "conditioner", "hair"],
    "confidence": 0.9,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_chroma(data: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    binary = Path(sys.executable).parent / "chroma"
    command = [str(binary), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chroma run did not start") from None
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--kill-after", type=int, default=40)
    parser.add_argument("--slice", type=int, default=700)
    parser.add_argument("--out", type=Path, default=RESULTS / "chroma_dies.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from fakes.openai_chat import FakeChatServer, tool_call

    from agents.config import LLMConfig
    from benchmarks.fuzz_recommend import write_slice
    from evals.graph_pipelines import GraphPipeline
    from evals.harness import CASES_FILE, evaluate
    from evals.prepare import prepare_profile
    from semsr.settings import apply_threads, load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol
    from tools.config import ChromaConfig

    base = load_settings(progress=False)
    apply_threads(base)
    scratch = Path(tempfile.mkdtemp(prefix="chroma-dies-"))
    chroma, url = start_chroma(scratch / "chroma")
    replies = [tool_call("Intent", INTENT)] * 20_000
    with FakeChatServer(replies) as llm:
        llm_config = LLMConfig(base_url=llm.base_url, model="fake-model", cache_mode="live", timeout=5, http_retries=0)
        dataset = write_slice(base.home, args.slice)
        settings = base.model_copy(
            update={"dataset": dataset, "llm": llm_config, "chroma": ChromaConfig(server_url=url)}
        )
        protocol = build_protocol(load_dataset(dataset), settings.protocol)
        started = time.perf_counter()
        prepare_profile("fused-llm", protocol, settings, progress=False)
        prepare_seconds = time.perf_counter() - started
        out = scratch / "fused-llm"
        killed_at: dict[str, int] = {}

        def killer() -> None:
            path = out / CASES_FILE
            while chroma.poll() is None:
                lines = path.read_bytes().count(b"\n") if path.exists() else 0
                if lines >= args.kill_after:
                    chroma.kill()
                    killed_at["cases_written"] = lines
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=killer, daemon=True)
        watcher.start()
        pipeline = GraphPipeline("fused-llm", settings, dataset=dataset, concurrency=1)
        result = evaluate(pipeline, protocol, out, limit=args.cases, batch_size=25, progress=False)
        chroma.kill()
    metrics = json.loads((out / "metrics.json").read_text())
    degraded = metrics.get("degraded", {})
    after_kill = args.cases - killed_at.get("cases_written", args.cases)
    report = {
        "cases": args.cases,
        "chroma_killed_after_cases": killed_at.get("cases_written"),
        "cases_after_the_kill": after_kill,
        "metrics_json_degraded": degraded,
        "hr@20": metrics["metrics"].get("hr@20"),
        "counted": degraded.get("by_source", {}).get("intent", 0) >= after_kill > 0,
        "prepare_seconds": round(prepare_seconds, 1),
        "eval_seconds": result.seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
