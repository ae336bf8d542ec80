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
    _gains: Any = PrivateAttr(default=None)  # the booster's gain per feature (fixed once attached)

    def attach(self, booster: Any) -> RankerFusion:
        self._booster = booster
        self._gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
        return self

    def source_weight(self, source: str) -> float:
        """The share of the booster's total gain on ``source``'s features (0 when it never splits on them)."""
        if source not in self.sources or self._booster is None:
            return 0.0
        gains = self._gains
        total = float(np.sum(gains)) or 1.0
        prefix = f"{source}__"
        return float(sum(g for name, g in zip(self.features, gains, strict=True) if name.startswith(prefix))) / total

    def score_matrix(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """Booster scores of feature rows (one thread by default: requests run side by side)."""
        scores = self._booster.predict(matrix, num_iteration=self.best_iteration or None, num_threads=threads)
        return np.asarray(scores, dtype=np.float64)

    def fuse(
        self,
        results: Mapping[str, Sequence[Candidate]],
        context: RankerContext | None = None,
        top: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Items (best first), booster scores, and each source's contribution to the first ``top`` items
        (all when None): an item's contribution reads only its own row, so a list cut at ``top`` needs no
        ablation of the rows below the cut. Without a cut one booster call scores the rows and the ablated
        copies together; with one, a second call scores the ablated copies of the top rows."""
        if context is None:
            raise ValueError("the ranker fusion needs the session's RankerContext")
        items, matrix = ranker_features(results, self.sources, context)
        if items.size == 0:
            return items, np.zeros(0), {}
        # only sources that proposed something speak (cold: title kNN alone)
        speaking = [(i, source) for i, source in enumerate(self.sources) if results.get(source)]
        ablated = [self._ablated(matrix, i) for i, _ in speaking]
        n = items.size
        if top is not None and top < n:
            base = self.score_matrix(matrix)
            order = np.lexsort((items, -base))
            shown = order[:top]
        else:
            shown = np.arange(n)
        # an ablated row differs from its row only where the source proposed the item; elsewhere the source
        # gets the "below" share regardless, so only those rows are scored (one booster call)
        picked = [shown[proposed[shown]] for _, proposed in ablated]
        copies = [rows[pick] for (rows, _), pick in zip(ablated, picked, strict=True)]
        if top is not None and top < n:
            without = self.score_matrix(np.concatenate(copies)) if copies else np.zeros(0)
        else:
            everything = self.score_matrix(np.concatenate([matrix, *copies]))
            base, without = everything[:n], everything[n:]
            order = np.lexsort((items, -base))
            shown = order
        position = np.empty(n, dtype=np.int64)
        position[shown] = np.arange(shown.size)
        contributions: dict[str, np.ndarray] = {}
        offset = 0
        for (_, source), pick in zip(speaking, picked, strict=True):
            values = np.full(shown.size, np.nan)
            values[position[pick]] = base[pick] - without[offset : offset + pick.size]
            contributions[source] = values
            offset += pick.size
        if contributions:  # a source that did not propose an item ranks below every one that did, for it
            values = np.stack(list(contributions.values()), 1)
            mask = np.stack([proposed[shown] for _, proposed in ablated], 1)
            lowest = np.where(mask, values, np.inf).min(axis=1)
            below = np.minimum(0.0, np.where(np.isfinite(lowest), lowest, 0.0)) - 1e-6
            values = np.where(mask, values, below[:, None])
            contributions = {s: values[:, j] for j, s in enumerate(contributions)}
        return items[order], base[order], contributions

    def _ablated(self, matrix: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows as if source ``index`` had not proposed its items, and which rows it proposed."""
        width = len(PER_SOURCE)
        block = slice(index * width, (index + 1) * width)
        proposed = matrix[:, block][:, PER_SOURCE.index("missing")] == 0.0
        ablated = matrix.copy()
        ablated[proposed, block.start + PER_SOURCE.index("raw")] = np.nan
        ablated[proposed, block.start + PER_SOURCE.index("z")] = np.nan
        ablated[proposed, block.start + PER_SOURCE.index("rank")] = float(np.count_nonzero(proposed)) + 1.0
        ablated[proposed, block.start + PER_SOURCE.index("missing")] = 1.0
        ablated[proposed, self.features.index("n_sources")] -= 1.0
        return ablated, proposed

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
