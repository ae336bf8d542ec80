"""Amazon-M2 (KDD Cup 2023, task 1) sessions and products, one locale at a time.

``sessions_train.csv`` has ``prev_items`` (a serialised list of ASINs), ``next_item`` and ``locale``;
``products_train.csv`` has ``id``, ``locale``, ``title`` and optional attributes (price, brand, colour, size,
model, material, author, desc), which become catalogue metadata. A session is ``prev_items + [next_item]``.

The files hold no timestamps, so the order of sessions in the file stands in for time: session *i* (0-based,
counted among the rows of the chosen locale, and also its session id) gets time *i* for every one of its
events. A temporal split of this dataset is therefore a split by file order.
"""

from __future__ import annotations

import re
from pathlib import Path

from sessiondata.errors import DataError
from sessiondata.loaders.csvio import read_rows
from sessiondata.loaders.csvpair import find_file, item_index, read_catalog, require_directory
from sessiondata.schema import Catalog, Dataset, Session

# One list element: a single- or double-quoted string, or a bare run without separators or brackets.
_ELEMENT = re.compile(r"""'([^'\n]*)'|"([^"\n]*)"|([^\s,'"\[\]]+)""")
_SEPARATORS = " \t\r\n,"


def parse_item_list(text: str, *, file: Path, line: int, field: str = "prev_items") -> list[str]:
    """The ids in a serialised list cell, in order.

    Accepts numpy's ``['a' 'b']`` (which wraps long lists over several lines inside the quoted cell) and
    Python's ``['a', 'b']``. Anything else is rejected rather than guessed at, so a mangled export is noticed.
    """
    cell = text.strip()
    if not (cell.startswith("[") and cell.endswith("]")):
        raise DataError("not a list like ['B0..' 'B0..']", file=file, line=line, field=field, value=text)
    inner = cell[1:-1]
    if _ELEMENT.sub(" ", inner).strip(_SEPARATORS):
        raise DataError("malformed list of item ids", file=file, line=line, field=field, value=text)
    items = [(single or double or bare).strip() for single, double, bare in _ELEMENT.findall(inner)]
    if not all(items):
        raise DataError("list contains an empty item id", file=file, line=line, field=field, value=text)
    return items


def _locale_of(row: dict[str, str]) -> str:
    return row["locale"].strip().upper()


def _read_products(path: Path, locale: str) -> Catalog:
    """The products of one locale; an error listing the locales present when there are none."""
    seen: set[str] = set()

    def keep(row: dict[str, str]) -> bool:
        seen.add(_locale_of(row))
        return _locale_of(row) == locale

    catalog = read_catalog(
        path, id_column="id", title_column="title", required=["locale"], keep=keep, exclude=["locale"]
    )
    if not len(catalog):
        reason = f"no products for this locale; the file has {sorted(seen)}"
        raise DataError(reason, file=path, field="locale", value=locale)
    return catalog


def _read_sessions(path: Path, catalog: Catalog, products_label: str, locale: str) -> tuple[Session, ...]:
    """The sessions of one locale in file order, session id and time both the row's index in that locale."""
    sessions: list[Session] = []
    seen: set[str] = set()
    for line, row in read_rows(path, ["prev_items", "next_item", "locale"]):
        seen.add(_locale_of(row))
        if _locale_of(row) != locale:
            continue
        cells = [(raw, "prev_items") for raw in parse_item_list(row["prev_items"], file=path, line=line)]
        cells.append((row["next_item"], "next_item"))
        items = tuple(
            item_index(catalog, raw, file=path, line=line, field=field, items_label=products_label)
            for raw, field in cells
        )
        position = len(sessions)
        sessions.append(Session(session_id=position, items=items, times=(position,) * len(items)))
    if not sessions:
        raise DataError(
            f"no sessions for this locale; the file has {sorted(seen)}", file=path, field="locale", value=locale
        )
    return tuple(sessions)


def load_amazon_m2(
    root: str | Path,
    *,
    locale: str = "UK",
    sessions_file: str = "sessions_train.csv",
    products_file: str = "products_train.csv",
    name: str | None = None,
) -> Dataset:
    """Load one ``locale`` (case-insensitive) of the Amazon-M2 files in directory ``root`` (plain or ``.gz``).

    Both files are filtered by locale; an item a session names that is not among that locale's products is an
    error naming the sessions file, line, field and ASIN. The dataset is named ``amazon-m2-<locale>`` unless
    ``name`` is given; there is no published split.
    """
    directory = require_directory(root)
    wanted = locale.strip().upper()
    products_path = find_file(directory, products_file)
    sessions_path = find_file(directory, sessions_file)
    catalog = _read_products(products_path, wanted)
    products_label = f"{products_path.name} for locale {wanted}"
    sessions = _read_sessions(sessions_path, catalog, products_label, wanted)
    return Dataset(
        name=name or f"amazon-m2-{wanted.lower()}",
        sessions=sessions,
        catalog=catalog,
        predefined_split=None,
        source=str(directory),
    )
