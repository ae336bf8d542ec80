"""The graph's state: narrow, typed and JSON-serialisable (ids, strings, floats; no arrays or tensors).

Each parallel branch writes its own key, so no two branches ever update the same channel (LangGraph
raises ``InvalidUpdateError`` otherwise). Large artefacts (models, the index, the catalogue) live in
:mod:`graphs.resources`, never in state: checkpointers serialise state on every step.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

ItemId = int | str


class Candidate(TypedDict):
    """One item proposed by one source: dense catalogue index and that source's raw score."""

    item: int
    score: float


class SourceResult(TypedDict, total=False):
    """What one source (an SR model, semantic retrieval, intent retrieval) contributed to this request."""

    source: str
    status: Literal["ok", "skipped", "degraded", "cold"]
    candidates: list[Candidate]
    note: str
    seconds: float


class Intent(TypedDict, total=False):
    """The shopper's inferred intent, as the LLM node returned it (or why there is none)."""

    summary: str
    categories: list[str]
    attributes: dict[str, str]
    keywords: list[str]
    confidence: float


class RecommendedItem(TypedDict):
    rank: int
    item_id: ItemId
    title: str
    score: float
    contributions: dict[str, float]


class InputState(TypedDict, total=False):
    """What a caller sends: the items just viewed (appended to the thread's session) and the list size."""

    items: list[Any]
    k: int
    reset: bool


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    session: list[ItemId]
    recommendations: list[RecommendedItem]
    explanation: str
    intent: Intent | None
    degraded: list[str]
    unknown_items: list[Any]
    cold_items: list[ItemId]
    timings: dict[str, float]
    source_candidates: dict[str, list[Candidate]]


class State(InputState, OutputState, total=False):
    """Everything the nodes read and write during one request."""

    session_indices: list[int]
    started_at: float
    clarification: str | None
    sr_result: dict[str, SourceResult]
    session_semantic_result: SourceResult
    intent_result: SourceResult
    intent_semantic_result: SourceResult
