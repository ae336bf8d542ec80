"""What a session model may use besides its data: where its files live and how much compute it gets.

The project settings (:class:`semsr.settings.Settings`) are built once at an entry point and reach models
as this small object: ``sr_models`` sits below ``semsr`` and never reads the environment itself. A model
that keeps no files (kNN, rules) ignores it; the title-kNN recommender embeds titles through the cache in
``embeddings_dir``; torch models cache weights under ``artifact_dir`` and train on ``device`` with
``threads`` CPU threads, with sampled softmax on large catalogues as ``neural`` says
(:mod:`sr_models.neural.config`), and the title kNN searches an IVF index on large catalogues as ``ann``
says (:mod:`sr_models.ivf`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from embeddings.config import EmbedderConfig
from sr_models.ivf import AnnConfig
from sr_models.neural.config import NeuralConfig


@dataclass(frozen=True)
class ModelEnv:
    """Directories and compute for fitting and loading models (``None`` directory = keep nothing on disk)."""

    artifact_dir: Path | None = None
    embeddings_dir: Path | None = None
    tuned_dir: Path | None = None  # the user's tuned hyper-parameters (``semsr tune``); shipped ones are read-only
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    threads: int = 1
    device: str = "auto"
    progress: bool = False
    neural: NeuralConfig = field(default_factory=NeuralConfig)  # torch training at scale (sampled softmax)
    ann: AnnConfig = field(default_factory=AnnConfig)  # the title kNN's approximate index on large catalogues
