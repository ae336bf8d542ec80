"""Fitted session models on disk, any kind: a JSON header naming the model and how it was built, plus the
model's own files (``state.npz`` for numpy models, safetensors + JSON for torch models). No pickle.

Preparation saves every source of a serving profile this way; serving rebuilds each with the registry and
restores it, so a request never fits a model. A directory's digest (sha256 over its files) is recorded in
the profile manifest and checked on load: a changed or truncated artefact is refused, not served.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sessiondata.errors import DataError
from sessiondata.files import file_sha256
from sr_models.base import Recommender
from sr_models.env import ModelEnv

HEADER_FILE = "model.json"
FORMAT_VERSION = 1


def save_model(model: Recommender, directory: Path) -> str:
    """Write ``model`` (fitted) into ``directory`` and return the directory's digest."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory)
    header: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "build_params": model.build_params or {},
        "params": model.params(),
        "n_items": model.n_items,
    }
    temporary = directory / (HEADER_FILE + ".tmp")
    temporary.write_text(json.dumps(header, indent=2, default=str) + "\n")
    os.replace(temporary, directory / HEADER_FILE)  # last: its presence marks a complete artefact
    return directory_digest(directory)


def directory_digest(directory: Path) -> str:
    """sha256 over the names and contents of every file in ``directory`` (sorted, recursive)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + file_sha256(path).encode() + b"\n")
    return digest.hexdigest()


def read_header(directory: Path) -> dict[str, Any]:
    path = directory / HEADER_FILE
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError("model artefact is missing or incomplete", file=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"model artefact header is not valid JSON ({error})", file=path) from None
    if not isinstance(header, dict) or header.get("format_version") != FORMAT_VERSION or "model" not in header:
        raise DataError(f"unsupported model artefact header (want format {FORMAT_VERSION})", file=path)
    return header


def load_model(directory: Path, env: ModelEnv | None = None, *, expected_digest: str | None = None) -> Recommender:
    """The fitted model saved in ``directory``; ``expected_digest`` (from a manifest) must match."""
    from sr_models.registry import build_model  # the registry imports every model module

    header = read_header(directory)
    if expected_digest is not None and directory_digest(directory) != expected_digest:
        raise DataError("model artefact changed since it was prepared (sha256 differs)", file=directory)
    model = build_model(str(header["model"]), env=env, **dict(header.get("build_params") or {}))
    model.load(directory)
    return model
