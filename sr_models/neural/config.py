"""Settings of the torch recommenders that come from the project settings, not from a model's tuned
hyper-parameters: ``Settings.neural`` (env ``SEMSR_NEURAL__SAMPLED_ABOVE_ITEMS=50000`` etc.).

``sampled_above_items``: a model whose hyper-parameters say full-catalogue cross-entropy (``loss="ce"``)
trains with sampled softmax and logQ correction instead (``loss="sampled"``, the official GRU4Rec's loss,
:class:`sr_models.neural.losses.SampledSoftmax`) when the catalogue has more items than this; the switch is
written into the model's hyper-parameter record, so it keys the artefact and is what the artefact says it
was trained with. Evaluation and serving always score the full catalogue.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NeuralConfig(BaseModel):
    """How torch models train at scale (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sampled_above_items: int = Field(
        50_000,
        ge=0,
        description="Train with sampled softmax + logQ correction when the catalogue has more items (0: never).",
    )
    sampled_negatives: int = Field(2048, ge=1, description="Negatives drawn per step for that sampled softmax.")
    sampled_alpha: float = Field(0.75, ge=0.0, le=1.0, description="Negatives drawn by item count^alpha.")
