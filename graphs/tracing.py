"""A local JSONL trace of every node of a graph run: inputs, outputs, latency, tokens.

Developers read it with ``semsr trace FILE``. LangSmith tracing is independent of this: it switches on
through LangSmith's own environment variables (``LANGSMITH_TRACING=true``, ``LANGSMITH_API_KEY``) and
nothing here needs them.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from sessiondata.errors import ConfigError


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A compact JSON-safe copy (long lists cut) so traces stay readable."""
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_jsonable(v, depth + 1) for v in list(value)[:25]]
        return [*items, f"… {len(value) - 25} more"] if len(value) > 25 else items
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)[:200]


class JsonlTracer(BaseCallbackHandler):
    """Writes one JSON line per finished graph node (and per LLM call, with token usage).

    A trace that cannot be written is an error, not a silent gap: the file is opened once here (an
    unwritable path fails before the graph runs) and a later write failure stops the run
    (``raise_error``) as a :class:`ConfigError` naming the file.
    """

    raise_error = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8"):
                pass
        except OSError as error:
            raise ConfigError("trace", str(self.path), f"cannot be written ({error.strerror or error})") from None
        self._open: dict[UUID, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _write(self, record: dict[str, Any]) -> None:
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as sink:
                sink.write(json.dumps(record, default=str) + "\n")
        except OSError as error:
            raise ConfigError("trace", str(self.path), f"write failed ({error.strerror or error})") from None

    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, metadata: dict | None = None, **kw: Any
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        name = kw.get("name") or (serialized or {}).get("name")
        if node and name == node:
            self._open[run_id] = {"node": node, "inputs": _jsonable(inputs), "started": time.perf_counter()}

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        record = self._open.pop(run_id, None)
        if record is None:
            return
        started = record.pop("started")
        self._write(
            {
                "type": "node",
                **record,
                "outputs": _jsonable(outputs),
                "seconds": round(time.perf_counter() - started, 5),
                "time": time.time(),
            }
        )

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        record = self._open.pop(run_id, None)
        if record is None:
            return
        started = record.pop("started")
        seconds = round(time.perf_counter() - started, 5)
        self._write({"type": "node", **record, "error": f"{type(error).__name__}: {error}", "seconds": seconds})

    def on_llm_end(self, response: Any, *, run_id: UUID, **kw: Any) -> None:
        usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
        self._write({"type": "llm", "usage": _jsonable(usage), "time": time.time()})


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """Records of a trace file (a torn last line is ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
