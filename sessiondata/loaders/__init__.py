"""Loaders: every supported file format becomes the same validated :class:`~sessiondata.schema.Dataset`.

A dataset is named on the command line as

* ``amazon-beauty`` – the bundled copy;
* ``LOADER:PATH`` – e.g. ``recbole:/data/beauty`` or ``csv:/data/shop``;
* ``PATH`` together with ``loader=`` (``--loader`` on the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from sessiondata.errors import ConfigError
from sessiondata.schema import Dataset

# loader name -> (module, function); imported lazily so one broken optional format never blocks another.
LOADERS: dict[str, tuple[str, str]] = {
    "amazon-beauty": ("sessiondata.loaders.beauty", "load_amazon_beauty"),
    "csv": ("sessiondata.loaders.csvpair", "load_csv_pair"),
    "amazon-m2": ("sessiondata.loaders.amazon_m2", "load_amazon_m2"),
    "recbole": ("sessiondata.loaders.recbole", "load_recbole"),
}

BUNDLED = {"amazon-beauty"}


def loader_function(name: str) -> Callable[..., Dataset]:
    if name not in LOADERS:
        raise ConfigError("loader", name, f"unknown loader; choose one of {sorted(LOADERS)}")
    module_name, function_name = LOADERS[name]
    return getattr(import_module(module_name), function_name)


def parse_dataset_spec(spec: str, loader: str | None = None) -> tuple[str, str | None]:
    """Split a dataset spec into (loader name, path or None for a bundled dataset)."""
    if loader is not None:
        return loader, spec
    if spec in BUNDLED:
        return spec, None
    head, sep, tail = spec.partition(":")
    if sep and head in LOADERS:
        return head, tail
    if Path(spec).exists():
        raise ConfigError("dataset", spec, f"a path needs a loader: write LOADER:PATH with LOADER in {sorted(LOADERS)}")
    raise ConfigError(
        "dataset",
        spec,
        f"not a bundled dataset ({sorted(BUNDLED)}) and not LOADER:PATH with LOADER in {sorted(LOADERS)}",
    )


def load_dataset(spec: str, loader: str | None = None, **options: Any) -> Dataset:
    """Load a dataset named by ``spec`` (see the module docstring)."""
    name, path = parse_dataset_spec(spec, loader)
    function = loader_function(name)
    dataset = function(**options) if path is None else function(path, **options)
    # set in place: dataclasses.replace would validate every session a second time
    object.__setattr__(dataset, "spec", spec if path is None else f"{name}:{Path(path).expanduser().resolve()}")
    return dataset
