"""Typed failures of the LLM layer, so callers can degrade (skip the LLM source) instead of crashing.

:class:`LLMFailure` covers everything a flaky model or endpoint does at run time (HTTP errors, timeouts,
malformed or empty output after the one retry). :class:`CacheMiss` is deliberately *not* an
``LLMFailure``: in replay-only mode a missing response means the evaluation is not the recorded one, and
silently degrading would hide that.
"""

from __future__ import annotations

from typing import Literal

FailureKind = Literal["http", "timeout", "connection", "malformed", "empty", "server"]


class LLMFailure(RuntimeError):
    """The model gave no usable answer; ``kind`` says why and ``detail`` carries the evidence."""

    def __init__(self, kind: FailureKind, detail: str, *, attempts: int = 1) -> None:
        self.kind = kind
        self.detail = detail
        self.attempts = attempts
        super().__init__(f"LLM failure ({kind}) after {attempts} attempt(s): {detail}")


class CacheMiss(LookupError):
    """Replay-only mode found no recorded response for this request."""

    def __init__(self, key: str, what: str) -> None:
        self.key = key
        super().__init__(
            f"llm.cache_mode='replay' but no recorded response for {what} (key {key[:16]}); "
            "record it first with SEMSR_LLM__CACHE_MODE=record"
        )
