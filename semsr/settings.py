"""The one typed settings object: defaults, then ``SEMSR_*`` environment variables, then CLI flags.

Nested sections use ``__`` in the environment, e.g. ``SEMSR_PROTOCOL__EXCLUDE_SEEN=false``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.config import LLMConfig
from embeddings.config import EmbedderConfig
from graphs.resources import ResourceConfig
from sessiondata.protocol import ProtocolConfig
from tools.config import ChromaConfig


def _default_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEMSR_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path(".semsr"), description="Caches, trained artefacts and indexes.")
    runs_dir: Path = Field(Path("runs"), description="Where the main job writes evaluation runs and reports.")
    threads: int = Field(default_factory=_default_threads, ge=1, description="CPU threads for numpy/torch.")
    seed: int = 0
    progress: bool = Field(True, description="Show progress bars on long work.")
    batch_size: int = Field(256, ge=1, description="Prompts scored per batch in evaluation.")
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    chroma: ChromaConfig = Field(default_factory=ChromaConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    semantic_index: Literal["chroma", "exact"] = Field(
        "chroma", description="The graph's semantic retrieval: the Chroma index, or exact cosine in numpy."
    )

    def resource_config(self) -> ResourceConfig:
        """The part of the settings the graph's resources need."""
        return ResourceConfig(
            home=self.home,
            threads=self.threads,
            protocol=self.protocol,
            embedder=self.embedder,
            llm=self.llm,
            chroma=self.chroma,
            semantic_index=self.semantic_index,
        )


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit (CLI) overrides applied last."""
    settings = Settings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    return settings
