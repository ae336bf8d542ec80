"""The graph's state: narrow, typed and JSON-serialisable (ids, strings, floats, chat messages; no arrays
or tensors).

The source branches run in parallel; each writes its own entry of ``source_results`` (merged by a
reducer), so no two branches ever update one channel with conflicting values. Large objects (models, the
index, the catalogue) live in :mod:`graphs.services`, never in state: checkpointers serialise state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.channels import EphemeralValue
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # pydantic (the server's JSON schemas, MCP) needs it on Python < 3.12

ItemId = int | str


class Candidate(TypedDict):
    """One item proposed by one source: dense catalogue index and that source's raw score."""

    item: int
    score: float


class SourceResult(TypedDict, total=False):
    """What one source contributed to this request (or why it could not)."""

    source: str
    status: Literal["ok", "skipped", "degraded", "cold"]
    candidates: list[Candidate]
    note: str
    seconds: float
    texts: dict[str, str]  # LLM sources: the text that retrieved each candidate (its proposal or query)


class Reason(TypedDict):
    """Why an item is recommended, from one source's own evidence."""

    source: str
    kind: str  # co-session, followed-by, similar-title, sequence, popular, query, intent, llm-proposal
    evidence_item: ItemId | None  # the viewed item that led to it
    evidence_title: str | None
    text: str
    by: Literal["data", "llm"]  # "llm": words written by the language model, marked as such


class RecommendedItem(TypedDict):
    rank: int
    item_id: ItemId
    title: str
    score: float
    contributions: dict[str, float]
    reasons: list[Reason]


class Scored(TypedDict):
    """The fusion's ranked list before it becomes the answer (dense indices)."""

    item: int
    score: float
    contributions: dict[str, float]


def merge_results(left: dict[str, SourceResult] | None, right: dict[str, SourceResult] | None) -> dict:
    """Reducer of ``source_results``: each branch adds its own sources' entries; ``None`` (written by the
    validate node at the start of every turn) clears them, so a thread's turn never reads an earlier one's."""
    if right is None:
        return {}
    return {**(left or {}), **right}


class TurnRequest(TypedDict, total=False):
    """What this turn asked for besides its items, as the graph understood it (ids, plain strings)."""

    query: str | None  # what the shopper said: retrieval text and the intent prompt's <message>, never an order
    exclude: list[ItemId]  # known ids that must not be recommended this turn
    must_include: list[str]  # every recommended title contains each of these terms
    must_not_include: list[str]  # no recommended title contains any of these
    chat: bool  # the turn came as a human message on ``messages``: the answer is an AI message too


class InputState(TypedDict, total=False):
    """What a caller sends: the items just viewed (appended to the thread's session), the list size, and
    optionally what the shopper said (``query``) and simple constraints, or a human message on ``messages``.

    Everything but ``k`` and ``messages`` is this turn's only (an ephemeral channel): a later call on the
    same thread never repeats an earlier call's items, query or constraints; the thread keeps the session.
    """

    items: Annotated[list[Any], EphemeralValue]
    k: int
    reset: Annotated[bool, EphemeralValue]
    query: Annotated[str | None, EphemeralValue]
    exclude: Annotated[list[Any], EphemeralValue]
    must_include: Annotated[list[str], EphemeralValue]
    must_not_include: Annotated[list[str], EphemeralValue]
    messages: Annotated[list[AnyMessage], add_messages]  # LangGraph's chat channel (human in, AI out)


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    profile: dict[str, str]
    session: list[ItemId]
    recommendations: list[RecommendedItem]
    explanation: str
    intent: dict[str, Any] | None  # agents.intent.Intent as a dict, when the profile's LLM ran
    degraded: list[str]
    unknown_items: list[Any]
    cold_items: list[ItemId]
    timings: dict[str, float]
    source_candidates: dict[str, list[Candidate]]
    turn: TurnRequest
    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, OutputState, total=False):
    """Everything the nodes read and write during one request."""

    session_indices: list[int]  # every session item (all are excluded from the answer)
    window: list[int]  # the most recent ``max_session_items`` of them: what the models read
    started_at: float
    clarification: str | None
    source_results: Annotated[dict[str, SourceResult], merge_results]
    fused: list[Scored]
