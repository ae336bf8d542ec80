"""The torch session recommenders behind one :class:`~sr_models.base.Recommender` class.

``NeuralRecommender(architecture, semantic=...)`` builds the encoder of ``architecture`` (gru4rec, srgnn,
niser, msgat, sasrec, bert4rec), optionally with SemSR-I (``semantic="init"``) or SemSR-F
(``semantic="fusion"``), and trains it with :mod:`sr_models.neural.trainer`.

How epochs are chosen without touching the test split:

* ``fit`` with ``valid_cases`` (the validation fold) trains up to ``max_epochs`` with early stopping on
  validation NDCG@20 and records the best epoch in the artefact store;
* ``fit`` without them (the test fold) trains on all training sessions for ``epochs`` if given, else for
  the recorded best epoch of the same hyper-parameters, else it first runs that validation fit itself on a
  validation split cut from its training sessions by time (the protocol's rule).

Trained weights are cached by (model name, hyper-parameters, TrainData.digest), so ``semsr eval`` after
``semsr train`` (or a second eval) reuses them.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch

from sessiondata.errors import ConfigError
from sessiondata.protocol import ProtocolConfig, build_protocol
from sessiondata.schema import Dataset
from sr_models.base import Recommender, TrainData
from sr_models.neural.artifacts import (
    ArtifactStore,
    default_root,
    is_complete,
    read_artifact,
    save_artifact,
    training_lock,
)
from sr_models.neural.bert4rec import BERT4RecEncoder
from sr_models.neural.data import Examples, prefix_examples, sequence_examples, tokens
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.gru4rec import GRU4RecEncoder
from sr_models.neural.msgat import MSGATEncoder
from sr_models.neural.sasrec import SASRecEncoder
from sr_models.neural.semantic import FusedEncoder, LateFusedEncoder, load_semantic, semantic_init
from sr_models.neural.srgnn import SRGNNEncoder
from sr_models.neural.trainer import TrainConfig, score_tokens, seed_everything, train

log = logging.getLogger("sr_models.neural")

Semantic = Literal["none", "init", "fusion"]
SUFFIX = {"none": "", "init": "-semi", "fusion": "-semf"}

ENCODERS: dict[str, type[SessionEncoder]] = {
    "gru4rec": GRU4RecEncoder,
    "srgnn": SRGNNEncoder,
    "niser": SRGNNEncoder,
    "msgat": MSGATEncoder,
    "sasrec": SASRecEncoder,
    "bert4rec": BERT4RecEncoder,
}

# per-architecture defaults (papers / RecBole settings, sized for 2 CPU cores); any can be overridden.
# ``max_epochs`` is only the cap of the validation fit: early stopping (``patience`` epochs without a better
# validation NDCG@20) picks the epoch count, and the transformers were still improving at 10 epochs.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gru4rec": {"dim": 128, "dropout": 0.3, "max_len": 50, "batch_size": 128, "lr": 2e-3, "model": {}},
    "srgnn": {
        "dim": 100,
        "dropout": 0.0,
        "max_len": 20,
        "batch_size": 256,
        "lr": 2e-3,
        "weight_decay": 1e-5,
        "model": {},
    },
    "niser": {
        "dim": 100,
        "dropout": 0.1,
        "max_len": 20,
        "batch_size": 256,
        "lr": 2e-3,
        "model": {"niser": True, "positions": True, "scale": 16.0},
    },
    "msgat": {"dim": 100, "dropout": 0.1, "max_len": 20, "batch_size": 256, "lr": 2e-3, "model": {}},
    "sasrec": {
        "dim": 64,
        "dropout": 0.3,
        "max_len": 50,
        "batch_size": 256,
        "lr": 2e-3,
        "model": {"n_layers": 2, "n_heads": 2},
        "max_epochs": 40,
        "patience": 3,
    },
    "bert4rec": {
        "dim": 64,
        "dropout": 0.2,
        "max_len": 50,
        "batch_size": 256,
        "lr": 2e-3,
        "model": {"n_layers": 2, "n_heads": 2},
        "max_epochs": 150,  # cloze training learns from ~1/4 of the positions per epoch: cheap, slow epochs
        "patience": 10,  # validation NDCG is noisy epoch to epoch; patience 4 stopped it at epoch 26
    },
}
RUNTIME = ("device", "threads", "progress", "cache", "artifact_dir", "deterministic")


def resolve_threads(threads: int | None) -> int:
    """At most 2 torch threads; 1 when the 2-core machine is already busy (torch slows badly otherwise)."""
    if threads is not None:
        return max(1, threads)
    busy = os.getloadavg()[0] > 1.5 if hasattr(os, "getloadavg") else False
    return 1 if busy else max(1, min(2, os.cpu_count() or 1))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise ConfigError("device", device, "use 'cpu', 'auto', or 'cuda' on a machine with CUDA")
    return torch.device(device)


class NeuralRecommender(Recommender):
    """A torch session recommender (see the module docstring); scores the full catalogue."""

    def __init__(
        self,
        architecture: str,
        *,
        semantic: Semantic = "none",
        semantic_source: Literal["minilm", "random"] = "minilm",
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
        fusion_head: Literal["concat", "late"] = "late",
        model: dict[str, Any] | None = None,
        seed: int = 0,
        device: str = "auto",
        threads: int | None = None,
        deterministic: bool = False,
        cache: bool = True,
        progress: bool = False,
        artifact_dir: str | Path | None = None,
    ) -> None:
        if architecture not in ENCODERS:
            raise ConfigError("architecture", architecture, f"choose one of {sorted(ENCODERS)}")
        if semantic not in SUFFIX:
            raise ConfigError("semantic", semantic, f"choose one of {sorted(SUFFIX)}")
        if loss not in ("ce", "sampled"):
            raise ConfigError("loss", loss, "choose 'ce' or 'sampled'")
        if semantic == "fusion" and ENCODERS[architecture].example_mode == "cloze":
            raise ConfigError("semantic", semantic, f"{architecture} has no fused (SemSR-F) variant")
        defaults = DEFAULTS[architecture]
        self.architecture = architecture
        self.name = architecture + SUFFIX[semantic]  # type: ignore[misc]
        self.hyper: dict[str, Any] = {
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
            self.hyper.update(
                sem_dim=sem_dim, fused_dim=fused_dim, fusion_scale=fusion_scale, fusion_dropout=fusion_dropout
            )
            if fusion_residual:  # only recorded when on, so keys of earlier artefacts stay valid
                self.hyper["fusion_residual"] = True
            # SemSR-F's defaults were chosen on validation (docs/sr_models.md): the late head on an id table
            # that also starts from the text vectors. Only those settings are recorded: a concatenating-head
            # model (``fusion_head="concat", fusion_init=False``) records neither, so its keys match the
            # artefacts trained before the late head existed, and ``constructor_args`` reads their absence.
            if fusion_init:
                self.hyper["fusion_init"] = True
            if fusion_head not in ("concat", "late"):
                raise ConfigError("fusion_head", fusion_head, "choose 'concat' or 'late'")
            if fusion_head == "late":  # id scores + a semantic cosine channel (LateFusedEncoder)
                self.hyper["fusion_head"] = "late"
        accepted = {
            name
            for name, p in inspect.signature(ENCODERS[architecture].__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        unknown = sorted(set(self.hyper["model"]) - accepted)
        if unknown:
            raise ConfigError("model", unknown, f"not parameters of {architecture}; accepted: {sorted(accepted)}")
        self.runtime = {
            "device": device,
            "threads": threads,
            "deterministic": deterministic,
            "cache": cache,
            "progress": progress,
            "artifact_dir": artifact_dir,
        }
        self.encoder: SessionEncoder | None = None
        self.history: list[dict[str, float]] = []
        self.best_epoch = 0
        self.artifact_path: Path | None = None

    # ------------------------------------------------------------------ construction
    def params(self) -> dict[str, Any]:
        return {"architecture": self.architecture, **self.hyper}

    def _store(self) -> ArtifactStore:
        root = self.runtime["artifact_dir"]
        return ArtifactStore(Path(root) if root else default_root())

    def build_encoder(self, n_items: int, vectors: np.ndarray | None) -> SessionEncoder:
        h = self.hyper
        encoder = ENCODERS[self.architecture](n_items, h["dim"], h["max_len"], h["dropout"], **h["model"])
        if (h["semantic"] == "init" or h.get("fusion_init")) and vectors is not None:
            semantic_init(encoder.input_embedding(), vectors)
        if h["semantic"] == "fusion":
            text_dim = vectors.shape[1] if vectors is not None else 384
            shared = {
                "text_dim": text_dim,
                "sem_dim": h["sem_dim"],
                "scale": h["fusion_scale"],
                "dropout": h["fusion_dropout"],
            }
            if h.get("fusion_head") == "late":
                encoder = LateFusedEncoder(encoder, vectors, **shared)
            else:
                residual = h.get("fusion_residual", False)
                encoder = FusedEncoder(encoder, vectors, fused_dim=h["fused_dim"], residual=residual, **shared)
        return encoder

    def examples(self, data: TrainData) -> Examples:
        mode = ENCODERS[self.architecture].example_mode
        if mode == "prefix":
            return prefix_examples(data.sessions, self.hyper["max_len"])
        if mode == "sequence":
            return sequence_examples(data.sessions, self.hyper["max_len"])
        windows = [tokens(s.items)[-self.hyper["max_len"] :] for s in data.sessions if len(s.items) >= 2]
        return Examples(windows, windows, per_position=True)  # cloze: targets chosen by the mask

    def train_config(self, epochs: int, log_path: Path | None) -> TrainConfig:
        h = self.hyper
        return TrainConfig(
            max_len=h["max_len"],
            batch_size=h["batch_size"],
            lr=h["lr"],
            weight_decay=h["weight_decay"],
            epochs=epochs,
            patience=h["patience"],
            loss=h["loss"],
            n_negatives=h["n_negatives"] or 0,
            sample_alpha=h["sample_alpha"] or 0.0,
            seed=h["seed"],
            device=str(self.device),
            progress=self.runtime["progress"],
            log_path=log_path,
        )

    # ------------------------------------------------------------------ fit / score
    def _setup(self) -> None:
        self.device = resolve_device(self.runtime["device"])
        torch.set_num_threads(resolve_threads(self.runtime["threads"]))
        seed_everything(self.hyper["seed"], self.runtime["deterministic"])

    def epoch_params(self) -> dict[str, Any]:
        """What the validated epoch count is keyed by: the hyper-parameters without the seed, so every
        seed's test-fold fit trains for the epochs validated once (as RecBole/session-rec reuse tuned
        hyper-parameters across seeds)."""
        return {k: v for k, v in self.params().items() if k != "seed"}

    def fit(self, data: TrainData) -> Self:
        self._setup()
        store, params = self._store(), self.params()
        directory = store.model_dir(data.dataset, self.name, params, data.digest or _sessions_digest(data))
        with training_lock(directory):
            if self.runtime["cache"] and is_complete(directory):
                log.info("%s: reusing trained artefact %s", self.name, directory)
                self._load(directory)
                if data.valid_cases and store.read_epochs(data.dataset, self.name, self.epoch_params()) is None:
                    # a validation-fold artefact from before the record existed (or whose record was deleted)
                    record = {"best_epoch": self.best_epoch, "seed": self.hyper["seed"], "history": self.history}
                    store.write_epochs(data.dataset, self.name, self.epoch_params(), record)
                return self
            return self._fit(data, store, params, directory)

    def _fit(self, data: TrainData, store: ArtifactStore, params: dict[str, Any], directory: Path) -> Self:
        if data.valid_cases:
            epochs, valid_cases = self.hyper["max_epochs"], data.valid_cases
        else:
            epochs, valid_cases = self._epochs_for_test_fit(data, store), ()
        vectors = (
            load_semantic(data.catalog, self.hyper["semantic_source"]) if self.hyper["semantic"] != "none" else None
        )
        encoder = self.build_encoder(data.n_items, vectors)
        if isinstance(encoder, MSGATEncoder) or isinstance(getattr(encoder, "base", None), MSGATEncoder):
            getattr(encoder, "base", encoder).set_graph(data.sessions)
        encoder.to(self.device)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "train_log.jsonl").unlink(missing_ok=True)
        result = train(
            encoder, self.examples(data), self.train_config(epochs, directory / "train_log.jsonl"), valid_cases
        )
        self.encoder, self.n_items = encoder, data.n_items
        self.history, self.best_epoch = result.history, result.best_epoch
        if valid_cases:
            record = {"best_epoch": result.best_epoch, "seed": self.hyper["seed"], "history": result.history}
            store.write_epochs(data.dataset, self.name, self.epoch_params(), record)
        config = {
            "model": self.name,
            "params": params,
            "n_items": data.n_items,
            "dataset": data.dataset,
            "fold": data.fold,
            "digest": data.digest,
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 2),
            "history": result.history,
        }
        self.artifact_path = save_artifact(directory, encoder.state_dict(), config)
        return self

    def _epochs_for_test_fit(self, data: TrainData, store: ArtifactStore) -> int:
        if self.hyper["epochs"]:
            return int(self.hyper["epochs"])
        recorded = store.read_epochs(data.dataset, self.name, self.epoch_params())
        if recorded:
            return recorded
        log.info("%s: no validated epoch count yet; fitting on a validation split first", self.name)
        validation = validation_split(data)
        twin = NeuralRecommender(self.architecture, **constructor_args(self.hyper))
        twin.runtime = dict(self.runtime)
        twin.fit(validation)
        return max(1, twin.best_epoch)

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        assert self.encoder is not None
        for position, prompt in enumerate(prompts):
            if len(prompt) == 0:
                raise ValueError(f"prompt {position} is empty: a session needs at least one item")
            bad = [item for item in prompt if not 0 <= int(item) < self.n_items]
            if bad:
                raise ValueError(f"prompt {position} has item indices outside the catalogue: {bad[:5]}")
        scores = score_tokens(self.encoder, [tokens(p) for p in prompts], self.hyper["max_len"])
        return scores.cpu().numpy()

    # ------------------------------------------------------------------ artefacts
    def _load(self, directory: Path) -> None:
        state, config = read_artifact(directory)
        encoder = self.build_encoder(int(config["n_items"]), None)
        try:
            encoder.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError("artifact", str(directory), f"weights do not fit the model: {error}") from None
        self.encoder, self.n_items = encoder.to(self.device).eval(), int(config["n_items"])
        self.history, self.best_epoch = list(config.get("history", [])), int(config.get("best_epoch", 0))
        self.artifact_path = directory


_INIT_KEYS = set(inspect.signature(NeuralRecommender.__init__).parameters) - {"self", "architecture"}


def constructor_args(params: dict[str, Any]) -> dict[str, Any]:
    """Recorded hyper-parameters (``params()``/``hyper``) back to ``NeuralRecommender`` arguments.

    SemSR-F settings absent from a fusion model's record mean the concatenating head without text
    initialisation (see ``__init__``), not today's defaults.
    """
    kwargs = {k: v for k, v in params.items() if k in _INIT_KEYS and v is not None}
    if params.get("semantic") == "fusion":
        kwargs.setdefault("fusion_head", "concat")
        kwargs.setdefault("fusion_init", False)
    return kwargs


def load_recommender(directory: str | Path, *, device: str = "auto", threads: int | None = None) -> NeuralRecommender:
    """A fitted recommender from an artefact directory (safetensors + JSON only; no code runs)."""
    _, config = read_artifact(directory)
    params = dict(config.get("params", {}))
    architecture = params.pop("architecture", None)
    if architecture not in ENCODERS:
        raise ConfigError("architecture", architecture, f"artefact {directory} names an unknown model")
    model = NeuralRecommender(architecture, **constructor_args(params), device=device, threads=threads, cache=False)
    model._setup()
    model._load(Path(directory))
    return model


def validation_split(data: TrainData, fraction: float = 0.2) -> TrainData:
    """Sub-train sessions + validation cases cut by time from ``data``: the protocol's validation rule."""
    dataset = Dataset(name=data.dataset or "data", sessions=tuple(data.sessions), catalog=data.catalog)
    cut = build_protocol(dataset, ProtocolConfig(split="temporal", test_fraction=fraction))
    sub = TrainData(cut.test.train, data.catalog, cut.test.cases, data.dataset, "valid", "")
    return TrainData(sub.sessions, sub.catalog, sub.valid_cases, sub.dataset, "valid", _sessions_digest(sub))


def _sessions_digest(data: TrainData) -> str:
    digest = hashlib.sha256(f"{len(data.catalog)}".encode())
    for session in data.sessions:
        digest.update(f"{session.session_id}:{','.join(map(str, session.items))};".encode())
    digest.update(f"valid={len(data.valid_cases)}".encode())
    return digest.hexdigest()[:16]
