"""The one typed settings object: defaults, then ``SEMSR_*`` environment variables, then CLI flags.

Nested sections use ``__`` in the environment, e.g. ``SEMSR_PROTOCOL__EXCLUDE_SEEN=false``. An entry point
(the ``semsr`` command's callback, the LangGraph server module, :mod:`graphs.api` on first use, a
benchmark's ``main``) calls :func:`load_settings` once and passes the object down; no other module reads
``SEMSR_*`` variables. Lower layers get the part they need: directories from :class:`Paths`, a
:class:`~sr_models.env.ModelEnv` for models, the config sections as they are.

This module imports only the config sections of the layers below; it sits under ``graphs`` so the
graph's entry points can build settings without importing the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.config import LLMConfig
from embeddings.config import EmbedderConfig
from sessiondata.protocol import ProtocolConfig
from sr_models.env import ModelEnv
from sr_models.ivf import AnnConfig
from sr_models.neural.config import NeuralConfig
from tools.config import ChromaConfig


def _default_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class Paths:
    """The layout of ``SEMSR_HOME``: every piece of user state has its place here, none in the source tree."""

    home: Path
    embeddings: Path  # the on-disk embedding cache
    artifacts: Path  # torch training cache (weights + validated epoch records)
    tuned: Path  # hyper-parameters tuned by `semsr tune` (win over the shipped ones)
    models: Path  # fitted models, catalogue, statistics and fusions of prepared profiles
    profiles: Path  # profile manifests
    chroma: Path  # the embedded Chroma store
    llm_cache: Path  # the LLM response cache (SQLite)
    threads_db: Path  # conversation threads (SQLite checkpointer)

    @classmethod
    def under(cls, home: Path) -> Paths:
        names = {
            "embeddings": "embeddings",
            "artifacts": "artifacts",
            "tuned": "tuned",
            "models": "models",
            "profiles": "profiles",
            "chroma": "chroma",
            "llm_cache": "llm_cache.sqlite",
            "threads_db": "threads.sqlite",
        }
        return cls(home=home, **{field: home / name for field, name in names.items()})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEMSR_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path(".semsr"), description="Caches, trained artefacts, indexes, profiles and threads.")
    dataset: str = Field("amazon-beauty", description="The dataset whose prepared profile is served.")
    profile: str = Field("fused", description="The serving profile (semsr prepare builds it; semsr run evaluates it).")
    runs_dir: Path = Field(Path("runs"), description="Where the main job writes evaluation runs and reports.")
    threads: int = Field(default_factory=_default_threads, ge=1, description="CPU threads for numpy/torch.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where torch models train and score.")
    seed: int = 0
    progress: bool = Field(True, description="Show progress bars on long work.")
    batch_size: int = Field(256, ge=1, description="Prompts scored per batch in evaluation.")
    replay_workers: int = Field(
        default_factory=_default_threads,
        ge=1,
        le=64,
        description="Processes a long replay through the graph runs in (evals.executors.ProcessExecutor); "
        "each gets threads // replay_workers BLAS threads.",
    )
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chroma: ChromaConfig = Field(default_factory=ChromaConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    neural: NeuralConfig = Field(default_factory=NeuralConfig)
    ann: AnnConfig = Field(default_factory=AnnConfig)
    node_threads: int = Field(
        32,
        ge=1,
        le=512,
        description="Threads an async caller (the LangGraph server) runs the graph's blocking nodes in, "
        "shared by all its concurrent runs (the event loop's default pool has cpu_count + 4).",
    )
    thread_ttl_days: float = Field(
        30.0, gt=0, description="A conversation thread untouched this long is deleted from threads.sqlite."
    )
    thread_checkpoints: int = Field(
        4, ge=2, description="Checkpoints kept per thread (older ones are pruned: threads.sqlite stays bounded)."
    )

    @property
    def paths(self) -> Paths:
        return Paths.under(self.home)

    def model_env(self, *, progress: bool | None = None) -> ModelEnv:
        """What session models get from the settings (directories, embedder, threads, device)."""
        return ModelEnv(
            artifact_dir=self.paths.artifacts,
            embeddings_dir=self.paths.embeddings,
            tuned_dir=self.paths.tuned,
            embedder=self.embedder,
            threads=self.threads,
            device=self.device,
            progress=self.progress if progress is None else progress,
            neural=self.neural,
            ann=self.ann,
        )

    def chroma_path(self) -> Path:
        return self.chroma.path if self.chroma.path is not None else self.paths.chroma

    def llm_cache_path(self) -> Path:
        return self.llm.cache_path if self.llm.cache_path is not None else self.paths.llm_cache


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit (CLI) overrides applied last (``None`` = not given)."""
    settings = Settings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=given) if given else settings


def apply_threads(settings: Settings) -> None:
    """Size numpy's (and torch's, when loaded) thread pools to ``settings.threads``: called by entry points."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(settings.threads)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(settings.threads)
