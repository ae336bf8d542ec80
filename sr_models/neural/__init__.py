"""Torch session recommenders (GRU4Rec, SR-GNN, NISER+, MSGAT, SASRec, BERT4Rec) with SemSR-I/-F variants.

Importing the package is cheap: torch loads only when a model class is first used (the registry lists
the torch models by name without importing torch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENCODERS", "NeuralRecommender", "load_recommender"]


def __getattr__(name: str) -> Any:
    if name == "ENCODERS":
        from sr_models.neural.architectures import ENCODERS

        return ENCODERS
    if name in ("NeuralRecommender", "load_recommender"):
        from sr_models.neural import recommender

        return getattr(recommender, name)
    raise AttributeError(f"module 'sr_models.neural' has no attribute {name!r}")
