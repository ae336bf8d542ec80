"""The Python interface: ``recommend(items, k=..., thread_id=...)`` on the one compiled graph.

Every answer comes from a prepared serving profile (``settings.profile`` on ``settings.dataset`` unless
the context names another) and says which one; an unprepared profile is one clear error naming
``semsr prepare`` (or, with ``allow_partial=True``, an answer from the sources that are ready, the others
listed in ``degraded``). Bad input raises :class:`~sessiondata.errors.InvalidRequest` before any state is
written. Without a ``thread_id`` each call is independent. With one, the session is kept in a SQLite checkpointer
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
from typing import Any

from langgraph.types import Command
from pydantic import BaseModel, Field

from graphs.context import Context
from graphs.graph import BranchPool, compile_graph
from graphs.precheck import check_thread_id, precheck_request
from graphs.services import ProfileServices
from graphs.threads import ThreadJanitor
from semsr.settings import Settings, load_settings
from sessiondata.errors import InvalidRequest

MAX_REPLY_CHARS = 500  # a shopper's answer to a clarifying question (the same bound as a query)


class Answer(BaseModel):
    """What the graph returns to an assistant."""

    profile: dict[str, str] = Field(default_factory=dict)
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
    turn: dict[str, Any] = Field(default_factory=dict)  # the query and constraints as the graph read them


class SemSR:
    """The graph for one settings object: the compiled graphs (with and without threads) and their services.

    ``SemSR(settings)`` is what the CLI and the harness hold; the module-level functions below use one
    built from :func:`semsr.settings.load_settings` on first use (so ``SEMSR_*`` variables apply).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.services = ProfileServices(self.settings)
        self._graphs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.branches = BranchPool(self.settings.node_threads)  # sync runs' source branches
        paths = self.settings.paths
        self.janitor = ThreadJanitor(
            paths.threads_db, ttl_days=self.settings.thread_ttl_days, keep=self.settings.thread_checkpoints
        )

    def graph(self, *, persistent: bool) -> Any:
        """The compiled graph; the persistent one checkpoints threads to SQLite (``<home>/threads.sqlite``)."""
        key = "persistent" if persistent else "plain"
        with self._lock:
            if key not in self._graphs:
                checkpointer = None
                if persistent:
                    from langgraph.checkpoint.sqlite import SqliteSaver

                    path = self.settings.paths.threads_db
                    path.parent.mkdir(parents=True, exist_ok=True)
                    checkpointer = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
                self._graphs[key] = compile_graph(self.services, checkpointer)
            return self._graphs[key]

    def recommend(
        self,
        items: Sequence[Any],
        k: int = 10,
        thread_id: str | None = None,
        *,
        context: Context | None = None,
        callbacks: Sequence[Any] = (),
        reset: bool = False,
        allow_partial: bool = False,
        query: str | None = None,
        exclude: Sequence[Any] | None = None,
        must_include: Sequence[str] | None = None,
        must_not_include: Sequence[str] | None = None,
    ) -> Answer:
        """Next products for a session (or for a thread's session plus ``items``).

        What the shopper said this turn: ``query`` (text: retrieval text, never an instruction), and simple
        constraints: ``exclude`` (item ids), ``must_include`` / ``must_not_include`` (title terms). They
        apply to this call only; see :mod:`graphs.query`. With a query, ``items`` may be empty.
        """
        check_thread_id(thread_id)
        said = {"query": query, "exclude": exclude, "must_include": must_include, "must_not_include": must_not_include}
        context = Context.coerce(context)
        if allow_partial:
            context = replace(context, allow_partial=True)
        compiled = self.graph(persistent=thread_id is not None)
        request = {"items": items, "k": k, "reset": reset, **{f: v for f, v in said.items() if v is not None}}
        has_session = False
        if thread_id is not None:
            self.janitor.sweep()
            if not reset:
                snapshot = compiled.get_state(_config(thread_id, ()))
                has_session = bool((snapshot.values or {}).get("session"))
        profile = self.services.profile(
            context.profile, context.fold, dataset=context.dataset, allow_partial=context.allow_partial
        )
        precheck_request(
            request, profile.catalog, profile.max_k, has_session=has_session
        )  # before a thread's checkpoint is written
        output = compiled.invoke(
            request,  # validated in the graph: a bare string is refused
            config=self.branches.config(_config(thread_id, callbacks)),
            context=context,
        )
        if thread_id is not None:
            self.janitor.touched(thread_id)
        return _to_answer(output, thread_id)

    def answer(
        self, thread_id: str, reply: str, *, context: Context | None = None, callbacks: Sequence[Any] = ()
    ) -> Answer:
        """Resume a thread that asked a clarifying question with the shopper's reply."""
        check_thread_id(thread_id)
        if not isinstance(reply, str) or len(reply) > MAX_REPLY_CHARS:
            raise InvalidRequest("reply", reply, f"must be text of at most {MAX_REPLY_CHARS} characters")
        compiled = self.graph(persistent=True)
        config = _config(thread_id, callbacks)
        self.janitor.sweep()
        snapshot = compiled.get_state(config)
        if not snapshot.values:
            raise InvalidRequest(
                "thread_id", thread_id, "unknown thread: start it with recommend(items, thread_id=...)"
            )
        if not snapshot.next:
            raise InvalidRequest("thread_id", thread_id, "has no pending question to answer")
        output = compiled.invoke(
            Command(resume=reply), config=self.branches.config(config), context=context or Context()
        )
        self.janitor.touched(thread_id)
        return _to_answer(output, thread_id)

    def thread_session(self, thread_id: str) -> list[Any]:
        """The items a thread has seen so far; unknown threads are an error."""
        snapshot = self.graph(persistent=True).get_state({"configurable": {"thread_id": thread_id}})
        if not snapshot.values:
            raise InvalidRequest("thread_id", thread_id, "unknown thread")
        return list(snapshot.values.get("session") or [])

    def stream_updates(
        self, items: Sequence[Any], k: int = 10, *, context: Context | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Node-by-node progress: yields (node name, its state update) as each node finishes."""
        compiled = self.graph(persistent=False)
        stream = compiled.stream(
            {"items": items, "k": k}, self.branches.config(), context=context or Context(), stream_mode="updates"
        )
        for chunk in stream:
            for node, update in chunk.items():
                yield node, update or {}


_default: SemSR | None = None
_default_lock = threading.Lock()


def default_semsr() -> SemSR:
    """The process's :class:`SemSR` from the environment's settings, built on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SemSR()
        return _default


def use_settings(settings: Settings) -> SemSR:
    """Make the module-level functions serve ``settings`` from now on (an entry point's one call)."""
    global _default
    with _default_lock:
        _default = SemSR(settings)
        return _default


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


def recommend(items: Sequence[Any], k: int = 10, thread_id: str | None = None, **options: Any) -> Answer:
    """Next products for a session (or for a thread's session plus ``items``) from the default profile.

    ``options`` are :meth:`SemSR.recommend`'s keyword arguments (``context``, ``callbacks``, ``reset``,
    ``allow_partial``, ``query``, ``exclude``, ``must_include``, ``must_not_include``), documented there once.
    """
    return default_semsr().recommend(items, k, thread_id, **options)


def answer(thread_id: str, reply: str, *, context: Context | None = None, callbacks: Sequence[Any] = ()) -> Answer:
    """Resume a thread that asked a clarifying question with the shopper's reply."""
    return default_semsr().answer(thread_id, reply, context=context, callbacks=callbacks)


def thread_session(thread_id: str) -> list[Any]:
    """The items a thread has seen so far; unknown threads are an error."""
    return default_semsr().thread_session(thread_id)


def stream_updates(
    items: Sequence[Any], k: int = 10, *, context: Context | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Node-by-node progress: yields (node name, its state update) as each node finishes."""
    return default_semsr().stream_updates(items, k, context=context)
