"""``semsr index``: build (or resume) the Chroma catalogue index of a dataset.

Title vectors come from the embedding cache (each title is embedded once per embedder, ever); the index is
an embedded Chroma store under ``<home>/chroma`` unless ``--server-url`` names a running ``chroma run``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from embeddings.catalog import embed_catalog
from embeddings.config import default_provider
from embeddings.finetuned import KIND, resolve_embedder
from semsr.cli_common import DatasetOption, LoaderOption, ProgressOption, clear_errors, command_settings, console
from sessiondata.loaders import load_dataset
from sessiondata.protocol import build_protocol
from tools.chroma_client import make_client
from tools.chroma_index import CatalogIndex


@clear_errors
def index_command(
    ctx: typer.Context,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    embedder: Annotated[
        Literal["minilm", "minilm-adapted", "openai", "file"] | None,
        typer.Option(help="Embedder (default: settings.embedder.kind); minilm-adapted: the test fold's fine-tune."),
    ] = None,
    server_url: Annotated[str | None, typer.Option(help="Chroma server http://HOST:PORT (else embedded).")] = None,
    path: Annotated[Path | None, typer.Option(help="Embedded Chroma directory (default <home>/chroma).")] = None,
    vectors: Annotated[Path | None, typer.Option(help="Precomputed vectors for --embedder file.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for --embedder openai.")] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model name for --embedder openai.")] = None,
    progress: ProgressOption = True,
) -> None:
    """Build or resume the Chroma index of a dataset's catalogue (one collection per dataset and embedder)."""
    settings = command_settings(ctx, progress=progress)
    embedder_update = {"kind": embedder, "path": vectors, "base_url": base_url, "model": model}
    chroma_update = {"server_url": server_url, "path": path}
    embedder_config = settings.embedder.model_validate(
        {**settings.embedder.model_dump(), **{k: v for k, v in embedder_update.items() if v is not None}}
    )
    chroma_config = settings.chroma.model_validate(
        {**settings.chroma.model_dump(), **{k: v for k, v in chroma_update.items() if v is not None}}
    )
    client = make_client(chroma_config, settings.paths.chroma)  # fail fast on a bad path or a server that is down
    data = load_dataset(dataset, loader)
    if embedder_config.kind == KIND:  # the fine-tune of the whole training split: what shoppers query
        digest = build_protocol(data, settings.protocol).train_digest("test")
        embedder_config = resolve_embedder(
            embedder_config, train_digest=digest, embeddings_dir=settings.paths.embeddings
        )
    provider = default_provider(embedder_config, threads=settings.threads)
    started = time.perf_counter()
    matrix = embed_catalog(data.catalog, provider, cache_dir=settings.paths.embeddings, progress=settings.progress)
    embed_seconds = time.perf_counter() - started
    index = CatalogIndex(
        data.catalog,
        data.fingerprint().short,
        provider=provider,
        chroma=chroma_config,
        store_path=settings.paths.chroma,
        embeddings_dir=settings.paths.embeddings,
        embedder_config=embedder_config,
        client=client,
    )
    report = index.build(vectors=matrix, progress=settings.progress).as_dict()
    report["embed_seconds"] = round(embed_seconds, 2)
    report["embedder"] = provider.id
    report["where"] = chroma_config.server_url or str(index.store_path)
    console.print_json(json.dumps(report))
