"""What the shopper said: the ``query`` source, its place in the fused list, and title constraints.

* **Retrieval.** The query text goes through the ``semantic_search`` tool over the profile's prepared Chroma
  catalogue index (the embedder, no LLM needed): its nearest titles, with their cosine similarity, are the
  ``query`` source's candidates. The text is only ever retrieval text (and, where the profile has an LLM
  intent, the data inside the prompt's ``<message>`` tags): nothing in it can change k, the session, the
  profile or the constraints.
* **Weight.** There is no labelled query data to fit a weight on, so a documented rule sets it
  (:func:`blend_query`): the fused session list and the query's list are each z-scored over their own
  candidates, and the answer ranks by ``z(session) + weight * z(query)`` with ``weight`` from the profile's
  query source (``params["weight"]``, 1.0 in the built-in profiles: what the shopper says counts as much
  as everything their session says). Without a query nothing changes: the fused list is the fitted one.
* **Constraints.** ``must_include`` / ``must_not_include`` terms are matched in titles at the start of a
  word, case-insensitively (``"oil"`` matches "Oil", "oils" and "oily", not "toilet"); the same matcher
  searches the catalogue by title for the page (:func:`search_titles`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphs.fusion import FusionModel, source_features
from graphs.profiles import SourceSpec
from graphs.services import ServingProfile
from graphs.state import Candidate, Scored, SourceResult, TurnRequest
from sessiondata.schema import Catalog
from sr_models.ranking import top_k

QUERY_SOURCE = "query"
DEFAULT_QUERY_WEIGHT = 1.0


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<![0-9a-z])" + re.escape(" ".join(term.casefold().split())))


@dataclass(frozen=True)
class TitleTerms:
    """``must_include`` / ``must_not_include`` terms as one title test (empty: every title passes)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", [_pattern(t) for t in self.include])
        object.__setattr__(self, "_exclude", [_pattern(t) for t in self.exclude])

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)

    def allows(self, title: str) -> bool:
        text = " ".join(title.casefold().split())
        return all(p.search(text) for p in self._include) and not any(p.search(text) for p in self._exclude)  # type: ignore[attr-defined]


def query_weight(params: Mapping[str, Any]) -> float:
    return float(params.get("weight", DEFAULT_QUERY_WEIGHT))


def retrieve(search_tool: Any, query: str, n: int, exclude_ids: Sequence[Any]) -> list[Candidate]:
    """The query's nearest catalogue items through the ``semantic_search`` tool (one tool call)."""
    call = {
        "name": search_tool.name,
        "args": {"query": query, "k": n, "exclude_ids": list(exclude_ids)},
        "id": QUERY_SOURCE,
        "type": "tool_call",
    }
    hits = search_tool.invoke(call).artifact["items"]
    return [Candidate(item=int(hit["index"]), score=float(hit["score"])) for hit in hits]


def query_results(profile: ServingProfile, turn: TurnRequest, session: Sequence[Any]) -> dict[str, SourceResult]:
    """The query source's entry for ``source_results``: ``skipped`` without a query, its candidates with one
    (``degraded`` when the index fails); a profile without a query source says the query went unused."""
    started = time.perf_counter()
    query, source = turn.get("query"), profile.spec.query_source

    def result(name: str, status: str, **fields: Any) -> dict[str, SourceResult]:
        seconds = round(time.perf_counter() - started, 4)
        return {name: SourceResult(source=name, status=status, seconds=seconds, **fields)}  # type: ignore[typeddict-item]

    if source is None:
        if not query:
            return {}
        note = f"profile {profile.spec.name!r} has no query source; the query was not used for retrieval"
        return result(QUERY_SOURCE, "degraded", candidates=[], note=note)
    if not query:
        return result(source.name, "skipped", candidates=[])
    try:
        candidates = retrieve(profile.search_tool, query, source.candidates, [*session, *turn.get("exclude", [])])
    except Exception as error:  # Chroma down, embedder failing: the other sources still answer
        return result(source.name, "degraded", candidates=[], note=f"semantic index: {error}")
    return result(source.name, "ok", candidates=candidates)


def fuse_with_query(
    fusion: FusionModel,
    proposals: Mapping[str, Sequence[Candidate]],
    query: SourceSpec | None,
    context: Any = None,
    top: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The fitted fusion of every source but the query's (``context``: the session, for the ranker), then
    the query's candidates by its rule. Contributions cover at least the first ``top`` items (None: all);
    a query reorders the whole list, so then every item gets them."""
    fitted = {name: c for name, c in proposals.items() if query is None or name != query.name}
    if query is None or query.name not in proposals:
        return fusion.fuse(fitted, context, top)
    items, scores, contributions = fusion.fuse(fitted, context)
    return blend_query(items, scores, contributions, proposals[query.name], query_weight(query.params))


def blend_query(
    items: np.ndarray,
    scores: np.ndarray,
    contributions: Mapping[str, np.ndarray],
    query: Sequence[Candidate],
    weight: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The fused list with the query's candidates mixed in by the rule in the module docstring.

    Each side is z-scored over its own list (an item the side did not propose gets that side's floor, as in
    :func:`graphs.fusion.source_features`); the session sources' contributions are rescaled by the same
    z-transform so the per-source shares still say who lifted an item, and ``query`` adds its own share.
    """
    if not query:
        return items, scores, dict(contributions)
    fused = [Candidate(item=int(i), score=float(s)) for i, s in zip(items, scores, strict=True)]
    union = np.array(sorted({int(i) for i in items} | {c["item"] for c in query}), dtype=np.int64)
    base = source_features(fused, union)[:, 0]
    spoken = weight * source_features(query, union)[:, 0]
    total = base + spoken
    scale = float(np.std(scores)) if scores.size > 1 and np.std(scores) > 0 else 1.0
    position = {int(item): p for p, item in enumerate(items)}
    rows = np.array([position.get(int(item), -1) for item in union])
    shares: dict[str, np.ndarray] = {}
    for source, values in contributions.items():
        shares[source] = np.where(rows >= 0, np.asarray(values)[np.maximum(rows, 0)] / scale, 0.0)
    shares[QUERY_SOURCE] = spoken
    order = np.lexsort((union, -total))
    return union[order], total[order], {s: v[order] for s, v in shares.items()}


def cut_list(
    items: np.ndarray,
    scores: np.ndarray,
    contributions: Mapping[str, np.ndarray],
    k: int,
    exclude: set[int],
    terms: TitleTerms,
    popularity: np.ndarray,
    catalog: Catalog,
) -> list[Scored]:
    """The answer's ``k`` entries from a fused list: excluded items and titles failing ``terms`` dropped.

    When fewer than ``k`` candidates pass the terms, the most popular matching titles follow (below every
    candidate, credited to ``popularity``); when no source proposed anything, the most popular items.
    """
    fused: list[Scored] = []
    filtered = terms.active
    values = np.asarray(scores).tolist()
    columns = {source: np.asarray(c).tolist() for source, c in contributions.items()}  # Python floats, once
    for position, item in enumerate(items.tolist()):
        if item in exclude or (filtered and not terms.allows(catalog.titles[item])):
            continue
        shares = {source: round(column[position], 6) for source, column in columns.items()}
        fused.append(Scored(item=item, score=round(values[position], 6), contributions=shares))
        if len(fused) == k:
            return fused
    if terms.active:
        chosen = exclude | {entry["item"] for entry in fused}
        floor = min((entry["score"] for entry in fused), default=0.0)
        for item, count in popular_matching(popularity, catalog.titles, terms, k - len(fused), chosen):
            fused.append(Scored(item=item, score=round(floor - 1.0, 6), contributions={"popularity": count}))
    elif not fused:  # every source failed or was cold: the most popular items, said so
        popular, values = top_k(popularity, k, exclude=exclude)
        fused = [
            Scored(item=int(i), score=float(v), contributions={"popularity": float(v)})
            for i, v in zip(popular, values, strict=True)
        ]
    return fused


def popular_matching(
    popularity: np.ndarray, titles: Sequence[str], terms: TitleTerms, n: int, skip: set[int]
) -> list[tuple[int, float]]:
    """The ``n`` most popular items whose titles pass ``terms`` (ties by index), ``skip`` left out."""
    found: list[tuple[int, float]] = []
    for item in np.lexsort((np.arange(popularity.size), -popularity)):
        item = int(item)
        if item not in skip and terms.allows(titles[item]):
            found.append((item, float(popularity[item])))
            if len(found) == n:
                break
    return found


def search_titles(titles: Sequence[str], popularity: np.ndarray, text: str, limit: int = 20) -> list[tuple[int, float]]:
    """Catalogue items whose titles hold every word of ``text`` (at a word start), most popular first."""
    words = tuple(text.split())
    if not words:
        return []
    return popular_matching(popularity, titles, TitleTerms(include=words), limit, set())
