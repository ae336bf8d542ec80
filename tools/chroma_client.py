"""Chroma clients and collection names for the catalogue index: the embedded store or a ``chroma run`` server.

Chroma runs embedded (``PersistentClient`` on a directory, by default ``<home>/chroma``) unless a server
URL is configured (``HttpClient``, e.g. against ``chroma run --path DIR --host 127.0.0.1 --port 8000``).
Telemetry is off; a server that does not answer, or a store directory that cannot be written, is one
clear :class:`~sessiondata.errors.ConfigError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from embeddings.base import slug
from sessiondata.errors import ConfigError
from tools.config import ChromaConfig


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def make_client(config: ChromaConfig, store_path: Path) -> Any:
    """A Chroma client: ``HttpClient`` when ``config.server_url`` is set, else ``PersistentClient`` on
    ``store_path`` (``config.path`` when set, else the caller's ``settings.paths.chroma``)."""
    import chromadb

    if config.server_url:
        parsed = urlparse(config.server_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError("chroma.server_url", config.server_url, "write http://HOST:PORT")
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=_chroma_settings()
            )
            client.heartbeat()
        except Exception as error:  # connection refused, DNS, TLS: all mean "no server there"
            raise ConfigError(
                "chroma.server_url", config.server_url, f"no Chroma server answers ({type(error).__name__}: {error})"
            ) from None
        return client
    path = config.path if config.path is not None else store_path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError("chroma.path", str(path), f"cannot create the directory: {error.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("chroma.path", str(path), "is not a writable directory")
    return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())


def collection_name(prefix: str, dataset_tag: str, embedder_id: str) -> str:
    """``<prefix>-<dataset tag>-<embedder id>`` reduced to Chroma's allowed characters (3..63 chars)."""
    name = slug(f"{prefix}-{dataset_tag}-{embedder_id}")
    if len(name) > 63:
        import hashlib

        name = f"{name[:54]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name
