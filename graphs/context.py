"""Run-time knobs of one graph invocation (LangGraph's ``context_schema``): plain, serialisable values.

The context says *what* to use (dataset, sources, fusion strategy, deadline); the heavy objects behind
those names are loaded once per process by :mod:`graphs.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FusionStrategy = Literal["weighted", "rrf", "learned"]


@dataclass
class Context:
    dataset: str = "amazon-beauty"
    fold: Literal["test", "valid"] = field(
        default="test",
        metadata={
            "description": "Which training sessions the models learnt from: 'test' serves and reports; "
            "'valid' (sub-train) is for fitting the fusion on the validation fold."
        },
    )
    sr_sources: tuple[str, ...] = field(
        default=("vsknn", "sr"),
        metadata={"description": "Session models asked through the sr_rerank tool (names from sr_models.registry)."},
    )
    semantic: bool = True
    use_llm: bool = True
    fusion: FusionStrategy = "weighted"
    candidates_per_source: int = 200
    deadline_s: float = 60.0
    clarify_below: float | None = None
    max_session_items: int = 50
    return_sources: bool = field(
        default=False, metadata={"description": "Also return every source's candidates (fitting the fusion)."}
    )

    @classmethod
    def coerce(cls, value: Context | dict | None) -> Context:
        """Accept a Context, a JSON dict (LangGraph server requests) or nothing."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        if "sr_sources" in known:
            known["sr_sources"] = tuple(known["sr_sources"])
        return cls(**known)
