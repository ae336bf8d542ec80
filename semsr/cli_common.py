"""What every ``semsr`` sub-command shares: consoles, common options and the clear-error wrapper.

Sub-commands live in modules of their own (``semsr/cli*.py``) and are registered in :mod:`semsr.cli`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from semsr.settings import Settings
from sessiondata.errors import ConfigError, DataError
from sessiondata.loaders import load_dataset
from sessiondata.protocol import Protocol, build_protocol

console = Console()
if not console.is_terminal:  # pipes and CI logs: wide enough for the full metrics table
    console = Console(width=150)
errors = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

DatasetOption = Annotated[
    str, typer.Option("--dataset", "-d", help="'amazon-beauty', LOADER:PATH, or PATH with --loader.")
]
LoaderOption = Annotated[str | None, typer.Option(help="Loader for a dataset path: csv, amazon-m2, recbole.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


def clear_errors(command: F) -> F:
    """Turn expected input errors into one readable line and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (DataError, ConfigError) as error:
            errors.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
            raise typer.Exit(2) from None
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            errors.print(f"[bold red]error:[/] {where}={first.get('input')!r}: {first['msg']}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def limit_threads(settings: Settings) -> None:
    """Size numpy's (and torch's, when loaded) thread pools to the configured cores, and hand the
    settings to the graph's resources (the one place they are configured for a command)."""
    from threadpoolctl import threadpool_limits

    from graphs.resources import configure

    threadpool_limits(settings.threads)
    configure(settings.resource_config())


def load_protocol(dataset: str, loader: str | None, settings: Settings) -> Protocol:
    return build_protocol(load_dataset(dataset, loader), settings.protocol)


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` flags; values are read as JSON when they parse (numbers, true, null), else as text."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("param", pair, "write KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params
