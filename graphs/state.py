"""The graph's state: narrow, typed and JSON-serialisable (ids, strings, floats; no arrays or tensors).

The source branches run in parallel; each writes its own entry of ``source_results`` (merged by a
reducer), so no two branches ever update one channel with conflicting values. Large objects (models, the
index, the catalogue) live in :mod:`graphs.services`, never in state: checkpointers serialise state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

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
    kind: str  # co-session, followed-by, similar-title, sequence, popular, intent, llm-proposal
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
    """Reducer of ``source_results``: each branch adds its own sources' entries."""
    return {**(left or {}), **(right or {})}


class InputState(TypedDict, total=False):
    """What a caller sends: the items just viewed (appended to the thread's session) and the list size."""

    items: list[Any]
    k: int
    reset: bool


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


class State(InputState, OutputState, total=False):
    """Everything the nodes read and write during one request."""

    session_indices: list[int]  # every session item (all are excluded from the answer)
    window: list[int]  # the most recent ``max_session_items`` of them: what the models read
    started_at: float
    clarification: str | None
    source_results: Annotated[dict[str, SourceResult], merge_results]
    fused: list[Scored]
