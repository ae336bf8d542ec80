"""What every ``semsr`` sub-command shares: consoles, common options and the clear-error wrapper.

Sub-commands live in modules of their own (``semsr/cli*.py``) and are registered in :mod:`semsr.cli`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from semsr.settings import Settings, apply_threads, load_settings
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


def load_entry_settings(ctx: typer.Context) -> None:
    """The command's one settings object, from the environment (the app callback calls this once)."""
    try:
        ctx.obj = load_settings()
    except ValidationError as error:
        first = error.errors()[0]
        where = "SEMSR_" + "__".join(str(part).upper() for part in first["loc"])
        errors.print(f"[bold red]error:[/] {where}={first.get('input')!r}: {first['msg']}", highlight=False)
        raise typer.Exit(2) from None


def command_settings(ctx: typer.Context, **flags: Any) -> Settings:
    """The entry settings with this command's flags on top (``None`` = flag not given); thread pools are
    sized and the graph's Python API is bound to them, so every layer below sees the same settings."""
    base = ctx.obj if isinstance(ctx.obj, Settings) else load_settings()
    given = {k: v for k, v in flags.items() if v is not None}
    settings = base.model_copy(update=given) if given else base
    apply_threads(settings)
    return settings


def load_protocol(dataset: str, loader: str | None, settings: Settings) -> Protocol:
    return build_protocol(load_dataset(dataset, loader), settings.protocol)
