"""Vectors computed elsewhere, read from a file and looked up by item id (or by text when stored).

Formats (chosen by the file suffix):

* ``.npz`` with arrays ``ids`` (n,) and ``vectors`` (n, dim), optionally ``texts`` (n,);
* ``.npy`` holding ``vectors``, with the ids one per line in ``<stem>.ids.txt`` beside it;
* ``.parquet`` with columns ``item_id`` and ``vector`` (a list of floats), optionally ``text`` — only when
  ``pyarrow`` is installed (it is not part of the pinned stack).

Item ids are compared as strings, so ``42`` in the file matches item 42 of a catalogue with integer ids.
Free text (a search query) can only be embedded when the file stores the texts; otherwise ``embed``
raises a :class:`ConfigError` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.base import EmbeddingProvider, l2_normalise, normalise_text, slug
from sessiondata.errors import ConfigError
from sessiondata.files import file_sha256

SUFFIXES = (".npz", ".npy", ".parquet")


def _read_npz(path: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    with np.load(path, allow_pickle=False) as data:
        for name in ("ids", "vectors"):
            if name not in data:
                raise ConfigError("embedder.path", str(path), f"the .npz file has no {name!r} array")
        ids = [str(value) for value in data["ids"].tolist()]
        vectors = np.asarray(data["vectors"])
        texts = [str(value) for value in data["texts"].tolist()] if "texts" in data else None
    return ids, vectors, texts


def _read_npy(path: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    ids_path = path.with_name(path.stem + ".ids.txt")
    if not ids_path.is_file():
        raise ConfigError("embedder.path", str(path), f"a .npy file needs its ids, one per line, in {ids_path}")
    ids = [line.strip() for line in ids_path.read_text().splitlines() if line.strip()]
    return ids, np.load(path, allow_pickle=False), None


def _read_parquet(path: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "embedder.path", str(path), "reading .parquet needs pyarrow, which is not installed; use .npz instead"
        ) from None
    table = pq.read_table(path)
    for name in ("item_id", "vector"):
        if name not in table.column_names:
            raise ConfigError("embedder.path", str(path), f"the parquet file has no {name!r} column")
    ids = [str(value) for value in table.column("item_id").to_pylist()]
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    texts = [str(value) for value in table.column("text").to_pylist()] if "text" in table.column_names else None
    return ids, vectors, texts


class FileEmbeddingProvider(EmbeddingProvider):
    """Precomputed vectors keyed by item id; the id names the file's content hash."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix not in SUFFIXES:
            raise ConfigError("embedder.path", str(path), f"unsupported file type; use one of {list(SUFFIXES)}")
        if not path.is_file():
            raise ConfigError("embedder.path", str(path), "file not found")
        reader = {".npz": _read_npz, ".npy": _read_npy, ".parquet": _read_parquet}[path.suffix]
        try:
            ids, vectors, texts = reader(path)
        except (OSError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError("embedder.path", str(path), f"cannot read vectors: {error}") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.shape[1] == 0:
            raise ConfigError(
                "embedder.path", str(path), f"vectors of shape {vectors.shape} do not match {len(ids)} ids"
            )
        if len(set(ids)) != len(ids):
            raise ConfigError("embedder.path", str(path), "item ids repeat")
        self.path = path
        self.vectors = l2_normalise(vectors)
        self.row_of = {item_id: row for row, item_id in enumerate(ids)}
        self.text_row = (
            {normalise_text(text): row for row, text in enumerate(texts) if normalise_text(text)} if texts else None
        )
        self._id = f"file:{slug(path.stem)}@{file_sha256(path)[:8]}"

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def has_ids(self, item_ids: Sequence[object]) -> list[object]:
        """The ids of ``item_ids`` the file lacks."""
        return [item_id for item_id in item_ids if str(item_id) not in self.row_of]

    def embed_ids(self, item_ids: Sequence[object]) -> np.ndarray:
        """Vectors of the given item ids, in order; an id missing from the file is a :class:`ConfigError`."""
        missing = self.has_ids(item_ids)
        if missing:
            raise ConfigError(
                "item_id", missing[0], f"has no vector in {self.path} ({len(missing)} of {len(item_ids)} ids missing)"
            )
        rows = np.fromiter((self.row_of[str(item_id)] for item_id in item_ids), dtype=np.int64, count=len(item_ids))
        return self.vectors[rows]

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.text_row is None:
            raise ConfigError(
                "embedder.kind", "file", f"{self.path} stores no texts, so free text (a query) cannot be embedded"
            )
        missing = [text for text in texts if text not in self.text_row]
        if missing:
            raise ConfigError("text", missing[0][:80], f"is not among the texts stored in {self.path}")
        return self.vectors[[self.text_row[text] for text in texts]]
