"""External item ids typed by a caller (a CLI argument, a JSON request, a tool call) -> catalogue ids.

The one parser every entry point uses. The rules are strict, because an id silently read as something
else recommends the wrong products:

* an integer catalogue (Beauty) takes ``int`` values and strings spelling an integer (``"5788"``,
  surrounding whitespace allowed); a string catalogue (Amazon-M2 ASINs) takes strings only;
* booleans, floats, bytes, lists, dicts, ``None``, empty or over-long strings and integers outside 64 bits
  are errors, and so is a request of more than ``MAX_ITEMS`` ids;
* a well-formed id that the catalogue lacks is *unknown*: reported, skipped, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sessiondata.errors import InvalidRequest
from sessiondata.schema import Catalog, ItemId

MAX_ID_CHARS = 200
MAX_ITEMS = 10_000  # ids in one request (a session longer than this is not a shopper's)
INT64 = 2**63
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


def parse_item_id(catalog: Catalog, raw: object, *, field: str = "items") -> ItemId:
    """``raw`` as an id of ``catalog``'s type (it may still be unknown); :class:`InvalidRequest` if malformed."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        kind = "integers or strings spelling them" if catalog.numeric_ids else "strings"
        raise InvalidRequest(field, raw, f"an item id must be one of {kind}, not {type(raw).__name__}")
    if isinstance(raw, int):
        if not catalog.numeric_ids:
            raise InvalidRequest(field, raw, "item ids of this dataset are strings; quote the id")
        if not -INT64 <= raw < INT64:
            raise InvalidRequest(field, raw, "an integer item id fits in 64 bits (at most 19 digits)")
        return raw
    text = raw.strip()
    if not text:
        raise InvalidRequest(field, raw, "an item id cannot be empty")
    if len(text) > MAX_ID_CHARS:
        raise InvalidRequest(field, raw, f"an item id has at most {MAX_ID_CHARS} characters")
    if not catalog.numeric_ids:
        return text
    if not _INTEGER.fullmatch(text) or not -INT64 <= int(text) < INT64:
        raise InvalidRequest(field, raw, "item ids of this dataset are integers (64-bit, at most 19 digits)")
    return int(text)


@dataclass(frozen=True)
class ResolvedItems:
    """Known items as dense indices (input order kept) and the well-formed ids the catalogue lacks."""

    indices: list[int] = field(default_factory=list)
    unknown: list[ItemId] = field(default_factory=list)

    def ids(self, catalog: Catalog) -> list[ItemId]:
        return [catalog.ids[i] for i in self.indices]


def resolve_items(catalog: Catalog, values: object, *, field: str = "items") -> ResolvedItems:
    """Parse every value of a list of ids; malformed ones raise, unknown ones are collected.

    ``values`` must be a list or tuple: a bare string (``"5788"``) or bytes would otherwise be read as a
    sequence of one-character ids.
    """
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise InvalidRequest(field, values, "must be a list of item ids, e.g. [5788, 12093]")
    if len(values) > MAX_ITEMS:
        raise InvalidRequest(field, f"{len(values)} ids", f"takes at most {MAX_ITEMS:,} item ids per request")
    resolved = ResolvedItems()
    for position, raw in enumerate(values):
        item_id = parse_item_id(catalog, raw, field=f"{field}[{position}]")
        if item_id in catalog:
            resolved.indices.append(catalog.index_of(item_id))
        else:
            resolved.unknown.append(item_id)
    return resolved


def require_known(catalog: Catalog, values: Sequence[object], *, field: str = "items") -> list[int]:
    """Dense indices of ``values``, where an unknown id is an error too (tools that must not skip ids)."""
    resolved = resolve_items(catalog, list(values), field=field)
    if resolved.unknown:
        raise InvalidRequest(
            field, resolved.unknown[0], f"unknown item id: not in the catalogue ({len(catalog)} items)"
        )
    return resolved.indices
