"""The intent node's bridge to the LLM agent, with the request deadline enforced from outside the call.

A slow model must not hold a shopper's answer hostage: the call runs in the profile's bounded LLM pool
(:class:`agents.bounded.BoundedCalls`) and the node stops waiting at ``llm.call_timeout`` or the request's
deadline, whichever is nearer (the reply, if it comes later, still lands in the response cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.bounded import BoundedCalls
    from semsr.settings import Settings


class IntentAdapter:
    """Calls :func:`agents.intent.infer_intent` with one shared client per process."""

    def __init__(self, settings: Settings, calls: BoundedCalls) -> None:
        from agents.provider import ChatClient

        self.client = ChatClient(settings.llm, home=settings.home, threads=settings.threads)
        self.calls = calls

    @property
    def account(self) -> Any:
        return self.client.account

    def __call__(self, titles: list[str], *, timeout: float, user_text: str | None = None) -> dict[str, Any]:
        """The intent as a JSON-ready dict (``agents.intent.Intent``), or ``LLMFailure("timeout")`` when
        ``timeout`` (the request's time left) or ``llm.call_timeout`` passes."""
        from agents.intent import infer_intent

        intent = self.calls.run(infer_intent, titles, self.client, user_text=user_text, budget=timeout)
        return intent.model_dump(mode="json", exclude_none=True)
