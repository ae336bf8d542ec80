"""The one validated in-memory form of a session dataset, whatever file format it came from.

Items are addressed by a dense integer *index* (0..n_items-1) everywhere inside SemSR: models, score
vectors and the index all use it. The dataset's own ids (``external ids``: integers for Beauty, ASIN
strings for Amazon-M2) appear only at the boundaries (CLI, ``cases.jsonl``) and are mapped through the
:class:`Catalog`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sessiondata.errors import DataError

ItemId = int | str
SessionId = int | str
SplitName = Literal["train", "test"]


@dataclass(frozen=True, slots=True)
class Session:
    """One session: item indices in viewing order, with a timestamp (unix seconds) per event."""

    session_id: SessionId
    items: tuple[int, ...]
    times: tuple[int, ...]

    @property
    def end_time(self) -> int:
        return self.times[-1]

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Catalog:
    """Items known to a dataset: external id, title and optional metadata columns per dense index."""

    ids: tuple[ItemId, ...]
    titles: tuple[str, ...]
    metadata: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    _index: dict[ItemId, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.titles):
            raise DataError(f"catalogue has {len(self.ids)} ids but {len(self.titles)} titles")
        for column, values in self.metadata.items():
            if len(values) != len(self.ids):
                raise DataError(f"metadata column has {len(values)} values for {len(self.ids)} items", field=column)
        index: dict[ItemId, int] = {}
        for position, item_id in enumerate(self.ids):
            if item_id in index:
                raise DataError("duplicate item id in the catalogue", field="item_id", value=item_id)
            index[item_id] = position
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def index_of(self, item_id: ItemId) -> int:
        """Dense index of an external id; ``KeyError`` naming the id when it is unknown."""
        try:
            return self._index[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def parse_id(self, raw: object, field: str = "item_id") -> ItemId:
        """A user-typed id as this catalogue's id type (see :func:`sessiondata.ids.parse_item_id`)."""
        from sessiondata.ids import parse_item_id

        return parse_item_id(self, raw, field=field)

    @property
    def numeric_ids(self) -> bool:
        return bool(self.ids) and isinstance(self.ids[0], int)

    def title(self, index: int) -> str:
        return self.titles[index]


@dataclass(frozen=True)
class Dataset:
    """Sessions (ordered by session, then time) plus the catalogue they refer to.

    ``predefined_split`` maps session id to ``"train"``/``"test"`` when the data ships with a published
    split (Beauty); the evaluation protocol decides whether to use it.
    """

    name: str
    sessions: tuple[Session, ...]
    catalog: Catalog
    predefined_split: dict[SessionId, SplitName] | None = None
    source: str = ""
    spec: str = ""  # how it was asked for (``amazon-beauty``, ``csv:/data/shop``): set by ``load_dataset``

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the invariants every consumer relies on; raise :class:`DataError` naming the culprit."""
        n_items = len(self.catalog)
        seen: set[SessionId] = set()
        for session in self.sessions:
            if session.session_id in seen:
                raise DataError("session appears twice", field="session_id", value=session.session_id)
            seen.add(session.session_id)
            if not session.items:
                raise DataError("session has no items", field="session_id", value=session.session_id)
            if len(session.items) != len(session.times):
                raise DataError("items and times differ in length", field="session_id", value=session.session_id)
            for item in session.items:
                if not 0 <= item < n_items:
                    raise DataError(f"session {session.session_id!r} refers to item index {item} outside the catalogue")
            if any(later < earlier for earlier, later in zip(session.times, session.times[1:], strict=False)):
                raise DataError("events are not in time order", field="session_id", value=session.session_id)
        if self.predefined_split is not None:
            missing = seen.difference(self.predefined_split)
            if missing:
                example = next(iter(missing))
                raise DataError(f"{len(missing)} sessions have no split assignment", field="session_id", value=example)

    @property
    def n_events(self) -> int:
        return sum(len(s) for s in self.sessions)

    def fingerprint(self) -> DatasetFingerprint:
        """Counts plus a content hash, so two results can tell whether they saw the same data.

        Computed once per dataset (it hashes every event: ~10 s at a million sessions, and preparing a profile
        asks for it dozens of times); the dataset is immutable, so the first answer stays right."""
        known = self.__dict__.get("_fingerprint")
        if known is not None:
            return known
        fingerprint = self._compute_fingerprint()
        object.__setattr__(self, "_fingerprint", fingerprint)
        return fingerprint

    def _compute_fingerprint(self) -> DatasetFingerprint:
        digest = hashlib.sha256()
        for session in self.sessions:
            digest.update(str(session.session_id).encode())
            digest.update(np.asarray(session.items, dtype=np.int64).tobytes())
            digest.update(np.asarray(session.times, dtype=np.int64).tobytes())
        for item_id, title in zip(self.catalog.ids, self.catalog.titles, strict=True):
            digest.update(f"{item_id}\x1f{title}\x1e".encode())
        return DatasetFingerprint(
            name=self.name,
            n_sessions=len(self.sessions),
            n_items=len(self.catalog),
            n_events=self.n_events,
            sha256=digest.hexdigest()[:16],
        )


@dataclass(frozen=True)
class DatasetFingerprint:
    name: str
    n_sessions: int
    n_items: int
    n_events: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def short(self) -> str:
        """A compact tag for cache keys and collection names."""
        return f"{self.name}-{self.sha256[:10]}"


def build_sessions(
    rows: Iterable[tuple[SessionId, int, int]],
) -> tuple[Session, ...]:
    """Group (session id, item index, time) rows into sessions, keeping the order of equal times.

    A stable sort by (session order of first appearance, time) keeps the published same-day order that
    defines next-item targets.
    """
    grouped: dict[SessionId, list[tuple[int, int]]] = {}
    for session_id, item, time in rows:
        grouped.setdefault(session_id, []).append((time, item))
    sessions = []
    for session_id, events in grouped.items():
        events.sort(key=lambda event: event[0])  # stable: equal times keep file order
        sessions.append(
            Session(
                session_id=session_id,
                items=tuple(item for _, item in events),
                times=tuple(time for time, _ in events),
            )
        )
    return tuple(sessions)


def normalise_title(raw: str) -> str:
    """HTML-unescape and collapse whitespace; titles reach prompts and embedders in this form."""
    import html

    return " ".join(html.unescape(raw).split())


def titles_of(catalog: Catalog, indices: Sequence[int]) -> list[str]:
    return [catalog.titles[i] for i in indices]
