"""The torch session recommenders behind one :class:`~sr_models.base.Recommender` class.

``NeuralRecommender(architecture, semantic=..., env=...)`` builds the encoder of ``architecture``
(gru4rec, srgnn, niser, msgat, sasrec, bert4rec; :mod:`sr_models.neural.architectures`), optionally with
SemSR-I (``semantic="init"``) or SemSR-F (``semantic="fusion"``; :mod:`sr_models.neural.semsr_text`).
Its hyper-parameters come from :mod:`sr_models.neural.hyper`, fitting and artefact caching from
:mod:`sr_models.neural.fitting`, the training loop from :mod:`sr_models.neural.trainer`. Where weights are
cached and which device and threads are used come from the :class:`~sr_models.env.ModelEnv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from sessiondata.errors import ConfigError
from sr_models.base import Evidence, Recommender, TrainData
from sr_models.env import ModelEnv
from sr_models.neural.architectures import ARCHITECTURES
from sr_models.neural.artifacts import ArtifactStore, read_artifact, save_artifact
from sr_models.neural.data import Examples, prefix_examples, sequence_examples, session_examples, tokens
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.fitting import fit_cached
from sr_models.neural.hyper import Semantic, constructor_args, hyper_parameters, model_name
from sr_models.neural.semsr_text import FusedEncoder, LateFusedEncoder, init_from_text, text_source_id
from sr_models.neural.trainer import RECORDED_TRAINING, TrainConfig, score_tokens, seed_everything


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
        env: ModelEnv | None = None,
        deterministic: bool = False,
        cache: bool = True,
        **hyper: Any,
    ) -> None:
        self.architecture = architecture
        self.hyper: dict[str, Any] = hyper_parameters(architecture, semantic=semantic, **hyper)
        self.name = model_name(architecture, semantic)  # type: ignore[misc]
        self.env = env or ModelEnv()
        self.deterministic = deterministic
        self.cache = cache
        if semantic != "none":  # which vectors it learns from is part of what it is (and of its artefact key)
            self.hyper["text_vectors"] = text_source_id(self.hyper["semantic_source"], self.env)
        self.encoder: SessionEncoder | None = None
        self.history: list[dict[str, float]] = []
        self.best_epoch = 0
        self.artifact_path: Path | None = None
        self.device = torch.device("cpu")
        self.loss_rule: dict[str, int] | None = None  # set when the catalogue size chose sampled softmax
        self.world = 1  # processes it was trained on (torchrun)

    # ------------------------------------------------------------------ construction
    def params(self) -> dict[str, Any]:
        return {"architecture": self.architecture, **self.hyper}

    def epoch_params(self) -> dict[str, Any]:
        """What the validated epoch count is keyed by: the hyper-parameters without the seed, so every
        seed's test-fold fit trains for the epochs validated once (as RecBole/session-rec reuse tuned
        hyper-parameters across seeds)."""
        return {k: v for k, v in self.params().items() if k != "seed"}

    def twin(self) -> NeuralRecommender:
        """An unfitted copy with the same hyper-parameters and environment (the validation fit's model)."""
        return NeuralRecommender(
            self.architecture, env=self.env, deterministic=self.deterministic, cache=self.cache, **self._init_args()
        )

    def _init_args(self) -> dict[str, Any]:
        return constructor_args(self.hyper, self.architecture)

    def fit_catalogue(self, n_items: int) -> None:
        """Sampled softmax instead of full-catalogue cross-entropy for a catalogue of more than
        ``env.neural.sampled_above_items`` items (:mod:`sr_models.neural.config`), written into the
        hyper-parameter record (so into the artefact's key and config); evaluation still ranks every item."""
        rule = self.env.neural
        if self.hyper["loss"] != "ce" or not rule.sampled_above_items or n_items <= rule.sampled_above_items:
            return
        self.hyper.update(loss="sampled", n_negatives=rule.sampled_negatives, sample_alpha=float(rule.sampled_alpha))
        self.loss_rule = {"sampled_above_items": rule.sampled_above_items, "n_items": n_items}

    def store(self) -> ArtifactStore | None:
        return ArtifactStore(self.env.artifact_dir) if self.env.artifact_dir is not None else None

    def build_encoder(self, n_items: int, vectors: np.ndarray | None) -> SessionEncoder:
        h = self.hyper
        arch = ARCHITECTURES[self.architecture]
        encoder = arch.encoder(n_items, h["dim"], h["max_len"], h["dropout"], **h["model"])
        if (h["semantic"] == "init" or h.get("fusion_init")) and vectors is not None:
            init_from_text(encoder.input_embedding(), vectors)
        if h["semantic"] == "fusion":
            text_dim = vectors.shape[1] if vectors is not None else 384
            shared = {"text_dim": text_dim, "sem_dim": h["sem_dim"], "scale": h["fusion_scale"]}
            shared["dropout"] = h["fusion_dropout"]
            if h.get("fusion_head") == "late":
                encoder = LateFusedEncoder(encoder, vectors, **shared)
            else:
                residual = h.get("fusion_residual", False)
                encoder = FusedEncoder(encoder, vectors, fused_dim=h["fused_dim"], residual=residual, **shared)
        return encoder

    def examples(self, data: TrainData) -> Examples:
        mode = ARCHITECTURES[self.architecture].encoder.example_mode
        if self.hyper.get("training") == "session-parallel":
            return session_examples(data.sessions)
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
            **{k: h[k] for k in RECORDED_TRAINING if k in h},
            seed=h["seed"],
            device=str(self.device),
            progress=self.env.progress,
            log_path=log_path,
        )

    # ------------------------------------------------------------------ fit / score
    def setup(self) -> None:
        self.device = resolve_device(self.env.device)
        torch.set_num_threads(max(1, self.env.threads))
        seed_everything(self.hyper["seed"], self.deterministic)

    def fit(self, data: TrainData) -> Self:
        fit_cached(self, data)
        return self

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
    def artifact_config(self, data: TrainData | None = None, seconds: float | None = None) -> dict[str, Any]:
        """The JSON half of an artefact: what the model is, what it learnt from, how training went."""
        config: dict[str, Any] = {"model": self.name, "params": self.params(), "n_items": self.n_items}
        if data is not None:
            config.update(dataset=data.dataset, fold=data.fold, digest=data.digest)
        config.update(best_epoch=self.best_epoch, history=self.history)
        if self.loss_rule is not None:
            config["loss_rule"] = self.loss_rule
        if self.world > 1:
            config["world"] = self.world
        if seconds is not None:
            config["train_seconds"] = round(seconds, 2)
        return config

    def save(self, directory: Path) -> None:
        """Weights as safetensors and the artefact config as JSON (no pickle), as the fit cache stores them."""
        self._check_fitted()
        assert self.encoder is not None
        save_artifact(directory, self.encoder.state_dict(), self.artifact_config())

    def load(self, directory: Path) -> None:
        self.setup()
        self.load_weights(directory)

    @torch.no_grad()
    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        """The recent session item closest to each item in the model's own learnt item space."""
        self._check_fitted()
        assert self.encoder is not None
        table = torch.nn.functional.normalize(self.encoder.item_table().detach().float(), dim=-1)
        recent = list(dict.fromkeys(reversed(list(prompt))))[:3]
        similarity = (table[list(items)] @ table[recent].T).cpu().numpy()
        found: list[Evidence | None] = []
        for row in similarity:
            column = int(np.argmax(row))
            found.append(Evidence(int(recent[column]), "sequence", float(row[column])))
        return found

    def load_weights(self, directory: Path) -> None:
        self.load_state(*read_artifact(directory), directory)

    def load_state(self, state: dict[str, torch.Tensor], config: dict[str, Any], directory: Path) -> None:
        """Weights and config as :func:`~sr_models.neural.artifacts.read_artifact` returns them."""
        encoder = self.build_encoder(int(config["n_items"]), None)
        try:
            encoder.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError("artifact", str(directory), f"weights do not fit the model: {error}") from None
        self.encoder, self.n_items = encoder.to(self.device).eval(), int(config["n_items"])
        self.history, self.best_epoch = list(config.get("history", [])), int(config.get("best_epoch", 0))
        self.artifact_path = directory


def load_recommender(directory: str | Path, *, env: ModelEnv | None = None) -> NeuralRecommender:
    """A fitted recommender from an artefact directory (safetensors + JSON only; no code runs)."""
    _, config = read_artifact(directory)
    params = dict(config.get("params", {}))
    architecture = params.pop("architecture", None)
    if architecture not in ARCHITECTURES:
        raise ConfigError("architecture", architecture, f"artefact {directory} names an unknown model")
    args = constructor_args(params, architecture)
    model = NeuralRecommender(architecture, env=env or ModelEnv(device="cpu"), cache=False, **args)
    model.setup()
    model.load_weights(Path(directory))
    return model
