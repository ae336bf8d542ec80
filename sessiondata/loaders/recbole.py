"""RecBole atomic files (``NAME.inter`` and ``NAME.item``) as a dataset.

Both files are tab-separated with ``field:type`` header cells, types ``token``, ``token_seq``, ``float`` and
``float_seq``. Events are keyed by ``session_id`` when the file has it, else by ``user_id`` (a user's whole
history is then one session, as RecBole's sequential models read it). SemSR needs item titles, so the ``.item``
file is required, with a ``title`` (``token`` or ``token_seq``) or ``movie_title`` field; its other fields
become catalogue metadata, kept as written (a ``token_seq`` stays one space-separated string).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sessiondata.errors import DataError
from sessiondata.loaders.csvio import read_rows
from sessiondata.loaders.csvpair import read_catalog, read_events, require_directory, sessions_from_events
from sessiondata.schema import Dataset

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SESSION_FIELDS = ("session_id", "user_id")
TITLE_FIELDS = ("title", "movie_title")
DELIMITER = "\t"


def header_parser(path: Path) -> Callable[[str], str]:
    """A ``read_rows`` header transform turning ``name:type`` into ``name``, rejecting unknown types."""

    def field_name(cell: str) -> str:
        name, sep, kind = cell.strip().partition(":")
        if not sep or kind not in FIELD_TYPES:
            reason = f"header cell must be name:type with type one of {list(FIELD_TYPES)}"
            raise DataError(reason, file=path, line=1, field=cell.strip())
        return name

    return field_name


def header_fields(path: Path) -> list[str]:
    """Field names of an atomic file, read through ``read_rows`` so that the usual file errors apply."""
    fields: list[str] = []
    parse = header_parser(path)

    def record(cell: str) -> str:
        fields.append(parse(cell))
        return fields[-1]

    rows = read_rows(path, [], delimiter=DELIMITER, header_transform=record)
    try:
        next(rows)  # reads the header (and the first row: a header-only file is an error like any other)
    finally:
        rows.close()
    return fields


def pick_field(path: Path, candidates: Sequence[str], *, role: str, spelled: str) -> str:
    """The first of ``candidates`` in the file's header, or an error naming the role and accepted spellings."""
    fields = header_fields(path)
    for candidate in candidates:
        if candidate in fields:
            return candidate
    reason = f"missing {role} column; need one of {spelled}; the header has {fields}"
    raise DataError(reason, file=path, line=1, field=candidates[0])


def find_inter(directory: Path, name: str | None) -> Path:
    """``NAME.inter`` (NAME: ``name`` or the directory's name), else the only ``.inter`` file there is."""
    stem = name or directory.resolve().name
    path = directory / f"{stem}.inter"
    if path.exists() or name is not None:
        return path
    found = sorted(directory.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    reason = f"expected {path.name} or exactly one .inter file; found {[p.name for p in found]}"
    raise DataError(reason, file=directory)


def load_recbole(root: str | Path, *, name: str | None = None) -> Dataset:
    """Load ``NAME.inter`` and ``NAME.item`` from directory ``root``; the dataset is named NAME."""
    directory = require_directory(root)
    inter_path = find_inter(directory, name)
    stem = inter_path.name.removesuffix(".inter")
    item_path = directory / f"{stem}.item"
    if not item_path.exists():
        raise DataError("RecBole item file not found (SemSR needs item titles)", file=item_path)
    title = pick_field(
        item_path, TITLE_FIELDS, role="title", spelled="title:token_seq, title:token, movie_title:token_seq"
    )
    catalog = read_catalog(
        item_path,
        id_column="item_id",
        title_column=title,
        delimiter=DELIMITER,
        header_transform=header_parser(item_path),
    )
    session = pick_field(inter_path, SESSION_FIELDS, role="session key", spelled="session_id:token, user_id:token")
    events = read_events(
        inter_path,
        catalog,
        items_label=item_path.name,
        session_column=session,
        item_column="item_id",
        time_column="timestamp",
        delimiter=DELIMITER,
        header_transform=header_parser(inter_path),
    )
    return Dataset(
        name=name or stem,
        sessions=sessions_from_events(events),
        catalog=catalog,
        predefined_split=None,
        source=str(directory),
    )
