"""Amazon Beauty 5-core as sessions with titles, in the layout of the bundled copy.

Directory layout: ``interactions.csv.gz`` (session_id, reviewer_id, item_id, asin, timestamp),
``items.csv.gz`` (item_id, asin, title) and ``split.csv`` (session_id, split). The published next-item
targets depend on the file order of same-day events, which :func:`build_sessions` keeps.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sessiondata.errors import DataError
from sessiondata.loaders.csvio import parse_int, parse_time, read_rows
from sessiondata.schema import Catalog, Dataset, SessionId, SplitName, build_sessions, normalise_title

BUNDLED_NAME = "amazon-beauty"


def bundled_beauty_dir() -> Path:
    """The copy shipped inside the package, so the default runs without ``../shared``."""
    return Path(str(files("sessiondata") / "bundled" / BUNDLED_NAME))


def load_amazon_beauty(root: str | Path | None = None) -> Dataset:
    """Load Beauty from ``root`` (default: the bundled copy)."""
    directory = Path(root) if root is not None else bundled_beauty_dir()
    items_path = directory / "items.csv.gz"
    interactions_path = directory / "interactions.csv.gz"
    split_path = directory / "split.csv"

    ids: list[int] = []
    titles: list[str] = []
    asins: list[str | None] = []
    first_line: dict[int, int] = {}
    for line, row in read_rows(items_path, ["item_id", "asin", "title"]):
        item_id = parse_int(row["item_id"], file=items_path, line=line, field="item_id")
        if item_id in first_line:
            raise DataError(
                f"duplicate item id (first on line {first_line[item_id]})",
                file=items_path,
                line=line,
                field="item_id",
                value=item_id,
            )
        first_line[item_id] = line
        ids.append(item_id)
        asins.append(row["asin"] or None)
        titles.append(normalise_title(row["title"]))
    catalog = Catalog(ids=tuple(ids), titles=tuple(titles), metadata={"asin": tuple(asins)})

    def rows():
        for line, row in read_rows(interactions_path, ["session_id", "item_id", "timestamp"]):
            session_id = parse_int(row["session_id"], file=interactions_path, line=line, field="session_id")
            item_id = parse_int(row["item_id"], file=interactions_path, line=line, field="item_id")
            if item_id not in catalog:
                raise DataError(
                    "interaction refers to an item missing from items.csv.gz",
                    file=interactions_path,
                    line=line,
                    field="item_id",
                    value=item_id,
                )
            time = parse_time(row["timestamp"], file=interactions_path, line=line, field="timestamp")
            yield session_id, catalog.index_of(item_id), time

    sessions = build_sessions(rows())

    split: dict[SessionId, SplitName] | None = None
    if split_path.exists():
        split = {}
        for line, row in read_rows(split_path, ["session_id", "split"]):
            session_id = parse_int(row["session_id"], file=split_path, line=line, field="session_id")
            name = row["split"].strip()
            if name not in ("train", "test"):
                raise DataError(
                    "split must be 'train' or 'test'", file=split_path, line=line, field="split", value=name
                )
            split[session_id] = name  # type: ignore[assignment]

    return Dataset(
        name=BUNDLED_NAME,
        sessions=sessions,
        catalog=catalog,
        predefined_split=split,
        source=str(directory),
    )
