"""Session recommenders by name, with their tuning grids and the hyper-parameters tuned per dataset.

Tuned hyper-parameters (chosen on the validation fold only) are JSON files ``<dataset>/<model>.json``:
the user's, written by ``semsr tune`` under ``SEMSR_HOME/tuned`` (``ModelEnv.tuned_dir``), win over the
read-only ones shipped in ``sr_models/tuned/``, so the harness, the CLI and the graph build the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sessiondata.errors import ConfigError
from sr_models.base import Recommender
from sr_models.covisit import CoVisitation, LiftCoVisitation
from sr_models.env import ModelEnv
from sr_models.knn import SKNN, SessionKNN
from sr_models.neural.specs import neural_specs
from sr_models.popularity import Popularity, RecentPopularity
from sr_models.records import TunedRecord, read_record
from sr_models.rules import SequentialRules
from sr_models.semantic_knn import SPACE_FIELDS, SemanticKNN
from sr_models.title_knn import TitleKNN

SHIPPED_TUNED_DIR = Path(__file__).parent / "tuned"  # read-only defaults; users tune into SEMSR_HOME


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    factory: Callable[..., Recommender]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    uses_env: bool = False  # the factory takes ``env=`` (models that embed titles or keep files)


# validation search spaces (random search over them: evals.tuning)
SKNN_GRID = {"k": [50, 100, 200, 500], "sample_size": [500, 1000, 2500]}
VSKNN_GRID = {
    "k": [25, 50, 100, 200],
    "sample_size": [500, 1000, 2500, 5000],
    "prompt_decay": ["linear", "harmonic", "exp"],
    "prompt_decay_lambda": [1.0, 2.0, 4.0],
    "neighbour_decay_lambda": [None, 1.0, 2.0, 3.0, 5.0, 10.0],
    "idf_weight": [0.0, 0.5, 1.0, 2.0],
}
RULES_GRID = {
    "window": [3, 5, 10, 20],
    "pair_weight": ["linear", "harmonic", "quadratic"],
    "prompt_items": [1, 2, 3, 5],
    "prompt_decay_lambda": [0.5, 1.0, 2.0],
    "row_normalise": [True, False],
}
COVISIT_GRID = {  # symmetric pairs by their distance: the forward-only variant is "sr" (its own grid above)
    "window": [2, 5, 10, 20],
    "pair_weight": ["uniform", "harmonic", "quadratic"],
    "prompt_items": [1, 3, 5],
    "row_normalise": [True, False],
}
COVISIT_LIFT_GRID = {
    "window": [2, 5, 10, 20],
    "pair_weight": ["uniform", "harmonic"],
    "lift": [0.25, 0.5, 0.75, 1.0],
    "prompt_items": [1, 3],
    "row_normalise": [True, False],
}
RECENT_POPULARITY_GRID = {"fraction": [0.02, 0.05, 0.1, 0.2, 0.5]}
TITLE_KNN_GRID = {  # pooling, prior and the vectors' post-processing (embeddings.postprocess) together
    "mode": ["last", "mean", "recency"],
    "decay": [0.2, 0.35, 0.5, 0.7, 0.85],
    "popularity_weight": [0.0, 0.02, 0.05, 0.1],
    "candidates": ["all", "train"],
    "center": [False, True],
    "whiten": [0.0, 0.25, 0.5, 0.75, 1.0],
    "keep": [1.0, 0.67, 0.33],
}
VSKNN_SEM_GRID = {  # the V-SKNN part (k aside) and the vectors' space come from INHERITS
    "k": [50, 100, 200],
    "blend": [0.0, 0.25, 0.5, 0.75, 0.9, 1.0],
    "vector_neighbours": [50, 100, 250, 500],
    "vector_mode": ["last", "recency"],
    "vector_decay": [0.5, 0.7, 0.85],
    "neighbour_pooling": ["same", "mean"],
}
# parameters a model takes from other models' tuning records on the same dataset (each tuned on its
# validation fold): model -> ((other model, its fields taken, None = all), ...); its own record wins
INHERITS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "vsknn-sem": (("vsknn", None), ("title-knn", SPACE_FIELDS)),
}
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("popularity", "most frequent training items", Popularity),
        ModelSpec("sknn", "session-kNN, cosine over item sets", SKNN, SKNN_GRID),
        ModelSpec(
            "vsknn", "V-SKNN: recency-weighted prompt, IDF, neighbour-position decay (STAN)", SessionKNN, VSKNN_GRID
        ),
        ModelSpec("sr", "sequential rules: distance-weighted item pairs within a window", SequentialRules, RULES_GRID),
        ModelSpec(
            "covisit", "co-visitation: distance-weighted item pairs, both ways or forward", CoVisitation, COVISIT_GRID
        ),
        ModelSpec(
            "covisit-lift",
            "co-visitation normalised by the target's popularity (lift)",
            LiftCoVisitation,
            COVISIT_LIFT_GRID,
        ),
        ModelSpec(
            "recent-popularity",
            "items in the most sessions among the latest share of training sessions",
            RecentPopularity,
            RECENT_POPULARITY_GRID,
        ),
        ModelSpec(
            "title-knn",
            "title kNN (LLMSeqSim-style): cosine of title embeddings to the session's pooled title vector",
            TitleKNN,
            TITLE_KNN_GRID,
            uses_env=True,
        ),
        ModelSpec(
            "vsknn-sem",
            "V-SKNN whose neighbour sessions come from shared items and session-vector cosine (whitened titles)",
            SemanticKNN,
            VSKNN_SEM_GRID,
            uses_env=True,
        ),
    )
}
MODELS.update(
    {name: ModelSpec(name, text, factory, grid, uses_env=True) for name, text, factory, grid in neural_specs()}
)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError("model", name, f"unknown model; choose one of {sorted(MODELS)}")
    return MODELS[name]


def tuned_path(directory: Path, dataset: str, model: str) -> Path:
    return directory / dataset / f"{model}.json"


def tuned_record(dataset: str, model: str, tuned_dir: Path | None = None) -> tuple[dict[str, Any], Path] | None:
    """The validation-tuning record of ``model`` on ``dataset`` and its file: the user's, else the shipped one."""
    for directory in (tuned_dir, SHIPPED_TUNED_DIR):
        if directory is None:
            continue
        path = tuned_path(directory, dataset, model)
        if path.exists():
            fix = f"semsr tune --dataset {dataset} --pipeline {model}"
            return read_record(path, TunedRecord, fix).model_dump(mode="json"), path
    return None


def tuned_params(dataset: str, model: str, tuned_dir: Path | None = None) -> dict[str, Any] | None:
    """The validation-tuned hyper-parameters of ``model`` on ``dataset``, or None if never tuned."""
    found = tuned_record(dataset, model, tuned_dir)
    return dict(found[0]["params"]) if found else None


def inherited_params(dataset: str, model: str, tuned_dir: Path | None = None) -> dict[str, Any]:
    """What ``model`` takes from other models' tuning records on ``dataset`` (:data:`INHERITS`)."""
    params: dict[str, Any] = {}
    for other, fields in INHERITS.get(model, ()):
        found = tuned_params(dataset, other, tuned_dir) or {}
        params.update(found if fields is None else {k: v for k, v in found.items() if k in fields})
    return params


def build_model(name: str, dataset: str | None = None, *, env: ModelEnv | None = None, **overrides: Any) -> Recommender:
    """An unfitted model: what it inherits (:data:`INHERITS`), its tuned parameters for ``dataset`` when
    recorded, then ``overrides`` on top."""
    spec = model_spec(name)
    tuned_dir = env.tuned_dir if env is not None else None
    params = inherited_params(dataset, name, tuned_dir) if dataset else {}
    params.update((tuned_params(dataset, name, tuned_dir) if dataset else None) or {})
    params.update(overrides)
    extra = {"env": env} if spec.uses_env and env is not None else {}
    try:
        model = spec.factory(**params, **extra)
        model.build_params = dict(params)  # what persist.save_model records to rebuild it
        return model
    except ValidationError as error:
        first = error.errors()[0]
        field_name = ".".join(str(part) for part in first["loc"])
        raise ConfigError(field_name, first.get("input"), f"not valid for model {name!r}: {first['msg']}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError("params", params, f"not valid for model {name!r}: {error}") from None
