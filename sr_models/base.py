"""The one interface every session recommender implements (the session-rec idea: ``fit`` then predict).

A recommender learns from training sessions and then scores the *whole* catalogue for a batch of prompts
(like RecBole's ``full_sort_predict``): no sampled negatives anywhere. Ranking, exclusion of seen items
and tie rules are shared code in :mod:`sr_models.ranking`, not re-done by each model.

Beyond ``fit``/``score``, a model can be saved and restored without pickle (``save``/``load``: JSON and
``.npz``, or safetensors for torch models; :mod:`sr_models.persist` rebuilds one from its directory), so
serving loads what preparation trained and never fits; and it can say why it proposed an item
(``evidence``): which item of the session led to it and how, the material of grounded explanations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from sessiondata.protocol import EvalCase, FoldName, Protocol
from sessiondata.schema import Catalog, Session
from sr_models.ranking import top_k

STATE_FILE = "state.npz"


@dataclass(frozen=True)
class TrainData:
    """What ``fit`` gets: training sessions, the catalogue, and optionally validation cases.

    Validation cases are for early stopping of neural models: they are given only when fitting on the
    validation fold's sub-train sessions (held out from them by time), never from the test split. A model
    fitted for the test fold reuses what validation told it (e.g. the number of epochs).
    """

    sessions: Sequence[Session]
    catalog: Catalog
    valid_cases: Sequence[EvalCase] = field(default_factory=tuple)
    dataset: str = ""
    fold: str = ""
    digest: str = ""  # identifies these training sessions + catalogue (artefact cache keys)

    @property
    def n_items(self) -> int:
        return len(self.catalog)


@dataclass(frozen=True)
class Evidence:
    """Why a model proposed an item: the session item that led to it (dense index, or None when no single
    item did) and how (``kind``: "co-session", "followed-by", "similar-title", "sequence", "popular")."""

    item: int | None
    kind: str
    strength: float


@dataclass(frozen=True)
class Recommendation:
    """A ranked list for one prompt: item indices (best first) and the model's scores."""

    items: list[int]
    scores: list[float]
    extras: dict[str, Any] | None = None  # per-case diagnostics (e.g. the graph's node timings)


class Recommender(ABC):
    """Base class: subclasses implement :meth:`fit` and :meth:`score`."""

    name: ClassVar[str] = "recommender"
    n_items: int = 0

    @abstractmethod
    def fit(self, data: TrainData) -> Self:
        """Learn from ``data`` and return ``self``."""

    @abstractmethod
    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores of shape (len(prompts), n_items), higher is better; ``-inf`` means never recommend."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters, recorded in the protocol card beside results."""
        return {}

    def recommend(self, prompts: Sequence[Sequence[int]], k: int, *, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-``k`` lists for a batch of prompts, prompt items excluded unless ``exclude_seen`` is False."""
        if not prompts:
            return []
        for position, prompt in enumerate(prompts):
            if len(prompt) == 0:
                raise ValueError(f"prompt {position} is empty: a session needs at least one item")
        scores = self.score(prompts)
        results = []
        for row, prompt in zip(scores, prompts, strict=True):
            items, values = top_k(row, k, exclude=prompt if exclude_seen else ())
            results.append(Recommendation(items.tolist(), values.tolist()))
        return results

    def _check_fitted(self) -> None:
        if self.n_items == 0:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    # ------------------------------------------------------------------ persistence and evidence
    build_params: dict[str, Any] | None = None  # what the registry built it with (set by build_model)

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays that ``restore`` needs (numpy models); torch models override ``save``/``load``."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    def restore(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be restored")

    def save(self, directory: Path) -> None:
        """Write the fitted model's arrays into ``directory`` (``state.npz``; the header is written by
        :func:`sr_models.persist.save_model`)."""
        self._check_fitted()
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / STATE_FILE, **self.state())

    def load(self, directory: Path) -> None:
        """Restore what :meth:`save` wrote (no pickle: ``allow_pickle=False``)."""
        with np.load(directory / STATE_FILE, allow_pickle=False) as data:
            self.restore({name: data[name] for name in data.files})

    def evidence(self, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
        """For each of ``items`` (dense indices this model ranked high for ``prompt``), what in the session
        led to it; None where the model cannot say. Models override this with their own evidence."""
        return [None] * len(items)


def train_data(protocol: Protocol, fold: FoldName) -> TrainData:
    """What a model may learn from when it is to be scored on ``fold`` (validation cases only for 'valid')."""
    chosen = protocol.fold(fold)
    return TrainData(
        sessions=chosen.train,
        catalog=protocol.dataset.catalog,
        valid_cases=protocol.valid.cases if fold == "valid" else (),
        dataset=protocol.dataset.name,
        fold=fold,
        digest=protocol.train_digest(fold),
    )
