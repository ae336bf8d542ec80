"""Registry entries of the torch recommenders: name, description, factory (torch imported lazily), grid.

Names: ``<architecture>`` plain, ``<architecture>-semi`` SemSR-I (text-initialised item table),
``<architecture>-semf`` SemSR-F (fusion with frozen text embeddings). BERT4Rec has no -semf (its cloze
training has no next-item session vector to fuse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DESCRIPTIONS = {
    "gru4rec": "GRU4Rec: the official training (session-parallel steps, shared negatives, tied table, Adagrad)",
    "srgnn": "SR-GNN: gated GNN over the session graph + attention readout",
    "niser": "NISER+: SR-GNN with normalised items/sessions, scale, positions, dropout",
    "msgat": "MSGAT: within-session graph attention + cross-session item graph",
    "sasrec": "SASRec: causal self-attention, full-catalogue CE at every position",
    "bert4rec": "BERT4Rec: bidirectional transformer, cloze training",
}
VARIANTS = {"none": ("", ""), "init": ("-semi", " [SemSR-I: items initialised from title embeddings]")}
FUSION = ("-semf", " [SemSR-F: fused with frozen title embeddings]")
WITH_VARIANTS = ("niser", "sasrec", "msgat", "gru4rec", "bert4rec")
WITH_FUSION = ("niser", "sasrec", "msgat", "gru4rec")

GRIDS: dict[str, dict[str, list[Any]]] = {
    "gru4rec": {"dim": [128, 256], "dropout": [0.0, 0.1, 0.3], "lr": [0.02, 0.05, 0.1]},  # Adagrad's scale
    "gru4rec-semf": {"dim": [64, 128, 256], "dropout": [0.1, 0.3, 0.5], "lr": [5e-4, 1e-3, 2e-3]},  # Adam's
    "srgnn": {"dim": [64, 100], "lr": [5e-4, 1e-3]},
    "niser": {"dim": [64, 100], "dropout": [0.0, 0.1, 0.3], "lr": [5e-4, 1e-3]},
    "msgat": {"dim": [64, 100], "dropout": [0.0, 0.1, 0.3]},
    "sasrec": {"dim": [64, 128], "dropout": [0.2, 0.3, 0.5], "lr": [5e-4, 1e-3]},
    "bert4rec": {"dim": [64, 128], "dropout": [0.1, 0.2], "lr": [5e-4, 1e-3]},
}


def _factory(architecture: str, semantic: str) -> Callable[..., Any]:
    def build(**params: Any) -> Any:
        from sr_models.neural.recommender import NeuralRecommender

        return NeuralRecommender(architecture, semantic=params.pop("semantic", semantic), **params)

    build.__name__ = f"build_{architecture}_{semantic}"
    return build


def neural_specs() -> list[tuple[str, str, Callable[..., Any], dict[str, list[Any]]]]:
    """(name, description, factory, grid) for every torch model and SemSR variant."""
    specs = []
    for architecture, description in DESCRIPTIONS.items():
        semantics = ["none"] + (["init"] if architecture in WITH_VARIANTS else [])
        semantics += ["fusion"] if architecture in WITH_FUSION else []
        for semantic in semantics:
            suffix, note = FUSION if semantic == "fusion" else VARIANTS[semantic]
            grid = GRIDS.get(architecture + suffix, GRIDS[architecture])
            specs.append((architecture + suffix, description + note, _factory(architecture, semantic), grid))
    return specs
