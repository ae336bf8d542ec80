"""Trained torch models on disk: ``model.safetensors`` (tensors only) + ``config.json`` (everything else).

No pickle anywhere: safetensors holds raw tensors and JSON holds the model name, hyper-parameters, the
catalogue size and the training history, so loading an artefact from an untrusted path cannot run code.
Artefacts are cached under ``<root>/<dataset>/<model>-<key>/`` where the key hashes (model name,
hyper-parameters, TrainData.digest) and ``<root>`` is the caller's ``ModelEnv.artifact_dir``
(``settings.paths.artifacts``: ``$SEMSR_HOME/artifacts``). The number of epochs chosen on validation is
kept beside them in ``<model>-<params key>.epochs.json`` so a test-fold fit can reuse it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sessiondata.errors import ConfigError, DataError
from sessiondata.files import exclusive_lock
from sr_models.records import EpochRecord, read_record

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


def params_key(name: str, params: dict[str, Any], digest: str = "") -> str:
    payload = json.dumps({"model": name, "params": params, "digest": digest}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in part) or "data"


@dataclass(frozen=True)
class ArtifactStore:
    root: Path

    def model_dir(self, dataset: str, name: str, params: dict[str, Any], digest: str) -> Path:
        return self.root / _safe(dataset) / f"{_safe(name)}-{params_key(name, params, digest)}"

    def epochs_path(self, dataset: str, name: str, params: dict[str, Any]) -> Path:
        return self.root / _safe(dataset) / f"{_safe(name)}-{params_key(name, params)}.epochs.json"

    def read_epochs(self, dataset: str, name: str, params: dict[str, Any]) -> int | None:
        path = self.epochs_path(dataset, name, params)
        if not path.exists():
            return None
        fix = f"delete it and rerun the validation fit of {name} (semsr prepare / semsr train)"
        return read_record(path, EpochRecord, fix).best_epoch

    def write_epochs(self, dataset: str, name: str, params: dict[str, Any], record: dict[str, Any]) -> Path:
        path = self.epochs_path(dataset, name, params)
        path.parent.mkdir(parents=True, exist_ok=True)
        EpochRecord.model_validate(record)  # what is read back later must pass the same model
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
        return path


def save_artifact(directory: Path, state: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write weights and config atomically enough for a cache (config last: its presence marks completeness)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    save_file(tensors, str(directory / WEIGHTS_FILE))
    tmp = directory / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, **config}, indent=2, default=str) + "\n")
    tmp.replace(directory / CONFIG_FILE)
    return directory


training_lock = exclusive_lock  # an artefact is locked while it is trained (see sessiondata.files)


def is_complete(directory: Path) -> bool:
    return (directory / CONFIG_FILE).exists() and (directory / WEIGHTS_FILE).exists()


def read_artifact(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and config of an artefact; never unpickles. Errors name the path and what is wrong."""
    directory = Path(directory)
    if not is_complete(directory):
        raise ConfigError("artifact", str(directory), f"needs {WEIGHTS_FILE} and {CONFIG_FILE}")
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"not valid JSON: {error}", file=directory / CONFIG_FILE) from None
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise DataError(f"unsupported artefact format (want {FORMAT_VERSION})", file=directory / CONFIG_FILE)
    try:
        state = load_file(str(directory / WEIGHTS_FILE))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise DataError(f"not a readable safetensors file: {error}", file=directory / WEIGHTS_FILE) from None
    return state, config
