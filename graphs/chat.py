"""The chat-shaped side of the graph: a human message on ``messages`` in, an AI message with the answer out.

A turn is a chat turn when the thread's newest message is a human one (not yet answered). Its text is what
the shopper said (the turn's ``query``); item ids ride along either in the message's ``additional_kwargs``
(``items``, ``exclude``, ``must_include``, ``must_not_include``, ``k``: what a program sends) or in the text
as ``#ID`` tokens (what a person types in a chat client: ``"like #5788 but cheaper"``). A ``#`` token that
is a well-formed id of the catalogue is taken out of the text and read as an item (unknown ones are
reported like any unknown id; in a catalogue of string ids only a known one is an item); anything else
stays text.

The AI message's content is a short plain-text list (titles and each item's strongest reason); the whole
structured answer rides in ``additional_kwargs["semsr"]`` for programs. The query is never echoed back:
it is the shopper's data, not text to put in front of another model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from graphs.explain import short
from graphs.state import RecommendedItem, State
from sessiondata.errors import InvalidRequest
from sessiondata.ids import parse_item_id
from sessiondata.schema import Catalog

_HASH_ID = re.compile(r"(?<![\w#])#([^\s#,;.!?()\[\]{}]+)")
TITLE_CHARS = 70
TURN_KEYS = ("items", "exclude", "must_include", "must_not_include", "k")


@dataclass
class HumanTurn:
    """One human message, read: its text without the id tokens, and the ids and fields it carried."""

    text: str
    items: list[Any] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # additional_kwargs among TURN_KEYS


def message_text(message: AnyMessage) -> str:
    """The message's text blocks joined by spaces (``str`` content, or a list of content blocks)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [block if isinstance(block, str) else block.get("text", "") for block in content]
    return " ".join(part for part in parts if isinstance(part, str) and part)


def pending_human(messages: Sequence[AnyMessage] | None) -> HumanMessage | None:
    """The newest message when it is a human one (this turn's), else None (an item-based turn)."""
    if messages and isinstance(messages[-1], HumanMessage):
        return messages[-1]
    return None


def read_human(message: HumanMessage, catalog: Catalog) -> HumanTurn:
    """The shopper's message: ``#ID`` tokens that are catalogue ids become items, the rest is text."""
    items: list[Any] = []

    def take(match: re.Match[str]) -> str:
        try:
            item_id = parse_item_id(catalog, match.group(1), field="messages")
        except InvalidRequest:
            return match.group(0)  # not an id of this catalogue: plain text ("#1 choice")
        if not catalog.numeric_ids and item_id not in catalog:
            return match.group(0)  # any word spells a string id: only a known one is read as an item
        items.append(item_id)
        return " "

    text = " ".join(_HASH_ID.sub(take, message_text(message)).split())
    extra = message.additional_kwargs or {}
    fields = {key: extra[key] for key in TURN_KEYS if key in extra}
    if "items" in fields:
        listed = fields.pop("items")
        if isinstance(listed, str | bytes) or not isinstance(listed, list | tuple):
            raise InvalidRequest("messages[-1].additional_kwargs.items", listed, "must be a list of item ids")
        items = [*listed, *items]
    return HumanTurn(text=text, items=items, fields=fields)


def answer_message(
    state: State, recommendations: Sequence[RecommendedItem], explanation: str, degraded: list[str]
) -> AIMessage:
    """The AI message answering a chat turn: the ranked titles as text, the full answer as data."""
    payload = {
        "profile": state.get("profile"),
        "session": state.get("session"),
        "recommendations": list(recommendations),
        "explanation": explanation,
        "degraded": degraded,
        "unknown_items": state.get("unknown_items"),
        "turn": state.get("turn"),
    }
    if recommendations:
        lines = [f"Here are {len(recommendations)} products you may like next:"]
        for row in recommendations:
            reason = row["reasons"][0]["text"] if row["reasons"] else ""
            why = f" — {reason}" if reason else ""
            lines.append(f"{row['rank']}. {short(row['title'], TITLE_CHARS)} [{row['item_id']}]{why}")
        lines.append(explanation)
    else:
        lines = [explanation or "No recommendation available."]
    if degraded:
        lines.append("Note: " + "; ".join(degraded))
    return AIMessage(content="\n".join(lines), additional_kwargs={"semsr": payload}, name="semsr")
