"""Start ``langgraph dev`` (the real LangGraph server, from the repository's langgraph.json) on 127.0.0.1.

Shared by the tests that need a real server: each start costs ~10 s, so a test module starts one and
every test in it talks to that one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nothing listens on (bound and released; the OS does not hand it out again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


JOBS = 16  # runs the dev server executes at once (`langgraph dev` runs one at a time unless told)


def start_langgraph(
    home: Path, dataset: str, port: int, log: Path, *, env: dict[str, str] | None = None, jobs: int = JOBS
) -> subprocess.Popen:
    """``langgraph dev`` serving SEMSR_HOME ``home`` and dataset ``dataset`` on 127.0.0.1:``port``, with
    ``jobs`` concurrent runs; ``env`` adds settings (``SEMSR_LLM__*``)."""
    binary = str(Path(sys.executable).parent / "langgraph")
    command = [binary, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--config", str(REPO / "langgraph.json"), "--n-jobs-per-worker", str(jobs)]
    env = {
        **os.environ,
        "SEMSR_HOME": str(home),
        "SEMSR_DATASET": dataset,
        "SEMSR_THREADS": "1",
        "LANGSMITH_TRACING": "false",
        **(env or {}),
    }
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_until_ready(server: subprocess.Popen, port: int, log: Path, timeout: float = 180) -> None:
    """Block until ``GET /ok`` answers 200; fail with the server's log if it exits or never answers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if server.poll() is not None:
                raise AssertionError("langgraph dev exited: " + log.read_text()[-3000:]) from None
            time.sleep(0.5)
    raise AssertionError("langgraph dev did not start in time: " + log.read_text()[-3000:])


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)
