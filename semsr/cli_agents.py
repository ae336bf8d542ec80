"""``semsr intent``: infer a shopper's intent for a session with the configured LLM (local by default).

Handy to see what the model makes of real sessions and what one call costs: prints the typed intent and
the call's tokens, seconds and cost.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from agents.errors import LLMFailure
from agents.intent import infer_intent
from agents.provider import ChatClient
from semsr.cli_common import DatasetOption, LoaderOption, clear_errors, command_settings, console, load_protocol
from sessiondata.errors import ConfigError
from sessiondata.ids import require_known


@clear_errors
def intent_command(
    ctx: typer.Context,
    items: Annotated[list[str] | None, typer.Argument(help="Item ids of the session, oldest first.")] = None,
    dataset: DatasetOption = "amazon-beauty",
    loader: LoaderOption = None,
    case: Annotated[
        list[int] | None, typer.Option("--case", help="Use the prompt of the N-th test case (repeatable).")
    ] = None,
    message: Annotated[str | None, typer.Option(help="Optional words from the shopper.")] = None,
) -> None:
    """Print the LLM's intent for a session given as item ids or as test-case numbers."""
    settings = command_settings(ctx)
    protocol = load_protocol(dataset, loader, settings)
    catalog = protocol.dataset.catalog
    sessions: list[list[int]] = []
    for number in case or []:
        if not 0 <= number < len(protocol.test.cases):
            raise ConfigError("case", number, f"must be in 0..{len(protocol.test.cases) - 1}")
        sessions.append(list(protocol.test.cases[number].prompt))
    if items:
        sessions.append(require_known(catalog, items, field="items"))
    if not sessions:
        raise ConfigError("items", None, "give item ids or --case N")
    client = ChatClient(settings.llm, home=settings.home)
    for session in sessions:
        titles = [catalog.titles[i] for i in session]
        started = time.perf_counter()
        try:
            intent = infer_intent(titles, client, user_text=message)
            answer: dict[str, object] = intent.model_dump()
        except LLMFailure as failure:
            answer = {"failure": failure.kind, "detail": failure.detail}
        record = client.account.records[-1]
        console.print_json(
            json.dumps(
                {
                    "titles": titles[-settings.llm.max_session_titles :],
                    "intent": answer,
                    "seconds": round(time.perf_counter() - started, 2),
                    "tokens_in": record.prompt_tokens,
                    "tokens_out": record.completion_tokens,
                    "cached": record.cached,
                }
            )
        )
    console.print_json(json.dumps({"model": settings.llm.model, "totals": client.account.totals()}))
