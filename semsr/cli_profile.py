"""``semsr prepare`` (train, index and fit what a serving profile needs) and ``semsr profile show``.

Preparation is the only place anything is trained for serving: ``semsr recommend``, the Python API and
the LangGraph server load what it wrote, and refuse with one line naming this command when it is missing.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from evals.prepare import prepare_profile
from graphs.profiles import DEFAULT_PROFILE, PROFILES, manifest_path, read_manifest
from semsr.cli_common import (
    DatasetOption,
    LoaderOption,
    ProgressOption,
    clear_errors,
    command_settings,
    console,
    load_protocol,
)

ProfileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--profile", "-p", help=f"Profile(s) to prepare (repeat); default: the settings' ({DEFAULT_PROFILE})."
    ),
]

profile_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Serving profiles: what each serves.")


@clear_errors
def prepare_command(
    ctx: typer.Context,
    profile: ProfileOption = None,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    progress: ProgressOption = True,
) -> None:
    """Train, index and fit everything a serving profile needs on a dataset (resumable; reuses what exists)."""
    settings = command_settings(ctx, progress=progress)
    names = profile or [settings.profile]
    unknown = [name for name in names if name not in PROFILES]
    if unknown:
        from sessiondata.errors import ConfigError

        raise ConfigError("profile", unknown[0], f"unknown; choose from {sorted(PROFILES)}")
    protocol = load_protocol(dataset, loader, settings)
    for name in names:
        manifest = prepare_profile(name, protocol, settings, progress=settings.progress)
        path = manifest_path(settings.paths.profiles, protocol.dataset.spec, name)
        console.print(f"prepared [bold]{manifest.version_tag}[/] for {protocol.dataset.spec}: {path}")


@profile_app.command("show")
@clear_errors
def show_command(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile (default: the settings').")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset spec (default: the settings').")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="The whole manifest, every artefact and the protocol card.")
    ] = False,
) -> None:
    """Print a prepared profile's manifest: sources, fusion, artefacts with sha256, metrics it earned."""
    settings = command_settings(ctx)
    name, spec = profile or settings.profile, dataset or settings.dataset
    manifest = read_manifest(manifest_path(settings.paths.profiles, spec, name), dataset=spec, profile=name)
    payload = manifest.model_dump(mode="json")
    if not full:
        payload = {
            "profile": manifest.version_tag,
            "description": manifest.profile.description,
            "dataset": manifest.dataset,
            "sources": {
                s.name: {"kind": s.kind, "model": s.model, "candidates": s.candidates}
                for s in manifest.served_profile.sources
            },
            "fusion": {
                k: v for k, v in (manifest.fusion or {"strategy": manifest.profile.fusion}).items() if k != "fitted_on"
            },
            "index": manifest.index,
            "metrics": manifest.metrics,
            "prepared_at": manifest.prepared_at,
        }
    console.print_json(json.dumps(payload, default=str))


@profile_app.command("list")
def list_command() -> None:
    """The profiles this version knows, with what each runs."""
    for name, spec in sorted(PROFILES.items()):
        console.print(f"[bold]{name:14}[/] v{spec.version} {spec.description} [dim]({spec.fusion} fusion)[/]")
