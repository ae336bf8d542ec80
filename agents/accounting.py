"""Token, latency and cost accounting: one record per LLM call, summed per run.

Token counts come from the endpoint's ``usage`` field (never from a local tokenizer: tiktoken downloads
files). Cost uses the price table in settings; a model missing from it is counted as *unpriced*, not as
free, so a report can say "cost unknown" honestly. Cache hits cost nothing and are counted apart.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from agents.config import ModelPrice


class CallRecord(BaseModel):
    purpose: str
    model: str
    endpoint: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool
    ok: bool
    cost_usd: float | None  # None: the model has no price in settings


def call_cost(prices: dict[str, ModelPrice], model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = prices.get(model)
    if price is None:
        return None
    return (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6


class RunAccount:
    """Collects :class:`CallRecord` s (thread-safe) and sums them for the run report."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._lock = threading.Lock()

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def totals(self) -> dict[str, Any]:
        """Sums over the run; tokens/s counts only calls that really ran (not cache hits)."""
        with self._lock:
            records = list(self.records)
        live = [r for r in records if not r.cached]
        live_seconds = sum(r.seconds for r in live)
        live_completion = sum(r.completion_tokens for r in live)
        priced = [r.cost_usd for r in live if r.cost_usd is not None]
        return {
            "calls": len(records),
            "cache_hits": len(records) - len(live),
            "failed_calls": sum(not r.ok for r in records),
            "prompt_tokens": sum(r.prompt_tokens for r in live),
            "completion_tokens": live_completion,
            "seconds": round(live_seconds, 3),
            "completion_tokens_per_s": round(live_completion / live_seconds, 2) if live_seconds > 0 else None,
            "cost_usd": round(sum(priced), 6),
            "unpriced_calls": sum(r.cost_usd is None for r in live),
        }
