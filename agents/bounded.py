"""Blocking LLM calls with a wall-clock bound: a request never waits longer than ``llm.call_timeout``.

The chat client is synchronous (HTTP, SQLite cache, one retry on a bad reply), and its own HTTP timeout
is per request, so one call could take ``timeout x (http_retries + 1) x 2`` seconds. The caller must not
be held that long: each call runs in a worker thread of a pool sized for concurrent requests
(``llm.max_concurrent_calls``), and the caller stops waiting when the bound passes, with an
:class:`~agents.errors.LLMFailure` of kind ``"timeout"`` that the graph's nodes answer degraded. The
thread finishes in the background (a reply that comes later still lands in the response cache).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from agents.config import LLMConfig
from agents.errors import LLMFailure

T = TypeVar("T")


class BoundedCalls:
    """One process's pool for blocking LLM calls, each bounded by ``config.call_timeout``."""

    def __init__(self, config: LLMConfig) -> None:
        self.timeout = config.call_timeout
        self.pool = ThreadPoolExecutor(max_workers=config.max_concurrent_calls, thread_name_prefix="semsr-llm")

    def limit(self, budget: float | None) -> float:
        """The seconds a call may take: the setting, or less when the request's own deadline is nearer."""
        return self.timeout if budget is None else max(min(self.timeout, budget), 0.001)

    def run(self, call: Callable[..., T], *args: object, budget: float | None = None, **kwargs: object) -> T:
        """``call(*args, **kwargs)``'s result, or ``LLMFailure("timeout")`` once :meth:`limit` passes."""
        limit = self.limit(budget)
        future = self.pool.submit(call, *args, **kwargs)
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()  # a call still queued never starts; a running one ends in the background
            raise LLMFailure("timeout", f"no LLM answer within {limit:.1f} s (llm.call_timeout)") from None
