"""Where the Chroma catalogue index lives: an embedded on-disk store by default, or a Chroma server.

``Settings.chroma`` (env ``SEMSR_CHROMA__SERVER_URL=http://127.0.0.1:8000`` etc.).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ChromaConfig(BaseModel):
    """Chroma client and HNSW settings for catalogue indexes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = Field(None, description="Embedded store directory; default <home>/chroma.")
    server_url: str | None = Field(None, description="http://HOST:PORT of a `chroma run` server (HttpClient).")
    collection_prefix: str = Field("semsr", min_length=1, max_length=40, description="Collection name prefix.")
    ef_construction: int = Field(200, ge=8, description="HNSW build-time candidate list size.")
    ef_search: int = Field(100, ge=8, description="HNSW query-time candidate list size.")
    max_neighbors: int = Field(16, ge=4, description="HNSW links per node (M).")
