"""The ``ranker`` fusion: a LightGBM LambdaMART booster over every source's candidates, applied here.

A ranker artefact is a directory: ``ranker.json`` (this pydantic model: sources, feature list, how it was
fitted) and ``booster.txt`` (LightGBM's own text format; never pickle). The directory's sha256 is in the
profile manifest, so serving refuses a changed file. Features come from :mod:`graphs.ranker_features`,
the module the fit (:mod:`evals.ranker_fit`) uses too. Each item's per-source contribution is how much
its score drops when that source's features are set as if the source had not proposed it (an ablation:
one extra predict per source, milliseconds; LightGBM's SHAP values cost ~0.6 s per request), so
explanations can still say which source lifted an item; a source that proposed nothing has no share, and
one that did not propose a given item gets a share just below the item's lowest proposing source's.
The contributions need not sum to the score (the shared features and tree interactions carry the rest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import PrivateAttr, ValidationError

from graphs.fusion import FusionModel
from graphs.ranker_features import PER_SOURCE, RankerContext, feature_names, ranker_features
from graphs.state import Candidate
from sessiondata.errors import DataError

RANKER_FILE = "ranker.json"
BOOSTER_FILE = "booster.txt"


class RankerFusion(FusionModel):
    """A fitted LambdaMART ranker (see the module docstring)."""

    strategy: Literal["ranker"] = "ranker"  # type: ignore[assignment]
    features: list[str]
    best_iteration: int = 0
    _booster: Any = PrivateAttr(default=None)

    def attach(self, booster: Any) -> RankerFusion:
        self._booster = booster
        return self

    def source_weight(self, source: str) -> float:
        """The share of the booster's total gain on ``source``'s features (0 when it never splits on them)."""
        if source not in self.sources or self._booster is None:
            return 0.0
        gains = self._booster.feature_importance(importance_type="gain")
        total = float(np.sum(gains)) or 1.0
        prefix = f"{source}__"
        return float(sum(g for name, g in zip(self.features, gains, strict=True) if name.startswith(prefix))) / total

    def score_matrix(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """Booster scores of feature rows (one thread by default: requests run side by side)."""
        scores = self._booster.predict(matrix, num_iteration=self.best_iteration or None, num_threads=threads)
        return np.asarray(scores, dtype=np.float64)

    def fuse(
        self, results: Mapping[str, Sequence[Candidate]], context: RankerContext | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if context is None:
            raise ValueError("the ranker fusion needs the session's RankerContext")
        items, matrix = ranker_features(results, self.sources, context)
        if items.size == 0:
            return items, np.zeros(0), {}
        scores = self.score_matrix(matrix)
        width = len(PER_SOURCE)
        n_sources = self.features.index("n_sources")
        contributions: dict[str, np.ndarray] = {}
        proposers: dict[str, np.ndarray] = {}
        for i, source in enumerate(self.sources):
            if not results.get(source):  # only sources that proposed something speak (cold: title kNN alone)
                continue
            block = slice(i * width, (i + 1) * width)
            proposed = matrix[:, block][:, PER_SOURCE.index("missing")] == 0.0
            ablated = matrix.copy()  # the same rows as if this source had not proposed the item
            ablated[proposed, block.start + PER_SOURCE.index("raw")] = np.nan
            ablated[proposed, block.start + PER_SOURCE.index("z")] = np.nan
            ablated[proposed, block.start + PER_SOURCE.index("rank")] = float(np.count_nonzero(proposed)) + 1.0
            ablated[proposed, block.start + PER_SOURCE.index("missing")] = 1.0
            ablated[proposed, n_sources] -= 1.0
            contributions[source] = scores - self.score_matrix(ablated)
            proposers[source] = proposed
        if contributions:  # a source that did not propose an item ranks below every one that did, for it
            values, mask = np.stack(list(contributions.values()), 1), np.stack(list(proposers.values()), 1)
            lowest = np.where(mask, values, np.inf).min(axis=1)
            below = np.minimum(0.0, np.where(np.isfinite(lowest), lowest, 0.0)) - 1e-6
            values = np.where(mask, values, below[:, None])
            contributions = {s: values[:, j] for j, s in enumerate(contributions)}
        order = np.lexsort((items, -scores))
        return items[order], scores[order], {s: c[order] for s, c in contributions.items()}

    def save(self, path: Path) -> None:
        """Write the directory: the booster as LightGBM text, then this model's JSON."""
        path.mkdir(parents=True, exist_ok=True)
        self._booster.save_model(str(path / BOOSTER_FILE), num_iteration=self.best_iteration or None)
        (path / RANKER_FILE).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RankerFusion:
        """A ranker directory, validated: its JSON, its booster text, and that their features agree."""
        import lightgbm

        fix = "refit it with `semsr prepare`"
        try:
            model = cls.model_validate_json((path / RANKER_FILE).read_text())
        except (OSError, ValidationError, UnicodeDecodeError) as error:
            detail = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            raise DataError(f"not a valid ranker file ({detail}); {fix}", file=path / RANKER_FILE) from None
        if model.features != feature_names(model.sources):
            raise DataError(f"the ranker's features are not this code's features for its sources; {fix}", file=path)
        try:
            booster = lightgbm.Booster(model_file=str(path / BOOSTER_FILE))
        except (OSError, lightgbm.basic.LightGBMError) as error:
            raise DataError(f"not a valid LightGBM text model ({error}); {fix}", file=path / BOOSTER_FILE) from None
        if booster.num_feature() != len(model.features):
            raise DataError(
                f"the booster has {booster.num_feature()} features, the ranker lists {len(model.features)}; {fix}",
                file=path,
            )
        return model.attach(booster)
