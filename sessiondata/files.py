"""Small file helpers shared by every layer (sessiondata is the package all others may import)."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (model weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def exclusive_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` while ``target`` is built.

    Jobs that run side by side (``semsr run`` evaluating several pipelines, a server and ``semsr prepare``)
    would otherwise each build the same artefact; with the lock the second waits and then reuses the
    first's result. ``flock`` locks are released by the kernel if the process dies, so a killed run never
    leaves a stale lock behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
