"""A pair of delimited files – events and items – as a dataset, plus the rules the other text loaders share.

``interactions.csv`` holds one event per row (session id, item id, time); ``items.csv`` one item per row (item
id, title, and any further columns, which become catalogue metadata). Any shop log can be exported to this
shape, so its rules – how ids are typed, what a duplicate or unknown item is – are the ones the Amazon-M2 and
RecBole loaders reuse through :func:`read_catalog`, :func:`read_events`, :func:`item_index` and
:func:`sessions_from_events`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sessiondata.errors import DataError
from sessiondata.loaders.csvio import parse_time, read_rows
from sessiondata.schema import Catalog, Dataset, ItemId, Session, build_sessions, normalise_title

# "0", "7", "-12" but not "07", "-0", "7.0" or "+7": only these round-trip through int() unchanged.
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")

Event = tuple[str, int, int]  # (session id as written, dense item index, unix time)


def typed_ids(raw: Sequence[str]) -> list[ItemId]:
    """Ids as ints when every one is written as a plain decimal integer, else as the strings themselves.

    Only canonical integers count ("7", not "07" or "7.0"), so the conversion can never merge two distinct ids
    or drop a leading zero that is part of a product code.
    """
    if raw and all(_CANONICAL_INT.fullmatch(text) for text in raw):
        return [int(text) for text in raw]
    return list(raw)


def find_file(directory: Path, name: str) -> Path:
    """``directory/name``, or ``directory/name.gz`` when only the compressed copy exists.

    When neither exists the plain path is returned, so that opening it reports the name the user asked for.
    """
    path = directory / name
    compressed = directory / f"{name}.gz"
    if not path.exists() and compressed.exists():
        return compressed
    return path


def require_directory(root: str | Path) -> Path:
    """``root`` as a directory path, or a :class:`DataError` saying it is not one."""
    directory = Path(root)
    if not directory.is_dir():
        raise DataError("not a directory (a dataset is a directory holding its files)", file=directory)
    return directory


def id_cell(value: str, *, file: Path, line: int, field: str) -> str:
    """A stripped, non-empty id cell; an empty one is an error rather than an item called ''."""
    text = value.strip()
    if not text:
        raise DataError("empty id", file=file, line=line, field=field)
    return text


def read_catalog(
    path: Path,
    *,
    id_column: str,
    title_column: str,
    required: Sequence[str] = (),
    delimiter: str = ",",
    header_transform: Callable[[str], str] | None = None,
    keep: Callable[[dict[str, str]], bool] | None = None,
    exclude: Iterable[str] = (),
) -> Catalog:
    """The items file as a :class:`Catalog`; every column but id, title and ``exclude`` becomes metadata.

    ``keep`` selects rows (Amazon-M2 keeps one locale). A repeated id is an error naming both lines, because
    keeping either copy silently would give the item an arbitrary title. Empty metadata cells become ``None``.
    """
    raw_ids: list[str] = []
    titles: list[str] = []
    columns: dict[str, list[str | None]] = {}
    first_line: dict[str, int] = {}
    skip = {id_column, title_column, *exclude}
    needed = [id_column, title_column, *required]
    for line, row in read_rows(path, needed, delimiter=delimiter, header_transform=header_transform):
        if keep is not None and not keep(row):
            continue
        item_id = id_cell(row[id_column], file=path, line=line, field=id_column)
        if item_id in first_line:
            reason = f"duplicate item id (first on line {first_line[item_id]})"
            raise DataError(reason, file=path, line=line, field=id_column, value=item_id)
        first_line[item_id] = line
        raw_ids.append(item_id)
        titles.append(normalise_title(row[title_column]))
        for column, value in row.items():
            if column not in skip:
                columns.setdefault(column, []).append(value.strip() or None)
    metadata = {column: tuple(values) for column, values in columns.items()}
    return Catalog(ids=tuple(typed_ids(raw_ids)), titles=tuple(titles), metadata=metadata)


def item_index(catalog: Catalog, value: str, *, file: Path, line: int, field: str, items_label: str) -> int:
    """Dense index of an item id read from an events file, or a :class:`DataError` naming file, line and id.

    ``items_label`` says where the item should have been (e.g. ``items.csv``) so the message points at both
    files. Numeric catalogues accept any integer spelling ("07" finds 7); string catalogues match exactly.
    """
    text = id_cell(value, file=file, line=line, field=field)
    key: ItemId | None = text
    if catalog.numeric_ids:
        try:
            key = int(text)
        except ValueError:
            key = None
    if key is None or key not in catalog:
        raise DataError(f"refers to an item missing from {items_label}", file=file, line=line, field=field, value=text)
    return catalog.index_of(key)


def read_events(
    path: Path,
    catalog: Catalog,
    *,
    items_label: str,
    session_column: str,
    item_column: str,
    time_column: str,
    delimiter: str = ",",
    header_transform: Callable[[str], str] | None = None,
) -> list[Event]:
    """Every (session id as written, item index, unix time) row of an events file, in file order."""
    columns = [session_column, item_column, time_column]
    events: list[Event] = []
    for line, row in read_rows(path, columns, delimiter=delimiter, header_transform=header_transform):
        session = id_cell(row[session_column], file=path, line=line, field=session_column)
        item = item_index(catalog, row[item_column], file=path, line=line, field=item_column, items_label=items_label)
        time = parse_time(row[time_column], file=path, line=line, field=time_column)
        events.append((session, item, time))
    return events


def sessions_from_events(events: Sequence[Event]) -> tuple[Session, ...]:
    """Group events into time-ordered sessions, typing session ids by the same rule as item ids."""
    raw = list(dict.fromkeys(session for session, _, _ in events))
    typed = dict(zip(raw, typed_ids(raw), strict=True))
    return build_sessions((typed[session], item, time) for session, item, time in events)


def load_csv_pair(
    root: str | Path,
    *,
    interactions: str = "interactions.csv",
    items: str = "items.csv",
    session_column: str = "session_id",
    item_column: str = "item_id",
    time_column: str = "timestamp",
    items_id_column: str = "item_id",
    title_column: str = "title",
    delimiter: str = ",",
    name: str | None = None,
) -> Dataset:
    """Load the ``interactions`` and ``items`` files (plain or ``.gz``) in directory ``root``.

    Times may be unix seconds or ISO-8601. The dataset is named after the directory unless ``name`` is given;
    there is no published split, so ``predefined_split`` is ``None``.
    """
    directory = require_directory(root)
    items_path = find_file(directory, items)
    interactions_path = find_file(directory, interactions)
    catalog = read_catalog(items_path, id_column=items_id_column, title_column=title_column, delimiter=delimiter)
    events = read_events(
        interactions_path,
        catalog,
        items_label=items_path.name,
        session_column=session_column,
        item_column=item_column,
        time_column=time_column,
        delimiter=delimiter,
    )
    return Dataset(
        name=name or directory.resolve().name,
        sessions=sessions_from_events(events),
        catalog=catalog,
        predefined_split=None,
        source=str(directory),
    )
