"""The whole request checked before the graph runs, so that bad input never reaches a checkpoint.

The graph's ``validate`` node checks the same things (it is the check for callers that invoke the graph
directly, such as the LangGraph server), but LangGraph saves a thread's input before its first node
runs: a request on a thread must be refused *before* ``invoke``. :func:`precheck_request` does that with
the very same parsers (:mod:`sessiondata.ids`, :mod:`graphs.turn`), raising
:class:`~sessiondata.errors.InvalidRequest` on one line: the field, the value (shortened), what is allowed.
"""

from __future__ import annotations

from typing import Any

from graphs.turn import read_turn
from sessiondata.errors import InvalidRequest
from sessiondata.ids import resolve_items
from sessiondata.schema import Catalog

MAX_THREAD_ID_CHARS = 200


def check_thread_id(thread_id: object) -> None:
    """A thread id is a non-empty string of at most 200 characters (or ``None``: no thread)."""
    if thread_id is None:
        return
    if not isinstance(thread_id, str) or not thread_id.strip() or len(thread_id) > MAX_THREAD_ID_CHARS:
        raise InvalidRequest(
            "thread_id", thread_id, f"must be a non-empty string of at most {MAX_THREAD_ID_CHARS} characters"
        )


def check_k(k: object, max_k: int) -> int:
    """``k`` as the number of products asked for: an integer from 1 to ``max_k`` (booleans are not)."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max_k:
        raise InvalidRequest("k", k, f"must be an integer from 1 to {max_k}")
    return k


def precheck_request(request: dict[str, Any], catalog: Catalog, max_k: int, *, has_session: bool) -> None:
    """Refuse ``request`` (items, k, query, exclude, title terms, messages) before any state is written.

    ``catalog`` and ``max_k`` are the served profile's; ``has_session``: the thread already holds items (or
    may: the server cannot tell), so a turn without a known item is still servable.
    """
    turn = read_turn(request, catalog)  # type: ignore[arg-type]
    check_k(request.get("k", 10) if turn.k is None else turn.k, max_k)
    items = request.get("items")
    resolved = resolve_items(catalog, [] if items is None else items, field="items")
    said = resolve_items(catalog, turn.message_items, field="messages[-1]")
    if not (resolved.indices or said.indices or has_session or turn.request["query"]):
        unknown = resolved.unknown + said.unknown
        detail = f"none of {unknown[:5]} is in the catalogue" if unknown else "the session is empty"
        raise InvalidRequest("items", items, f"no known item to recommend from, and no query: {detail}")
