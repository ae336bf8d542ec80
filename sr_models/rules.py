"""Sequential rules (session-rec's "SR", Ludewig & Jannach 2018): which items follow which, and how closely.

For every training session and every pair (a before b) at most ``window`` steps apart, the rule a -> b
gains a weight that falls with the distance. A prompt is scored from the rules of its last few items,
the most recent weighted most. Cheap, strong on sparse data, and a good partner for semantic sources.

It is the forward-only case of co-visitation (:class:`sr_models.covisit.CoVisitation` with
``direction='forward'``, no lift): the pair counting, normalisation, scoring and persistence live there;
this class fixes those options and keeps the hyper-parameters its tuning records name.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sr_models.covisit import CoVisitation


class RulesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(10, ge=1, description="Largest distance between the two items of a rule.")
    pair_weight: Literal["linear", "harmonic", "quadratic"] = "harmonic"
    prompt_items: int = Field(3, ge=1, description="How many of the most recent prompt items vote.")
    prompt_decay_lambda: float = Field(1.0, gt=0, description="Vote weight exp(-distance/lambda).")
    row_normalise: bool = True
    backfill: bool = True


class SequentialRules(CoVisitation):
    """Forward-only co-visitation ("often viewed after")."""

    name = "sr"
    config_class: ClassVar[type[BaseModel]] = RulesConfig
    evidence_kind: ClassVar[str] = "followed-by"
    fixed: ClassVar[dict[str, Any]] = {"direction": "forward"}
