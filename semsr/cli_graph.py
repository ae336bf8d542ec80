"""``semsr recommend`` and ``semsr trace``: the graph for a shopper's session, and what its nodes did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphs.api import SemSR
from graphs.context import Context
from graphs.tracing import JsonlTracer, read_trace
from semsr.cli_common import clear_errors, command_settings, console
from sessiondata.errors import ConfigError


@clear_errors
def recommend_command(
    ctx: typer.Context,
    items: Annotated[list[str] | None, typer.Option("--items", "-i", help="Item ids viewed, oldest first.")] = None,
    extra_items: Annotated[
        list[str] | None, typer.Argument(help="More item ids (after --items; `--` before ids starting with -).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset spec (default: the settings').")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Serving profile (default: the settings').")
    ] = None,
    k: Annotated[int, typer.Option(help="How many recommendations.")] = 10,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="What the shopper said (retrieval text, never an order).")
    ] = None,
    must_include: Annotated[
        list[str] | None, typer.Option("--must-include", help="A term every title must contain (repeatable).")
    ] = None,
    must_not_include: Annotated[
        list[str] | None, typer.Option("--must-not-include", help="A term no title may contain (repeatable).")
    ] = None,
    thread: Annotated[str | None, typer.Option(help="Conversation id: the items add to this thread's session.")] = None,
    reply: Annotated[str | None, typer.Option("--answer", help="Answer a thread's clarifying question.")] = None,
    clarify_below: Annotated[float | None, typer.Option(help="Ask a question below this intent confidence.")] = None,
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="Answer from the prepared sources when some are missing.")
    ] = False,
    explain_with_llm: Annotated[
        bool, typer.Option("--explain-with-llm", help="Show the LLM's words in reasons even where it earned no weight.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")] = False,
    trace: Annotated[Path | None, typer.Option(help="Append a JSONL trace of every node to this file.")] = None,
) -> None:
    """Recommend next products for a session through the SemSR graph (the prepared serving profile)."""
    settings = command_settings(ctx, dataset=dataset, profile=profile)
    semsr = SemSR(settings)
    context = Context(clarify_below=clarify_below, allow_partial=allow_partial, explain_with_llm=explain_with_llm)
    callbacks = [JsonlTracer(trace)] if trace else []
    every_item = [*(items or []), *(extra_items or [])]
    if reply is not None:
        if thread is None:
            raise ConfigError("answer", reply, "needs --thread: the conversation whose question it answers")
        result = semsr.answer(thread, reply, context=context, callbacks=callbacks)
    else:
        if not every_item and thread is None and query is None:
            raise ConfigError("items", [], "give at least one item id (--items 12 45 77) or a --query")
        result = semsr.recommend(
            every_item,
            k=k,
            thread_id=thread,
            context=context,
            callbacks=callbacks,
            query=query,
            must_include=must_include,
            must_not_include=must_not_include,
        )
    if as_json:
        console.print_json(result.model_dump_json())
        return
    if result.question:
        console.print(f"[bold]Question:[/] {result.question}  (answer with --thread {thread} --answer TEXT)")
        return
    title = f"Recommendations for {len(result.session)} viewed item(s) — profile {result.profile.get('version', '?')}"
    table = Table(title=title, header_style="bold")
    for column in ("#", "item", "title", "score", "why"):
        table.add_column(column, justify="right" if column in ("#", "score") else "left")
    for row in result.recommendations:
        why = "; ".join(f"{r['text']} [{r['source']}]" for r in row["reasons"][:2]) or "—"
        table.add_row(str(row["rank"]), str(row["item_id"]), row["title"][:60], f"{row['score']:.4f}", why)
    console.print(table)
    console.print(result.explanation)
    for note in [*result.degraded, *(f"unknown item ignored: {i!r}" for i in result.unknown_items)]:
        console.print(f"[yellow]degraded:[/] {note}" if note in result.degraded else f"[yellow]note:[/] {note}")


@clear_errors
def trace_command(path: Annotated[Path, typer.Argument(help="A trace file written by --trace.")]) -> None:
    """Show a trace: one row per node with its latency, and LLM token usage."""
    if not path.exists():
        raise ConfigError("trace", str(path), "file not found")
    records = read_trace(path)
    table = Table(title=str(path), header_style="bold")
    for column in ("node", "seconds", "summary"):
        table.add_column(column)
    for record in records:
        if record.get("type") == "llm":
            table.add_row("(llm)", "", json.dumps(record.get("usage")))
            continue
        outputs = record.get("outputs") or {}
        summary = record.get("error") or ", ".join(sorted(outputs)) if isinstance(outputs, dict) else str(outputs)
        table.add_row(record.get("node", "?"), f"{record.get('seconds', 0):.4f}", str(summary)[:90])
    console.print(table)
