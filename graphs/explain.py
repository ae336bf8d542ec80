"""Explanations grounded in the data: every recommended item says why, from its sources' own evidence.

Each source that lifted an item (a positive contribution to its fused score, from a source whose fitted
weight is above zero) gives one reason: which viewed item led to it and how, in that source's terms
(:meth:`sr_models.base.Recommender.evidence`): "viewed in the same sessions as", "often viewed after",
"similar to", "learned from sessions like yours". The strongest source comes first. The answer's summary
line is built from the same evidence. An item that what the shopper said (the ``query`` source) lifted
says so ("close to what you asked for"), without quoting the shopper's words back.

Text written by the language model (the intent's summary, the titles it proposed) appears only when the
LLM's source earned weight on validation for this profile, or when the caller asks for it, and is then
marked as the model's (``by: "llm"``), quoted and cut to a short, plain line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from graphs.services import ServingProfile
from graphs.state import Reason, Scored, SourceResult
from sr_models.base import Evidence

TITLE_CHARS = 60
LLM_TEXT_CHARS = 120
TEMPLATES = {
    "co-session": "viewed in the same sessions as “{title}”",
    "followed-by": "often viewed after “{title}”",
    "similar-title": "similar to “{title}”",
    "sequence": "learned from sessions like yours (closest to “{title}”)",
    "popular": "popular with shoppers",
    "query": "close to what you asked for",
}


@lru_cache(maxsize=8192)  # explanations quote the same few session titles over and over
def short(text: str, limit: int) -> str:
    """One plain line of at most ``limit`` characters (control characters and markup brackets removed)."""
    printable = text if text.isprintable() else "".join(ch if ch.isprintable() else " " for ch in text)
    clean = " ".join(printable.replace("<", " ").replace(">", " ").split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


def llm_may_speak(profile: ServingProfile, source: str, explain_with_llm: bool) -> bool:
    return explain_with_llm or profile.fusion.source_weight(source) > 0


def item_reasons(
    profile: ServingProfile,
    fused: Sequence[Scored],
    window: Sequence[int],
    results: dict[str, SourceResult],
    *,
    explain_with_llm: bool,
) -> list[list[Reason]]:
    """Reasons for each fused item, strongest source first: every source that lifted it (positive
    contribution); for an item no source lifted, the one that weighed most in its favour."""
    items = [entry["item"] for entry in fused]
    evidence = {
        name: model.evidence(list(window), items)
        for name, model in profile.models.items()
        if items and window and profile.fusion.source_weight(name) > 0
    }
    reasons: list[list[Reason]] = []
    for position, entry in enumerate(fused):
        ordered = sorted(entry["contributions"].items(), key=lambda pair: -pair[1])
        candidates = [(source, value) for source, value in ordered if value > 0] or ordered[:1]
        mine = [
            reason
            for source, _ in candidates
            if (reason := _reason(profile, source, position, entry["item"], evidence, results, explain_with_llm))
        ]
        reasons.append(mine)
    return reasons


def _reason(
    profile: ServingProfile,
    source: str,
    position: int,
    item: int,
    evidence: dict[str, list[Evidence | None]],
    results: dict[str, SourceResult],
    explain_with_llm: bool,
) -> Reason | None:
    catalog = profile.catalog
    if source in evidence:
        found = evidence[source][position]
        if found is None:
            return None
        title = catalog.titles[found.item] if found.item is not None else None
        text = TEMPLATES.get(found.kind, found.kind).format(title=short(title or "", TITLE_CHARS))
        evidence_id = catalog.ids[found.item] if found.item is not None else None
        return Reason(
            source=source, kind=found.kind, evidence_item=evidence_id, evidence_title=title, text=text, by="data"
        )
    if source == "popularity":
        text = TEMPLATES["popular"]
        return Reason(source=source, kind="popular", evidence_item=None, evidence_title=None, text=text, by="data")
    query = profile.spec.query_source
    if query is not None and source == query.name:  # the shopper's words are never quoted back
        similarity = {c["item"]: c["score"] for c in (results.get(source) or {}).get("candidates", [])}.get(item)
        text = TEMPLATES["query"] + (f" (similarity {similarity:.2f})" if similarity is not None else "")
        return Reason(source=source, kind="query", evidence_item=None, evidence_title=None, text=text, by="data")
    llm_text = (results.get(source) or {}).get("texts", {}).get(str(item))
    if llm_text is None or not llm_may_speak(profile, source, explain_with_llm):
        return None
    kind = "intent" if source == "intent" else "llm-proposal"
    lead = "matches what you seem to want" if kind == "intent" else "suggested by the language model as"
    text = f"{lead}: “{short(llm_text, LLM_TEXT_CHARS)}” (the model's words)"
    return Reason(source=source, kind=kind, evidence_item=None, evidence_title=None, text=text, by="llm")


def summary_line(reasons: Sequence[Sequence[Reason]], n_session: int, degraded: bool) -> str:
    """One line for the whole list, from the same evidence: the commonest (kind, viewed item) pairs."""
    note = " (some sources were unavailable)" if degraded else ""
    if not reasons:
        return f"No recommendation available{note}."
    groups = Counter((r[0]["kind"], r[0]["evidence_title"]) for r in reasons if r and r[0]["by"] == "data")
    parts = []
    for (kind, title), count in groups.most_common(2):
        what = TEMPLATES.get(kind, kind).format(title=short(title or "", TITLE_CHARS))
        parts.append(f"{count} {'is' if count == 1 else 'are'} {what}")
    if not parts:
        plural = "s" if n_session != 1 else ""
        return f"Recommended from shoppers' sessions like your {n_session} viewed product{plural}{note}."
    return "Of these, " + "; ".join(parts) + f"{note}."
