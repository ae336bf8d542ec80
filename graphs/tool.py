"""``recommend_products``: SemSR as a LangChain tool that another agent (a shopping assistant) binds.

The tool calls :meth:`graphs.api.SemSR.recommend`, i.e. the one compiled graph serving the prepared
profile, so an agent gets exactly the list ``recommend()`` gives. It answers with ``content_and_artifact``:
a short ranked list with titles and each item's reasons for the assistant's model to read, and the whole
:class:`~graphs.api.Answer` (ids, titles, scores, per-source contributions, reasons, degraded flags) as the
artefact for code. A bad request (unknown field type, k out of range, an empty session without a query)
comes back as the tool's error text, so the calling model can correct its arguments.

What the shopper said (``query``) is retrieval text for SemSR, and titles are catalogue data: neither is
an instruction, and the content never repeats the query back into the assistant's context.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

from graphs.api import Answer, SemSR, default_semsr
from graphs.context import Context
from graphs.explain import short
from sessiondata.errors import InvalidRequest

TOOL_NAME = "recommend_products"
TITLE_CHARS = 80


class RecommendProductsArgs(BaseModel):
    """Arguments of :data:`TOOL_NAME`: the shopper's viewed items and/or what they said, and constraints."""

    items: list[int | str] = Field(
        default_factory=list, description="Ids of the products the shopper viewed, oldest first."
    )
    query: str | None = Field(None, description="What the shopper said they want, in their words.")
    k: int = Field(10, description="How many products to recommend (1 to 100).")
    exclude: list[int | str] = Field(default_factory=list, description="Product ids that must not be recommended.")
    must_include: list[str] = Field(default_factory=list, description="Terms every recommended title must contain.")
    must_not_include: list[str] = Field(default_factory=list, description="Terms no recommended title may contain.")


def tool_content(answer: Answer) -> str:
    """The answer as lines a model reads: rank, id, title, reasons; then the summary and any degradation."""
    if not answer.recommendations:
        return answer.explanation or "No recommendation available."
    lines = [f"{len(answer.recommendations)} recommended products (best first):"]
    for row in answer.recommendations:
        reasons = "; ".join(reason["text"] for reason in row["reasons"][:2]) or "no specific reason"
        lines.append(f"{row['rank']}. [{row['item_id']}] {short(row['title'], TITLE_CHARS)} — {reasons}")
    lines.append(answer.explanation)
    if answer.degraded:
        lines.append("Degraded: " + "; ".join(answer.degraded))
    return "\n".join(lines)


def make_recommend_tool(semsr: SemSR | None = None, *, context: Context | None = None) -> StructuredTool:
    """The ``recommend_products`` tool over ``semsr`` (default: the process's, from the environment)."""

    def run(
        items: list[int | str] | None = None,
        query: str | None = None,
        k: int = 10,
        exclude: list[int | str] | None = None,
        must_include: list[str] | None = None,
        must_not_include: list[str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        service = semsr or default_semsr()
        try:
            answer = service.recommend(
                list(items or []),
                k,
                context=context,
                query=query,
                exclude=exclude,
                must_include=must_include,
                must_not_include=must_not_include,
            )
        except InvalidRequest as error:
            raise ToolException(f"invalid request: {error}") from None
        return tool_content(answer), answer.model_dump(mode="json")

    return StructuredTool.from_function(
        func=run,
        name=TOOL_NAME,
        description=(
            "Recommend the next products for a shopper from the products they viewed (ids, oldest first) "
            "and/or what they said they want; optional exclusions and title terms that must or must not "
            "appear. Returns the ranked products with titles and the reasons for each."
        ),
        args_schema=RecommendProductsArgs,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )
