"""The Python interface: ``recommend(items, k=..., thread_id=...)`` on the one compiled graph.

Without a ``thread_id`` each call is independent. With one, the session is kept in a SQLite checkpointer
(``<home>/threads.sqlite``): a later call on the same thread appends the newly viewed items ("the shopper
also viewed X") and returns updated recommendations. When the graph asks a clarifying question (low
intent confidence and ``clarify_below`` set), the answer carries ``question``; call :func:`answer` with
the shopper's reply to resume.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from langgraph.types import Command
from pydantic import BaseModel, Field

from graphs.context import Context
from graphs.graph import compile_graph
from graphs.resources import InvalidSession, current_config

_graphs: dict[str, Any] = {}
_lock = threading.Lock()


class Answer(BaseModel):
    """What the graph returns to an assistant."""

    recommendations: list[dict[str, Any]] = Field(default_factory=list)
    explanation: str = ""
    intent: dict[str, Any] | None = None
    degraded: list[str] = Field(default_factory=list)
    unknown_items: list[Any] = Field(default_factory=list)
    cold_items: list[Any] = Field(default_factory=list)
    session: list[Any] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    question: str | None = None
    thread_id: str | None = None


def checkpoint_path() -> Path:
    return current_config().home / "threads.sqlite"


def graph(*, persistent: bool) -> Any:
    """The compiled graph; the persistent one checkpoints threads to SQLite."""
    key = "persistent" if persistent else "plain"
    with _lock:
        if key not in _graphs:
            checkpointer = None
            if persistent:
                from langgraph.checkpoint.sqlite import SqliteSaver

                path = checkpoint_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                checkpointer = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
            _graphs[key] = compile_graph(checkpointer)
        return _graphs[key]


def _config(thread_id: str | None, callbacks: Sequence[Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"callbacks": list(callbacks)}
    if thread_id is not None:
        config["configurable"] = {"thread_id": thread_id}
    return config


def _to_answer(output: dict[str, Any], thread_id: str | None) -> Answer:
    interrupts = output.get("__interrupt__") or []
    question = None
    if interrupts:
        value = getattr(interrupts[0], "value", interrupts[0])
        question = value.get("question") if isinstance(value, dict) else str(value)
    fields = {k: v for k, v in output.items() if k in Answer.model_fields and v is not None}
    return Answer(**fields, question=question, thread_id=thread_id)


def recommend(
    items: Sequence[Any],
    k: int = 10,
    thread_id: str | None = None,
    *,
    context: Context | None = None,
    callbacks: Sequence[Any] = (),
    reset: bool = False,
) -> Answer:
    """Next products for a session (or for a thread's session plus ``items``)."""
    if thread_id is not None and not str(thread_id).strip():
        raise InvalidSession("thread_id", thread_id, "must be a non-empty string")
    compiled = graph(persistent=thread_id is not None)
    output = compiled.invoke(
        {"items": list(items), "k": k, "reset": reset},
        config=_config(thread_id, callbacks),
        context=context or Context(),
    )
    return _to_answer(output, thread_id)


def answer(thread_id: str, reply: str, *, context: Context | None = None, callbacks: Sequence[Any] = ()) -> Answer:
    """Resume a thread that asked a clarifying question with the shopper's reply."""
    compiled = graph(persistent=True)
    config = _config(thread_id, callbacks)
    snapshot = compiled.get_state(config)
    if not snapshot.values:
        raise InvalidSession("thread_id", thread_id, "unknown thread: start it with recommend(items, thread_id=...)")
    if not snapshot.next:
        raise InvalidSession("thread_id", thread_id, "has no pending question to answer")
    output = compiled.invoke(Command(resume=reply), config=config, context=context or Context())
    return _to_answer(output, thread_id)


def thread_session(thread_id: str) -> list[Any]:
    """The items a thread has seen so far; unknown threads are an error."""
    snapshot = graph(persistent=True).get_state({"configurable": {"thread_id": thread_id}})
    if not snapshot.values:
        raise InvalidSession("thread_id", thread_id, "unknown thread")
    return list(snapshot.values.get("session") or [])


def stream_updates(
    items: Sequence[Any], k: int = 10, *, context: Context | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Node-by-node progress: yields (node name, its state update) as each node finishes."""
    compiled = graph(persistent=False)
    for chunk in compiled.stream({"items": list(items), "k": k}, context=context or Context(), stream_mode="updates"):
        for node, update in chunk.items():
            yield node, update or {}


def without_llm(context: Context | None = None) -> Context:
    return replace(context or Context(), use_llm=False)
