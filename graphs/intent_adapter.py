"""The intent node's bridge to the LLM agent, with the request deadline enforced from outside the call.

A slow model must not hold a shopper's answer hostage: the call runs in a worker thread and the node
stops waiting when the deadline passes (the reply, if it comes later, still lands in the response cache).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semsr.settings import Settings


class IntentAdapter:
    """Calls :func:`agents.intent.infer_intent` with one shared client per process."""

    def __init__(self, settings: Settings) -> None:
        from agents.provider import ChatClient

        self.client = ChatClient(settings.llm, home=settings.home, threads=settings.threads)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="semsr-llm")

    @property
    def account(self) -> Any:
        return self.client.account

    def __call__(self, titles: list[str], *, timeout: float, user_text: str | None = None) -> dict[str, Any]:
        """The intent as a JSON-ready dict (``agents.intent.Intent``), or an error when the deadline passes."""
        from agents.intent import infer_intent

        future = self.pool.submit(infer_intent, titles, self.client, user_text=user_text)
        try:
            intent = future.result(timeout=max(timeout, 0.001))
        except FutureTimeout:
            raise TimeoutError(f"no LLM answer within the {timeout:.1f} s left of the request deadline") from None
        return intent.model_dump(mode="json", exclude_none=True)
