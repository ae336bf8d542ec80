"""Run-time knobs of one graph invocation (LangGraph's ``context_schema``): plain, serialisable values.

What the graph runs is the *profile*'s business (its sources, their settings, the fitted fusion); the
context only names the profile and sets per-request limits, so no request can silently run a
configuration the main job never evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class Context:
    profile: str | None = field(
        default=None, metadata={"description": "Serving profile (None: the settings' profile, 'fused' by default)."}
    )
    dataset: str | None = field(default=None, metadata={"description": "Dataset spec (None: the settings')."})
    fold: Literal["test", "valid"] = field(
        default="test",
        metadata={
            "description": "'test' serves (models fitted on all training sessions); 'valid' (sub-train models) "
            "exists to fit the fusion on the validation fold."
        },
    )
    deadline_s: float = 60.0
    clarify_below: float | None = None
    explain_with_llm: bool = field(
        default=False,
        metadata={"description": "Show the LLM's words in explanations even where its source earned no weight."},
    )
    allow_partial: bool = field(
        default=False, metadata={"description": "Answer from the sources that are prepared; list the others."}
    )
    return_sources: bool = field(
        default=False, metadata={"description": "Also return every source's candidates (fitting the fusion)."}
    )

    @classmethod
    def coerce(cls, value: Context | dict[str, Any] | None) -> Context:
        """Accept a Context, a JSON dict (LangGraph server requests) or nothing."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        return cls(**known)
