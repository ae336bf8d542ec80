"""A torch recommender's hyper-parameters: the architecture's defaults, the caller's overrides, and the
rules that keep artefact keys stable.

The dict built here is what ``params()`` reports and what keys a trained artefact (with the training
data's digest), so two settings that train different models never share weights. SemSR-F settings are
recorded only when they differ from the concatenating head's (the head the first artefacts had), and
:func:`constructor_args` reads their absence back that way.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from sessiondata.errors import ConfigError
from sr_models.neural.architectures import ARCHITECTURES

Semantic = Literal["none", "init", "fusion"]
SUFFIX = {"none": "", "init": "-semi", "fusion": "-semf"}
Head = Literal["concat", "late"]


def model_name(architecture: str, semantic: Semantic) -> str:
    return architecture + SUFFIX[semantic]


def hyper_parameters(
    architecture: str,
    *,
    semantic: Semantic = "none",
    semantic_source: str = "catalog",
    dim: int | None = None,
    max_len: int | None = None,
    dropout: float | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    epochs: int | None = None,
    loss: Literal["ce", "sampled"] = "ce",
    n_negatives: int = 2048,
    sample_alpha: float = 0.75,
    sem_dim: int = 64,
    fused_dim: int = 64,
    fusion_scale: float = 16.0,
    fusion_dropout: float = 0.1,
    fusion_residual: bool = False,
    fusion_init: bool = True,
    fusion_head: Head = "late",
    model: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The validated hyper-parameter record of one torch recommender (see the module docstring)."""
    if architecture not in ARCHITECTURES:
        raise ConfigError("architecture", architecture, f"choose one of {sorted(ARCHITECTURES)}")
    if semantic not in SUFFIX:
        raise ConfigError("semantic", semantic, f"choose one of {sorted(SUFFIX)}")
    if loss not in ("ce", "sampled"):
        raise ConfigError("loss", loss, "choose 'ce' or 'sampled'")
    arch = ARCHITECTURES[architecture]
    if semantic == "fusion" and arch.encoder.example_mode == "cloze":
        raise ConfigError("semantic", semantic, f"{architecture} has no fused (SemSR-F) variant")
    if fusion_head not in ("concat", "late"):
        raise ConfigError("fusion_head", fusion_head, "choose 'concat' or 'late'")
    defaults = arch.defaults
    hyper: dict[str, Any] = {
        "semantic": semantic,
        "semantic_source": semantic_source if semantic != "none" else None,
        "dim": dim or defaults["dim"],
        "max_len": max_len or defaults["max_len"],
        "dropout": defaults["dropout"] if dropout is None else dropout,
        "lr": lr or defaults.get("lr", 1e-3),
        "weight_decay": defaults.get("weight_decay", 0.0) if weight_decay is None else weight_decay,
        "batch_size": batch_size or defaults["batch_size"],
        "max_epochs": max_epochs or defaults.get("max_epochs", 10),
        "patience": patience or defaults.get("patience", 2),
        "epochs": epochs,
        "loss": loss,
        "n_negatives": n_negatives if loss == "sampled" else None,
        "sample_alpha": sample_alpha if loss == "sampled" else None,
        "model": {**defaults["model"], **(model or {})},
        "seed": seed,
    }
    if semantic == "fusion":
        hyper.update(sem_dim=sem_dim, fused_dim=fused_dim, fusion_scale=fusion_scale, fusion_dropout=fusion_dropout)
        if fusion_residual:  # only recorded when on, so keys of earlier artefacts stay valid
            hyper["fusion_residual"] = True
        # SemSR-F's defaults were chosen on validation (docs/sr_models.md): the late head on an id table that
        # also starts from the text vectors. Only those settings are recorded: a concatenating-head model
        # (``fusion_head="concat", fusion_init=False``) records neither, so its keys match the artefacts
        # trained before the late head existed, and ``constructor_args`` reads their absence.
        if fusion_init:
            hyper["fusion_init"] = True
        if fusion_head == "late":
            hyper["fusion_head"] = "late"
    accepted = {
        name
        for name, p in inspect.signature(arch.encoder.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(hyper["model"]) - accepted)
    if unknown:
        raise ConfigError("model", unknown, f"not parameters of {architecture}; accepted: {sorted(accepted)}")
    return hyper


_HYPER_KEYS = set(inspect.signature(hyper_parameters).parameters) - {"architecture"}


def constructor_args(params: dict[str, Any]) -> dict[str, Any]:
    """A recorded hyper-parameter dict (``params()``) back to constructor arguments.

    SemSR-F settings absent from a fusion model's record mean the concatenating head without text
    initialisation (see :func:`hyper_parameters`), not today's defaults.
    """
    kwargs = {k: v for k, v in params.items() if k in _HYPER_KEYS and v is not None}
    if params.get("semantic") == "fusion":
        kwargs.setdefault("fusion_head", "concat")
        kwargs.setdefault("fusion_init", False)
    return kwargs
