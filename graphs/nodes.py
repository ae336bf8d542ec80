"""The graph's nodes. Each reads the narrow state, does one job, and writes only its own keys.

Every source node degrades instead of failing: an error, a timeout or a cold session is recorded in its
:class:`~graphs.state.SourceResult` (status + note) and the request goes on with the other sources.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graphs.context import Context
from graphs.resources import GraphServices, InvalidSession
from graphs.state import Candidate, RecommendedItem, SourceResult, State
from sessiondata.ids import resolve_items


def _context(runtime: Runtime[Context] | None) -> Context:
    return Context.coerce(runtime.context if runtime is not None else None)


def _remaining(state: State, context: Context) -> float:
    return context.deadline_s - (time.time() - state.get("started_at", time.time()))


def _timed(source: str, started: float, **fields: Any) -> SourceResult:
    return SourceResult(source=source, seconds=round(time.perf_counter() - started, 4), **fields)  # type: ignore[typeddict-item]


def _all_results(state: State) -> list[SourceResult]:
    results = list((state.get("sr_result") or {}).values())
    for key in ("session_semantic_result", "intent_result", "intent_semantic_result"):
        if state.get(key):  # type: ignore[literal-required]
            results.append(state[key])  # type: ignore[literal-required]
    return results


def explain(state: State, recommendations: list[RecommendedItem], sources_down: bool) -> str:
    """One line for the shopper, drawn from the intent when there is one."""
    intent = state.get("intent") or {}
    if state.get("clarification"):
        basis = f"you said you want {state['clarification']!r}"
    elif intent.get("summary"):
        basis = f"you seem to be looking for {intent['summary'].rstrip('.').lower()}"
    else:
        n = len(state.get("session") or [])
        basis = f"shoppers who viewed the same {n} product{'s' if n != 1 else ''} went on to these"
    note = " (some sources were unavailable)" if sources_down else ""
    if not recommendations:
        return f"No recommendation available{note}."
    return f"Recommended because {basis}{note}."


class GraphNodes:
    """The graph's nodes, bound to the process's :class:`~graphs.resources.GraphServices`."""

    def __init__(self, services: GraphServices) -> None:
        self.services = services

    def validate_session(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Parse and normalise the session: append this turn's items, map ids, report unknown and cold items."""
        context = _context(runtime)
        res = self.services.resources(context)
        new_items = state.get("items")
        previous = [] if state.get("reset") else list(state.get("session") or [])
        resolved = resolve_items(res.catalog, [] if new_items is None else new_items, field="items")
        session = previous + resolved.ids(res.catalog)
        unknown = resolved.unknown
        if not session:
            detail = f"none of {unknown[:5]} is in the catalogue" if unknown else "the session is empty"
            raise InvalidSession("items", new_items, f"no known item to recommend from: {detail}")
        k = state.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= res.max_k:
            raise InvalidSession("k", k, f"must be an integer from 1 to {res.max_k}")
        indices = [res.catalog.index_of(item) for item in session][-context.max_session_items :]
        return {
            "session": session,
            "session_indices": indices,
            "unknown_items": unknown,
            "cold_items": [res.catalog.ids[i] for i in dict.fromkeys(indices) if i not in res.train_items],
            "k": k,
            "started_at": time.time(),
            "clarification": None,
        }

    def sr_rerank(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The data-driven session recommenders score the whole catalogue; each keeps its top candidates."""
        context = _context(runtime)
        res = self.services.resources(context)
        results: dict[str, SourceResult] = {}
        known = [i for i in state["session_indices"] if i in res.train_items]
        for name in context.sr_sources:
            started = time.perf_counter()
            if not known:
                results[name] = _timed(
                    name, started, status="cold", candidates=[], note="no session item seen in training"
                )
                continue
            try:
                candidates = res.sr_candidates(name, known, context.candidates_per_source)
                results[name] = _timed(name, started, status="ok", candidates=candidates)
            except Exception as error:  # a broken model must not strand the shopper
                results[name] = _timed(
                    name, started, status="degraded", candidates=[], note=f"{type(error).__name__}: {error}"
                )
        return {"sr_result": results}

    def session_semantics(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Items whose titles are semantically close to the session's own titles (recency-weighted)."""
        context = _context(runtime)
        started = time.perf_counter()
        if not context.semantic:
            return {"session_semantic_result": _timed("semantic", started, status="skipped", candidates=[])}
        res = self.services.resources(context)
        try:
            candidates = res.semantic_by_session(
                state["session_indices"], context.candidates_per_source, set(state["session_indices"])
            )
            result = _timed("semantic", started, status="ok", candidates=candidates)
        except Exception as error:
            result = _timed("semantic", started, status="degraded", candidates=[], note=f"semantic index: {error}")
        return {"session_semantic_result": result}

    def infer_intent(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The LLM reads the session's titles and returns a typed intent; on error or timeout, go on without."""
        context = _context(runtime)
        started = time.perf_counter()
        if not context.use_llm:
            return {"intent": None, "intent_result": _timed("intent", started, status="skipped", candidates=[])}
        res = self.services.resources(context)
        budget = _remaining(state, context)
        if budget <= 0:
            note = "deadline reached before the LLM was called"
            return {
                "intent": None,
                "intent_result": _timed("intent", started, status="degraded", candidates=[], note=note),
            }
        try:
            intent = res.infer_intent(state["session_indices"], timeout=budget)
        except Exception as error:
            note = f"LLM unavailable ({type(error).__name__}: {error}); continuing without intent"
            return {
                "intent": None,
                "intent_result": _timed("intent", started, status="degraded", candidates=[], note=note),
            }
        return {"intent": intent, "intent_result": _timed("intent", started, status="ok", candidates=[])}

    def clarify(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ask the shopper one question when the intent is too uncertain (a LangGraph interrupt).

        Interrupt/resume re-runs this node from its start, so it only reads state and asks; it has no
        side effects before ``interrupt`` returns.
        """
        context = _context(runtime)
        intent = state.get("intent") or {}
        threshold = context.clarify_below
        if threshold is None or not intent or float(intent.get("confidence", 1.0)) >= threshold:
            return {}
        question = "What are you looking for next?"
        if intent.get("summary"):
            question = f"I think you are after: {intent['summary']}. What exactly are you looking for next?"
        answer = interrupt({"question": question, "intent": intent})
        return {"clarification": str(answer) if answer else None}

    def intent_retrieval(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Semantic retrieval driven by the intent's summary and keywords (and a shopper's clarification)."""
        context = _context(runtime)
        started = time.perf_counter()
        intent = state.get("intent") or {}
        queries = [
            q for q in [state.get("clarification"), intent.get("summary"), " ".join(intent.get("keywords") or [])] if q
        ]
        if not queries or not context.semantic:
            return {"intent_semantic_result": _timed("intent", started, status="skipped", candidates=[])}
        res = self.services.resources(context)
        try:
            candidates = res.semantic_by_text(queries, context.candidates_per_source, set(state["session_indices"]))
            result = _timed("intent", started, status="ok", candidates=candidates)
        except Exception as error:
            result = _timed("intent", started, status="degraded", candidates=[], note=f"semantic index: {error}")
        return {"intent_semantic_result": result}

    def fuse(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Merge every source's candidates with the configured strategy into the final ranked list."""
        context = _context(runtime)
        res = self.services.resources(context)
        started = time.perf_counter()
        results = _all_results(state)
        proposals: dict[str, list[Candidate]] = {}
        for result in results:
            if result.get("candidates") and result.get("status") == "ok":
                proposals[result["source"]] = result["candidates"]
        model, fusion_note = res.fusion(context)
        items, scores, contributions = model.fuse(proposals)
        exclude = set(state["session_indices"])
        recommendations: list[RecommendedItem] = []
        for position, item in enumerate(items.tolist()):
            if item in exclude:
                continue
            recommendations.append(
                RecommendedItem(
                    rank=len(recommendations) + 1,
                    item_id=res.catalog.ids[item],
                    title=res.catalog.titles[item],
                    score=round(float(scores[position]), 6),
                    contributions={s: round(float(c[position]), 6) for s, c in contributions.items()},
                )
            )
            if len(recommendations) == state["k"]:
                break
        degraded = [
            f"{r['source']}: {r.get('note', r['status'])}" for r in results if r.get("status") in ("degraded", "cold")
        ]
        sources_down = bool(degraded)
        if fusion_note:
            degraded.append(f"fusion: {fusion_note}")
        if not recommendations:
            degraded.append("no source produced candidates; falling back to popular items")
            recommendations = res.popular_fallback(exclude, state["k"])
        timings = {r["source"]: r.get("seconds", 0.0) for r in results}
        timings["fuse"] = round(time.perf_counter() - started, 4)
        timings["total"] = round(time.time() - state.get("started_at", time.time()), 4)
        output: dict[str, Any] = {}
        if context.return_sources:
            output["source_candidates"] = proposals
        return {
            **output,
            "recommendations": recommendations,
            "degraded": degraded,
            "timings": timings,
            "explanation": explain(state, recommendations, sources_down),
        }
