"""How a model source turns a session into candidates: the one path the graph and the ranker fit share.

The graph's source nodes call :func:`model_candidates` with one session; the ranker fit
(:mod:`evals.ranker_fit`) calls it with thousands of validation prefixes at once, so the candidates it
learns from are exactly the ones the graph serves, without the graph's per-request overhead. A model
source reads the session's window without cold items (data-driven models know only items seen in
training; titles have vectors for every item), scores the catalogue through the Recommender batch API and
proposes its top ``n`` items, every session item excluded. For a session of items all unseen in training
the data-driven sources are silent and the title kNN ranks every catalogue item (cold ones too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from graphs.state import Candidate
from sr_models.base import Recommender
from sr_models.ranking import top_k
from sr_models.title_knn import TitleKNN


def known_window(window: Sequence[int], kind: str, is_cold: Callable[[int], bool]) -> list[int]:
    """The items of ``window`` a source of ``kind`` can read (title kNN: all; data-driven models: warm)."""
    return [i for i in window if kind == "title-knn" or not is_cold(i)]


def as_candidates(items: np.ndarray, scores: np.ndarray) -> list[Candidate]:
    return [Candidate(item=int(i), score=float(s)) for i, s in zip(items, scores, strict=True)]


def all_cold(window: Sequence[int], is_cold: Callable[[int], bool]) -> bool:
    """No item of ``window`` was seen in training: the session models are silent, titles alone answer."""
    return bool(window) and all(is_cold(i) for i in window)


def model_top(
    model: Recommender,
    windows: Sequence[Sequence[int]],
    excludes: Sequence[Sequence[int]],
    n: int,
    *,
    every_item: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each window's top ``n`` (items, scores) under ``model``, best first (one batched ``score`` call),
    ``excludes`` never listed.

    ``every_item`` (title kNN only, for an :func:`all_cold` session) ranks the whole catalogue, items never
    seen in training included, whatever the tuned ``candidates`` restriction. Windows must be non-empty (the
    caller records skipped and cold sessions itself)."""
    if not windows:
        return []
    prompts = [list(w) for w in windows]
    if isinstance(model, TitleKNN):  # its own top: ranked among the probed items when it has an index
        return model.top(prompts, excludes, n, every_item=every_item)
    if every_item:
        raise TypeError(f"every_item is for the title kNN, not {type(model).__name__}")
    scores = model.score(prompts)
    return [top_k(row, n, exclude=exclude) for row, exclude in zip(scores, excludes, strict=True)]


def model_candidates(
    model: Recommender,
    windows: Sequence[Sequence[int]],
    excludes: Sequence[Sequence[int]],
    n: int,
    *,
    every_item: bool = False,
) -> list[list[Candidate]]:
    """:func:`model_top` as the graph's candidate lists."""
    return [as_candidates(*found) for found in model_top(model, windows, excludes, n, every_item=every_item)]
