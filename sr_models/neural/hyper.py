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
from sr_models.neural.losses import final_activation

Semantic = Literal["none", "init", "fusion"]
SUFFIX = {"none": "", "init": "-semi", "fusion": "-semf"}
Head = Literal["concat", "late"]
LOSSES = ("ce", "sampled", "bpr-max")
# training settings that came after the first artefacts, with the value those artefacts were trained with:
# a record holds a setting only when it differs, and a missing one means this value (constructor_args)
LEGACY_TRAINING: dict[str, Any] = {"training": "batches", "optimizer": "adam", "clip_norm": 5.0, "logq": 1.0}


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
    loss: str | None = None,
    n_negatives: int | None = None,
    sample_alpha: float | None = None,
    training: str | None = None,
    optimizer: str | None = None,
    momentum: float | None = None,
    clip_norm: float | None = None,
    logq: float | None = None,
    bpreg: float | None = None,
    final_act: str | None = None,
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
    arch = ARCHITECTURES[architecture]
    if semantic == "fusion" and arch.encoder.example_mode == "cloze":
        raise ConfigError("semantic", semantic, f"{architecture} has no fused (SemSR-F) variant")
    if fusion_head not in ("concat", "late"):
        raise ConfigError("fusion_head", fusion_head, "choose 'concat' or 'late'")
    defaults = arch.defaults
    if semantic == "fusion":
        defaults = {**defaults, **defaults.get("fusion", {})}
    training_settings = _training_settings(
        architecture,
        semantic,
        defaults,
        loss=loss,
        n_negatives=n_negatives,
        sample_alpha=sample_alpha,
        training=training,
        optimizer=optimizer,
        momentum=momentum,
        clip_norm=clip_norm,
        logq=logq,
        bpreg=bpreg,
        final_act=final_act,
    )
    loss = training_settings.pop("loss")
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
        "n_negatives": training_settings.pop("n_negatives"),
        "sample_alpha": training_settings.pop("sample_alpha"),
        **training_settings,
        "model": _model_record({**defaults["model"], **(model or {})}, defaults.get("legacy_model", {})),
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


def _training_settings(architecture: str, semantic: str, defaults: dict[str, Any], **given: Any) -> dict[str, Any]:
    """Loss, sampling, training scheme and optimiser, validated; the record keeps only what applies
    (sampling settings for sampled losses, BPR-max's for BPR-max) and what differs from the earlier
    scheme (:data:`LEGACY_TRAINING`), so the keys of artefacts trained before these settings stay valid."""
    fallback = {"loss": "ce", "n_negatives": 2048, "sample_alpha": 0.75, "momentum": 0.0, "bpreg": 1.0}
    value = {
        k: v if v is not None else defaults.get(k, LEGACY_TRAINING.get(k, fallback.get(k))) for k, v in given.items()
    }
    value["final_act"] = value["final_act"] or "linear"
    for key in ("momentum", "clip_norm", "logq", "bpreg", "sample_alpha"):  # 0 and 0.0 must key alike
        value[key] = float(value[key])
    loss = value["loss"]
    if loss not in LOSSES:
        raise ConfigError("loss", loss, f"choose one of {list(LOSSES)}")
    if value["training"] not in ("batches", "session-parallel"):
        raise ConfigError("training", value["training"], "choose 'batches' or 'session-parallel'")
    if value["training"] == "session-parallel":
        encoder = ARCHITECTURES[architecture].encoder
        if not getattr(encoder, "steps", False) or semantic == "fusion":
            reason = "the fused head needs whole prefixes" if semantic == "fusion" else "its encoder has no steps"
            raise ConfigError("training", "session-parallel", f"not available for {architecture}: {reason}")
    elif loss == "bpr-max":
        raise ConfigError("loss", loss, "BPR-max runs over session-parallel steps only (training='session-parallel')")
    if value["optimizer"] not in ("adam", "adagrad"):
        raise ConfigError("optimizer", value["optimizer"], "choose 'adam' or 'adagrad'")
    try:
        final_activation(value["final_act"])
    except ValueError as error:
        raise ConfigError("final_act", value["final_act"], str(error)) from None
    if loss != "ce" and (value["n_negatives"] < 0 or (value["n_negatives"] == 0 and value["training"] == "batches")):
        raise ConfigError("n_negatives", value["n_negatives"], "needs extra negatives (>= 0 for session-parallel)")
    sampled = loss != "ce"
    record: dict[str, Any] = {
        "loss": loss,
        "n_negatives": value["n_negatives"] if sampled else None,
        "sample_alpha": value["sample_alpha"] if sampled else None,
    }
    if value["training"] != LEGACY_TRAINING["training"]:
        record["training"] = value["training"]
    if value["optimizer"] != LEGACY_TRAINING["optimizer"]:
        record.update(optimizer=value["optimizer"], momentum=value["momentum"])
    if value["clip_norm"] != LEGACY_TRAINING["clip_norm"]:
        record["clip_norm"] = value["clip_norm"]
    if loss == "sampled" and value["logq"] != LEGACY_TRAINING["logq"]:
        record["logq"] = value["logq"]
    if loss == "bpr-max":
        record.update(bpreg=value["bpreg"], final_act=value["final_act"])
    return record


def _model_record(model: dict[str, Any], legacy: dict[str, Any]) -> dict[str, Any]:
    """Encoder settings as recorded: those equal to the earlier artefacts' value (``legacy_model``) left out."""
    return {k: v for k, v in model.items() if not (k in legacy and legacy[k] == v)}


_HYPER_KEYS = set(inspect.signature(hyper_parameters).parameters) - {"architecture"}


def constructor_args(params: dict[str, Any], architecture: str | None = None) -> dict[str, Any]:
    """A recorded hyper-parameter dict (``params()``) back to constructor arguments.

    Settings absent from a record mean what the artefacts trained before them used, not today's defaults:
    SemSR-F's concatenating head without text initialisation (see :func:`hyper_parameters`), the padded
    batches with Adam and clipping (:data:`LEGACY_TRAINING`), and, given the ``architecture``, its
    encoder settings' ``legacy_model`` values (GRU4Rec before its official training scheme).
    """
    kwargs = {k: v for k, v in params.items() if k in _HYPER_KEYS and v is not None}
    if params.get("semantic") == "fusion":
        kwargs.setdefault("fusion_head", "concat")
        kwargs.setdefault("fusion_init", False)
    for key, value in LEGACY_TRAINING.items():
        kwargs.setdefault(key, value)
    if architecture is not None and "model" in params:
        legacy = ARCHITECTURES[architecture].defaults.get("legacy_model", {})
        kwargs["model"] = {**legacy, **(params.get("model") or {})}
    return kwargs
