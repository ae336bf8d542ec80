"""Serving profiles: named, versioned configurations of the graph, and the manifests that make them real.

A :class:`ProfileSpec` says what the graph runs: which sources (session models, the title-kNN semantic
source, the LLM's intent, the LLM recommender of approach i), with which hyper-parameters, how many
candidates each proposes, and how they are fused. ``semsr prepare`` (:mod:`evals.prepare`) turns a spec
into a :class:`ProfileManifest` under ``SEMSR_HOME/profiles/<dataset key>/<profile>.json``: every
artefact it trained or built (path and sha256), the fitted fusion, the protocol card, and the validation
and test metrics it earned. Serving (:mod:`graphs.services`) reads only manifests: what a shopper gets is
what the main job measured, and nothing is fitted inside a request.

The specs are dataset-agnostic: hyper-parameters are the ones tuned on each dataset's validation fold.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sessiondata.errors import ConfigError, DataError
from sessiondata.loaders import BUNDLED, parse_dataset_spec

SourceKind = Literal["session-model", "title-knn", "intent", "llm-agent", "query"]
FusionStrategy = Literal["weighted", "rrf", "learned", "ranker"]
DEFAULT_PROFILE = "fused"
MANIFEST_VERSION = 1


class SourceSpec(BaseModel):
    """One source of candidates: its key in the fusion, what produces them, and how many it proposes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(..., description="Key of the source in fusion, state and explanations.")
    kind: SourceKind
    model: str | None = Field(None, description="Registry model (session-model and title-knn sources).")
    params: dict[str, Any] = Field(default_factory=dict, description="Overrides on top of the tuned parameters.")
    candidates: int = Field(200, ge=1, le=10_000, description="Items this source proposes per request.")

    @property
    def uses_llm(self) -> bool:
        return self.kind in ("intent", "llm-agent")


class ProfileSpec(BaseModel):
    """A serving configuration of the graph (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int = Field(1, ge=1, description="Bumped whenever the definition changes.")
    description: str = ""
    sources: tuple[SourceSpec, ...]
    fusion: FusionStrategy = "weighted"
    max_session_items: int = Field(50, ge=1, description="Most recent session items the models read.")
    fusion_fit_limit: int | None = Field(None, ge=1, description="Validation cases for the fusion fit (slow LLMs).")
    candidate_grid: tuple[int, ...] = Field(
        (), description="Ranker profiles: list lengths each ranked source may get, chosen on validation."
    )
    candidate_budget: int | None = Field(None, ge=1, description="With a grid: most candidates of all sources.")

    @model_validator(mode="after")
    def _grid_fits(self) -> ProfileSpec:
        if self.candidate_grid:
            if self.fusion != "ranker" or self.candidate_budget is None:
                raise ValueError("candidate_grid needs fusion='ranker' and a candidate_budget")
            ranked = [s for s in self.sources if s.kind in ("session-model", "title-knn")]
            if any(s.candidates != max(self.candidate_grid) for s in ranked):
                raise ValueError("with a candidate_grid every ranked source proposes the grid's largest N")
        return self

    @property
    def source_names(self) -> list[str]:
        return [source.name for source in self.sources]

    @property
    def needs_index(self) -> bool:
        """Text retrieval (intent summaries, LLM proposals, what the shopper said) goes through the Chroma
        catalogue index."""
        return any(source.uses_llm or source.kind == "query" for source in self.sources)

    @property
    def query_source(self) -> SourceSpec | None:
        """The source that retrieves what the shopper said (``query``), if the profile has one."""
        return next((source for source in self.sources if source.kind == "query"), None)

    @property
    def needs_fit(self) -> bool:
        return self.fusion != "rrf"

    def with_candidates(self, chosen: dict[str, int]) -> ProfileSpec:
        """This spec with the list lengths chosen on validation (``candidate_grid``) in place of the largest."""
        sources = tuple(
            s.model_copy(update={"candidates": chosen[s.name]}) if s.name in chosen else s for s in self.sources
        )
        return self.model_copy(update={"sources": sources})

    def source(self, name: str) -> SourceSpec:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError("source", name, f"not a source of profile {self.name!r}: {self.source_names}")


def _model(name: str, kind: SourceKind = "session-model", **fields: Any) -> SourceSpec:
    return SourceSpec(name=name, kind=kind, model=name, **fields)


_KNN = (_model("vsknn"), _model("sr"), _model("title-knn", kind="title-knn"))


def _title_item(name: str, lag: int) -> SourceSpec:
    """Titles similar to one recent item (``lag`` steps before the last), the title kNN's tuned vectors."""
    return SourceSpec(name=name, kind="title-knn", model="title-knn", params={"mode": "last", "lag": lag})


# the cheap sources of strong KDD Cup 2023 solutions beside the three above (#14): co-visitation (symmetric,
# lift-normalised; sequential rules are its forward case), titles similar to each of the last three items,
# recent popularity; each proposes up to the grid's largest N, the N used is chosen on validation
CANDIDATE_GRID = (25, 50, 100, 200)
_WIDE = tuple(
    source.model_copy(update={"candidates": max(CANDIDATE_GRID)})
    for source in (
        _model("vsknn"),
        _model("covisit"),
        _model("sr"),
        _model("covisit-lift"),
        _model("recent-popularity"),
        _model("title-knn", kind="title-knn"),
        _title_item("title-last", 0),
        _title_item("title-prev1", 1),
        _title_item("title-prev2", 2),
    )
)
# the ranker profiles' sources: each of the fused sources proposes 100 candidates
_RANKED = tuple(source.model_copy(update={"candidates": 100}) for source in _KNN)
# the two strongest SemSR-F torch models of the torch table (MSGAT-F, NISER-F), as ranker sources
_NEURAL = tuple(_model(name, candidates=100) for name in ("msgat-semf", "niser-semf"))
_INTENT = SourceSpec(name="intent", kind="intent")
# what the shopper said; no labelled query data exists to fit its weight, so a rule sets it (graphs/query.py)
_QUERY = SourceSpec(name="query", kind="query", params={"weight": 1.0})
PROFILES: dict[str, ProfileSpec] = {
    spec.name: spec
    for spec in (
        ProfileSpec(
            name="fused",
            version=4,
            description="V-SKNN + sequential rules + title kNN, 100 candidates each, LightGBM LambdaMART ranker "
            "fitted on every prefix of the validation sessions; what the shopper said (query) by its rule",
            sources=(*_RANKED, _QUERY),
            fusion="ranker",
        ),
        ProfileSpec(
            name="fused-wide",
            version=1,
            description="V-SKNN, co-visitation (plain, lift), sequential rules, recent popularity, title kNN and "
            "titles similar to each of the last three items; each source's list length chosen on validation "
            "(greedy union recall, 400 candidates in all); the same LambdaMART ranker (its validation NDCG@20 "
            "is below fused's, so it is not the default: benchmarks/results/ranker_sources.md)",
            sources=(*_WIDE, _QUERY),
            fusion="ranker",
            candidate_grid=CANDIDATE_GRID,
            candidate_budget=400,
        ),
        ProfileSpec(
            name="fused-weighted",
            version=1,
            description="V-SKNN + sequential rules + title kNN, weighted z-score fusion fitted on validation "
            "(the default before the ranker); what the shopper said (query) by its rule",
            sources=(*_KNN, _QUERY),
        ),
        ProfileSpec(
            name="fused-rrf",
            version=2,
            description="the same sources, reciprocal-rank fusion",
            sources=_KNN,
            fusion="rrf",
        ),
        ProfileSpec(
            name="fused-learned",
            version=2,
            description="the same sources, logistic ranker",
            sources=_KNN,
            fusion="learned",
        ),
        ProfileSpec(
            name="fused-llm",
            version=3,
            description="the fused sources plus the LLM's intent (Chroma retrieval of its summary/keywords)",
            sources=(*_KNN, _INTENT, _QUERY),
            fusion_fit_limit=300,
        ),
        ProfileSpec(name="graph-sr", version=2, description="V-SKNN + sequential rules only", sources=_KNN[:2]),
        ProfileSpec(
            name="fused-neural",
            version=3,
            description="the fused sources plus MSGAT-F and NISER-F (SemSR-F torch models, ~30 min of CPU "
            "training), 100 candidates each, the same LightGBM LambdaMART ranker; query by its rule",
            sources=(*_RANKED, *_NEURAL, _QUERY),
            fusion="ranker",
        ),
        ProfileSpec(
            name="llm-agent",
            version=2,
            description="approach (i): the LLM proposes next titles, mapped to catalogue items by embeddings",
            sources=(SourceSpec(name="llm-agent", kind="llm-agent"),),
            fusion="rrf",
        ),
    )
}


def profile_spec(name: str) -> ProfileSpec:
    if name not in PROFILES:
        raise ConfigError("profile", name, f"unknown profile; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def dataset_key(spec: str) -> str:
    """A directory name for a dataset spec, computed without loading the data: the bundled name, else
    ``<loader>-<folder name>-<hash of the absolute path>`` so two folders with one name never collide."""
    if spec in BUNDLED:
        return spec
    loader, path = parse_dataset_spec(spec)
    resolved = str(Path(path or "").expanduser().resolve())
    folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(resolved).name) or "data"
    return f"{loader}-{folder}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


# ------------------------------------------------------------------------------------------------ manifests


class ArtifactRef(BaseModel):
    """A prepared file or directory: where it is (relative to SEMSR_HOME) and its sha256."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str


class SourceArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    artifact: ArtifactRef | None = None


class FoldArtifacts(BaseModel):
    """What serving one fold needs: the fold's item statistics and each source's fitted model."""

    model_config = ConfigDict(extra="forbid")

    train_digest: str
    stats: ArtifactRef
    sources: dict[str, SourceArtifact]
    recent: ArtifactRef | None = None  # recent item popularity (profiles with the ranker fusion)


class ProfileManifest(BaseModel):
    """A prepared profile (see the module docstring); written by :mod:`evals.prepare`, read by serving."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = MANIFEST_VERSION
    profile: ProfileSpec
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    catalog: ArtifactRef
    folds: dict[str, FoldArtifacts]
    index: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    prepared_at: str = ""

    @property
    def served_profile(self) -> ProfileSpec:
        """The spec as served: each source's list length as the ranker fit chose it on validation (a profile
        with a ``candidate_grid``), else as the spec says."""
        chosen = (((self.fusion or {}).get("fitted_on") or {}).get("candidate_choice") or {}).get("chosen")
        return self.profile.with_candidates(chosen) if chosen else self.profile

    @property
    def version_tag(self) -> str:
        """``name@version+digest``: what an answer says it came from."""
        payload = self.model_dump(mode="json", exclude={"metrics", "prepared_at"})
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"{self.profile.name}@{self.profile.version}+{digest}"


def manifest_path(profiles_dir: Path, dataset: str, profile: str) -> Path:
    return profiles_dir / dataset_key(dataset) / f"{profile}.json"


def read_manifest(path: Path, *, dataset: str, profile: str) -> ProfileManifest:
    """The manifest at ``path``; a missing or corrupt one is one clear error naming ``semsr prepare``."""
    fix = f"semsr prepare --dataset {dataset} --profile {profile}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ProfileNotPrepared(profile, dataset, f"no manifest at {path}; run `{fix}`") from None
    try:
        manifest = ProfileManifest.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise DataError(
            f"not a valid profile manifest ({where}: {first['msg']}); rebuild it with `{fix}`", file=path
        ) from None
    if profile in PROFILES and manifest.profile != PROFILES[profile]:
        raise ProfileNotPrepared(profile, dataset, f"{path} holds an older definition of the profile; run `{fix}`")
    return manifest


def write_manifest(path: Path, manifest: ProfileManifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(manifest.model_dump_json(indent=2) + "\n")
    os.replace(temporary, path)


class ProfileNotPrepared(ConfigError):
    """A profile (or one of its artefacts) is not prepared: the message names it and the command to run."""

    def __init__(self, profile: str, dataset: str, reason: str) -> None:
        super().__init__("profile", profile, f"not prepared for dataset {dataset!r}: {reason}")
