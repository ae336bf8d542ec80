"""``semantic_search``: the LangChain tool an agent (or the graph) calls to retrieve catalogue items by meaning.

The query is free text, a session (item ids, whose mean title vector is searched and which are themselves
excluded), or both (the two unit vectors are averaged). The tool answers with ``content_and_artifact``: a
short ranked list an LLM can read, and the full payload (ids, indices, titles, scores) as the artefact for
code such as the fusion node. Bad input raises :class:`~sessiondata.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from embeddings.session import session_vectors
from sessiondata.errors import ConfigError
from tools.chroma_index import CatalogIndex, Hit

TOOL_NAME = "semantic_search"
TITLE_CHARS = 90


class SemanticSearchArgs(BaseModel):
    """Arguments of :data:`TOOL_NAME`; at least one of ``query`` and ``item_ids`` is needed."""

    query: str | None = Field(None, description="What the shopper is looking for, in words.")
    item_ids: list[int | str] | None = Field(None, description="Item ids of the current session (oldest first).")
    k: int = Field(10, description="How many items to return (1..catalogue size).")
    exclude_ids: list[int | str] = Field(default_factory=list, description="Item ids that must not be returned.")
    filters: dict[str, Any] | None = Field(None, description="Chroma metadata filter, e.g. {'asin': 'B0001'}.")


def search(
    index: CatalogIndex,
    query: str | None = None,
    item_ids: list[int | str] | None = None,
    k: int = 10,
    exclude_ids: list[int | str] | None = None,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    """Run one semantic search (the tool's logic, callable without LangChain)."""
    exclude = list(exclude_ids or [])
    if query is None and not item_ids:
        raise ConfigError("query", query, "give a query text, session item_ids, or both")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise ConfigError("query", query, "is empty or whitespace; there is nothing to search for")
    if query is None:
        return index.query_items(item_ids or [], k, exclude_ids=exclude, filters=filters)
    if not item_ids:
        return index.query_text(query, k, exclude_ids=exclude, filters=filters)
    text_vector = index.provider.embed([query])[0]
    session_vector = session_vectors(index.item_vectors(item_ids), [range(len(item_ids))], "mean")[0]
    combined = (text_vector + session_vector)[None, :]
    return index.query_vectors(combined, k, exclude_ids=[*exclude, *item_ids], filters=filters)[0]


def _content(hits: list[Hit], query: str | None, item_ids: list[int | str] | None) -> str:
    about = " and ".join(
        part
        for part in (f"query {query!r}" if query else "", f"a session of {len(item_ids)} items" if item_ids else "")
        if part
    )
    if not hits:
        return f"No catalogue items match {about}."
    lines = [f"Top {len(hits)} catalogue items for {about} (cosine similarity):"]
    for rank, hit in enumerate(hits, start=1):
        title = hit.title if len(hit.title) <= TITLE_CHARS else hit.title[: TITLE_CHARS - 3] + "..."
        lines.append(f"{rank}. [{hit.item_id}] {title} ({hit.score:.3f})")
    return "\n".join(lines)


def make_semantic_search_tool(index: CatalogIndex) -> StructuredTool:
    """The ``semantic_search`` tool bound to ``index``."""

    def run(
        query: str | None = None,
        item_ids: list[int | str] | None = None,
        k: int = 10,
        exclude_ids: list[int | str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        hits = search(index, query, item_ids, k, exclude_ids, filters)
        artifact = {
            "query": query,
            "item_ids": list(item_ids or []),
            "k": k,
            "collection": index.name,
            "embedder": index.provider.id,
            "items": [
                {"item_id": hit.item_id, "index": hit.index, "title": hit.title, "score": round(hit.score, 6)}
                for hit in hits
            ],
        }
        return _content(hits, query, item_ids), artifact

    return StructuredTool.from_function(
        func=run,
        name=TOOL_NAME,
        description=(
            "Find catalogue products similar in meaning to a text query and/or to the items of the current "
            f"session (by title embeddings). The catalogue has {len(index.catalog)} items."
        ),
        args_schema=SemanticSearchArgs,
        response_format="content_and_artifact",
    )
