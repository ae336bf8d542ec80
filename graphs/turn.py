"""One turn's request, read and checked in the validate node: items, what the shopper said, constraints.

A turn arrives either as fields (``items``, ``query``, ``exclude``, ``must_include``, ``must_not_include``)
or as a human message on ``messages`` (:mod:`graphs.chat`), or both: the message's items follow the
fields' items, its text is the query unless ``query`` is given, its constraint lists add to the fields'.
Bad input is one :class:`~sessiondata.errors.InvalidRequest` naming the field, before any state is
written. Unknown ids (items or exclusions) are reported, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphs.chat import pending_human, read_human
from graphs.state import State, TurnRequest
from sessiondata.errors import InvalidRequest
from sessiondata.ids import resolve_items
from sessiondata.schema import Catalog

MAX_QUERY_CHARS = 500
MAX_TERMS = 10
MAX_TERM_CHARS = 60


@dataclass
class Turn:
    """This turn, parsed: the message's items (ids as sent), the request, excluded indices, unknown ids, k."""

    message_items: list[Any]
    request: TurnRequest
    exclude: list[int] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)
    k: Any = None  # from the message's additional_kwargs, checked with the request's k


def check_query(value: object, name: str = "query") -> str | None:
    """The query as one line of text (None when absent or blank); not text, or too long, is an error."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(name, value, "must be text (what the shopper said)")
    text = " ".join(value.split())
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidRequest(name, value, f"has at most {MAX_QUERY_CHARS} characters")
    return text or None


def check_terms(value: object, name: str) -> list[str]:
    """A list of title terms (each non-blank text of at most 60 characters, at most 10 of them)."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise InvalidRequest(name, value, 'must be a list of title terms, e.g. ["shampoo"]')
    if len(value) > MAX_TERMS:
        raise InvalidRequest(name, value, f"takes at most {MAX_TERMS} terms")
    terms = []
    for position, term in enumerate(value):
        if not isinstance(term, str) or not term.strip() or len(term) > MAX_TERM_CHARS:
            allowed = f"a term is non-blank text of at most {MAX_TERM_CHARS} characters"
            raise InvalidRequest(f"{name}[{position}]", term, allowed)
        terms.append(" ".join(term.split()))
    return list(dict.fromkeys(terms))


def read_turn(state: State, catalog: Catalog) -> Turn:
    """The turn in ``state`` besides its ``items`` field (see the module docstring)."""
    items: list[Any] = []
    query = check_query(state.get("query"))
    exclude_raw: list[Any] = []
    raw_exclude = state.get("exclude")
    if raw_exclude is not None:
        if isinstance(raw_exclude, str | bytes) or not isinstance(raw_exclude, list | tuple):
            raise InvalidRequest("exclude", raw_exclude, "must be a list of item ids")
        exclude_raw = list(raw_exclude)
    include = check_terms(state.get("must_include"), "must_include")
    avoid = check_terms(state.get("must_not_include"), "must_not_include")
    human = pending_human(state.get("messages"))
    k = None
    if human is not None:
        said = read_human(human, catalog)
        items = said.items
        query = query or check_query(said.text, "messages[-1].content")
        extra = said.fields
        if "exclude" in extra:
            listed = extra["exclude"]
            if isinstance(listed, str | bytes) or not isinstance(listed, list | tuple):
                raise InvalidRequest("messages[-1].additional_kwargs.exclude", listed, "must be a list of item ids")
            exclude_raw += list(listed)
        include += check_terms(extra.get("must_include"), "messages[-1].additional_kwargs.must_include")
        avoid += check_terms(extra.get("must_not_include"), "messages[-1].additional_kwargs.must_not_include")
        k = extra.get("k")
    excluded = resolve_items(catalog, exclude_raw, field="exclude")
    request = TurnRequest(
        query=query,
        exclude=excluded.ids(catalog),
        must_include=list(dict.fromkeys(include)),
        must_not_include=list(dict.fromkeys(avoid)),
        chat=human is not None,
    )
    return Turn(message_items=items, request=request, exclude=excluded.indices, unknown=excluded.unknown, k=k)
