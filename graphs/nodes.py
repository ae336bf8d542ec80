"""The graph's nodes. Each reads the narrow state, does one job, and writes only its own keys.

Every source node degrades instead of failing: an error, a timeout or a cold session is recorded in its
:class:`~graphs.state.SourceResult` (status + note) and the request goes on with the other sources. A node
whose source the profile does not have returns at once, so every profile runs the same compiled graph.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graphs.candidates import all_cold, as_candidates, known_window, model_candidates
from graphs.chat import answer_message
from graphs.context import Context
from graphs.explain import LLM_TEXT_CHARS, item_reasons, short, summary_line
from graphs.query import TitleTerms, cut_list, fuse_with_query, query_results
from graphs.services import ProfileServices, ServingProfile
from graphs.state import Candidate, RecommendedItem, SourceResult, State
from graphs.turn import read_turn
from sessiondata.errors import InvalidRequest
from sessiondata.ids import resolve_items
from sr_models.ranking import top_k


def _context(runtime: Runtime[Context] | None) -> Context:
    return Context.coerce(runtime.context if runtime is not None else None)


def _timed(source: str, started: float, **fields: Any) -> SourceResult:
    return SourceResult(source=source, seconds=round(time.perf_counter() - started, 4), **fields)  # type: ignore[typeddict-item]


def _llm_trouble(error: Exception) -> str:
    """The degraded note's reason: ``LLM timeout`` (``llm.call_timeout`` or the request deadline passed)
    or ``LLM unavailable``, with the error in brackets (``evals.degraded`` counts by the part before them)."""
    timed_out = isinstance(error, TimeoutError) or getattr(error, "kind", None) == "timeout"
    return f"LLM {'timeout' if timed_out else 'unavailable'} ({type(error).__name__}: {error})"


class GraphNodes:
    """The graph's nodes, bound to the process's :class:`~graphs.services.ProfileServices`."""

    def __init__(self, services: ProfileServices) -> None:
        self.services = services

    def _profile(self, context: Context) -> ServingProfile:
        return self.services.profile(
            context.profile, context.fold, dataset=context.dataset, allow_partial=context.allow_partial
        )

    # ------------------------------------------------------------------ request
    def validate_request(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Parse and check the request before anything else: ids, k, what the shopper said and the title
        constraints (:mod:`graphs.turn`); append this turn's items to the thread's session; report unknown
        and cold items. Bad input raises :class:`InvalidRequest`."""
        context = _context(runtime)
        profile = self._profile(context)
        turn = read_turn(state, profile.catalog)
        k = state.get("k", 10) if turn.k is None else turn.k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= profile.max_k:
            raise InvalidRequest("k", k, f"must be an integer from 1 to {profile.max_k}")
        new_items = state.get("items")
        resolved = resolve_items(profile.catalog, [] if new_items is None else new_items, field="items")
        said = resolve_items(profile.catalog, turn.message_items, field="messages[-1]")
        previous = [] if state.get("reset") else list(state.get("session") or [])
        session = previous + resolved.ids(profile.catalog) + said.ids(profile.catalog)
        unknown = resolved.unknown + said.unknown
        if not session and not turn.request["query"]:
            detail = f"none of {unknown[:5]} is in the catalogue" if unknown else "the session is empty"
            raise InvalidRequest("items", new_items, f"no known item to recommend from, and no query: {detail}")
        indices = [profile.catalog.index_of(item) for item in session]
        return {
            "profile": {"name": profile.spec.name, "version": profile.version_tag},
            "session": session,
            "session_indices": indices,
            "window": indices[-profile.spec.max_session_items :],
            "unknown_items": unknown + turn.unknown,
            "cold_items": [profile.catalog.ids[i] for i in dict.fromkeys(indices) if profile.is_cold(i)],
            "k": k,
            "turn": turn.request,
            "source_results": None,  # this turn's sources start afresh (the reducer clears on None)
            "started_at": time.time(),
            "clarification": None,
        }

    # ------------------------------------------------------------------ sources
    def _model_sources(self, state: State, context: Context, kind: str) -> dict[str, Any]:
        profile = self._profile(context)
        results: dict[str, SourceResult] = {}
        known = known_window(state["window"], kind, profile.is_cold)
        exclude = sorted(set(state["session_indices"]))
        for source in profile.spec.sources:
            if source.kind != kind:
                continue
            started = time.perf_counter()
            if source.name in profile.unavailable:
                note = f"not prepared ({profile.unavailable[source.name]})"
                results[source.name] = _timed(source.name, started, status="degraded", candidates=[], note=note)
            elif not state["window"]:  # no item yet: the shopper only said what they want
                results[source.name] = _timed(source.name, started, status="skipped", candidates=[])
            elif not known:
                note = "no session item was seen in training"
                results[source.name] = _timed(source.name, started, status="cold", candidates=[], note=note)
            else:
                try:
                    model, n = profile.models[source.name], source.candidates
                    every_item = kind == "title-knn" and all_cold(known, profile.is_cold)
                    [candidates] = model_candidates(model, [known], [exclude], n, every_item=every_item)
                    results[source.name] = _timed(source.name, started, status="ok", candidates=candidates)
                except Exception as error:  # a broken model must not strand the shopper
                    note = f"{type(error).__name__}: {error}"
                    results[source.name] = _timed(source.name, started, status="degraded", candidates=[], note=note)
        return {"source_results": results}

    def session_models(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The data-driven session recommenders (kNN, rules, torch models) score the catalogue."""
        return self._model_sources(state, _context(runtime), "session-model")

    def session_semantics(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Title kNN: items whose titles are close to the session's (the ``semantic`` pipeline's model)."""
        return self._model_sources(state, _context(runtime), "title-knn")

    def shopper_intent(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The LLM reads the session's titles and returns a typed intent; on error or timeout, go on without."""
        context = _context(runtime)
        profile = self._profile(context)
        if not any(source.kind == "intent" for source in profile.spec.sources):
            return {"intent": None}
        started = time.perf_counter()
        budget = context.deadline_s - (time.time() - state.get("started_at", time.time()))
        titles = [profile.catalog.titles[i] for i in state["window"]]
        said = {"user_text": query} if (query := (state.get("turn") or {}).get("query")) else {}
        try:
            if budget <= 0:
                raise TimeoutError("the request deadline was reached before the LLM was called")
            intent = profile.intent_agent(titles, timeout=budget, **said)
        except Exception as error:
            note = f"{_llm_trouble(error)}; continuing without intent"
            result = _timed("intent", started, status="degraded", candidates=[], note=note)
            return {"intent": None, "source_results": {"intent": result}}
        return {"intent": intent}

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
            # the LLM's words reach the shopper: one plain, short line (never markup or instructions' layout)
            summary = short(str(intent["summary"]), LLM_TEXT_CHARS)
            question = f"I think you are after: {summary}. What exactly are you looking for next?"
        reply = interrupt({"question": question, "intent": intent})
        return {"clarification": str(reply) if reply else None}

    def intent_retrieval(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Chroma retrieval (the ``semantic_search`` tool) of the intent's summary and keywords, and of the
        shopper's answer to a clarifying question."""
        context = _context(runtime)
        profile = self._profile(context)
        if not any(source.kind == "intent" for source in profile.spec.sources):
            return {}
        if "intent" in (state.get("source_results") or {}):
            return {}  # the intent node already recorded why there is no intent
        started = time.perf_counter()
        intent = state.get("intent") or {}
        queries = [
            q for q in [state.get("clarification"), intent.get("summary"), " ".join(intent.get("keywords") or [])] if q
        ]
        if not queries:
            return {"source_results": {"intent": _timed("intent", started, status="skipped", candidates=[])}}
        n = profile.spec.source("intent").candidates
        exclude = [profile.catalog.ids[i] for i in set(state["session_indices"])]
        try:
            best: dict[int, tuple[float, str]] = {}
            for query in queries:
                call = {
                    "name": "semantic_search",
                    "args": {"query": query, "k": n, "exclude_ids": exclude},
                    "id": "intent",
                    "type": "tool_call",
                }
                for hit in profile.search_tool.invoke(call).artifact["items"]:
                    if hit["index"] not in best or hit["score"] > best[hit["index"]][0]:
                        best[hit["index"]] = (float(hit["score"]), query)
            ranked = sorted(best.items(), key=lambda pair: (-pair[1][0], pair[0]))[:n]
            candidates = [Candidate(item=item, score=score) for item, (score, _) in ranked]
            texts = {str(item): query for item, (_, query) in ranked}
            result = _timed("intent", started, status="ok", candidates=candidates, texts=texts)
        except Exception as error:
            result = _timed("intent", started, status="degraded", candidates=[], note=f"semantic index: {error}")
        return {"source_results": {"intent": result}}

    def query_retrieval(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """What the shopper said: the query's nearest titles through the ``semantic_search`` tool (the
        prepared Chroma index, the embedder; no LLM). Without a query the source returns at once."""
        profile = self._profile(_context(runtime))
        results = query_results(profile, state.get("turn") or {}, state.get("session") or [])
        return {"source_results": results} if results else {}

    def llm_proposals(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Approach (i): the LLM proposes next products as titles; each maps to its nearest catalogue titles.
        On an LLM failure the source proposes what the session's own titles are closest to, flagged."""
        from agents.recommender import proposal_scores, session_scores

        context = _context(runtime)
        profile = self._profile(context)
        if not any(source.kind == "llm-agent" for source in profile.spec.sources):
            return {}
        started = time.perf_counter()
        n = profile.spec.source("llm-agent").candidates
        exclude = set(state["session_indices"])
        titles = [profile.catalog.titles[i] for i in state["window"]]
        try:
            vectors = profile.item_vectors
            budget = context.deadline_s - (time.time() - state.get("started_at", time.time()))
            try:
                proposals = profile.llm_calls.run(profile.next_item_agent.propose, titles, budget=budget)
            except Exception as error:  # LLMFailure (a timeout too) and anything the endpoint throws
                items, values = top_k(session_scores(state["window"], vectors), n, exclude=exclude)
                note = f"{_llm_trouble(error)}; used the session's title similarity"
                result = _timed(
                    "llm-agent", started, status="degraded", candidates=as_candidates(items, values), note=note
                )
                return {"source_results": {"llm-agent": result}}
            proposal_vectors = profile.embedder.embed(proposals)
            items, values = top_k(proposal_scores(proposal_vectors, vectors, 0.01), n, exclude=exclude)
            nearest = np.argmax(proposal_vectors @ vectors[items].T, axis=0) if items.size else []
            texts = {str(int(item)): proposals[int(j)] for item, j in zip(items, nearest, strict=True)}
            result = _timed("llm-agent", started, status="ok", candidates=as_candidates(items, values), texts=texts)
        except Exception as error:
            result = _timed(
                "llm-agent", started, status="degraded", candidates=[], note=f"{type(error).__name__}: {error}"
            )
        return {"source_results": {"llm-agent": result}}

    # ------------------------------------------------------------------ answer
    def fuse(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Merge every source's candidates with the profile's fitted fusion into one ranked list; mix in
        the query's by its rule (:func:`graphs.query.blend_query`); drop excluded items and titles that
        fail the turn's constraints (filling from the most popular matching titles)."""
        context = _context(runtime)
        profile = self._profile(context)
        started = time.perf_counter()
        results = state.get("source_results") or {}
        # a degraded source may still carry candidates (the LLM agent's fallback): they count, flagged
        proposals = {
            name: r["candidates"]
            for name, r in results.items()
            if r.get("status") in ("ok", "degraded") and r.get("candidates")
        }
        session_context = profile.ranker_context(state["window"]) if profile.fusion.strategy == "ranker" else None
        turn = state.get("turn") or {}
        exclude = set(state["session_indices"]) | {profile.catalog.index_of(i) for i in turn.get("exclude", [])}
        terms = TitleTerms(tuple(turn.get("must_include", ())), tuple(turn.get("must_not_include", ())))
        # the answer is the first k items not excluded, unless title terms may skip any number of them
        top = None if terms.active else state["k"] + len(exclude)
        items, scores, contributions = fuse_with_query(
            profile.fusion, proposals, profile.spec.query_source, session_context, top
        )
        fused = cut_list(items, scores, contributions, state["k"], exclude, terms, profile.popularity, profile.catalog)
        output: dict[str, Any] = {"fused": fused, "timings": {"fuse": round(time.perf_counter() - started, 4)}}
        if context.return_sources:
            output["source_candidates"] = proposals
        return output

    def explain(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The answer: titles, scores, each source's contribution and grounded reasons for every item."""
        context = _context(runtime)
        profile = self._profile(context)
        started = time.perf_counter()
        results = state.get("source_results") or {}
        fused = state.get("fused") or []
        reasons = item_reasons(profile, fused, state["window"], results, explain_with_llm=context.explain_with_llm)
        catalog = profile.catalog
        recommendations = [
            RecommendedItem(
                rank=rank,
                item_id=catalog.ids[entry["item"]],
                title=catalog.titles[entry["item"]],
                score=entry["score"],
                contributions=entry["contributions"],
                reasons=reasons[rank - 1],
            )
            for rank, entry in enumerate(fused, start=1)
        ]
        degraded = [
            f"{r['source']}: {r.get('note', r['status'])}"
            for r in results.values()
            if r.get("status") in ("degraded", "cold")
        ]
        degraded += [f"{name}: {why}" for name, why in profile.unavailable.items() if name == "fusion"]
        turn = state.get("turn") or {}
        constrained = bool(turn.get("must_include") or turn.get("must_not_include"))
        if fused and set(fused[0]["contributions"]) == {"popularity"} and not constrained:
            degraded.append("no source produced candidates; recommended popular items instead")
        if not fused and constrained:
            degraded.append("no product title passes the turn's must_include / must_not_include terms")
        timings = {name: r.get("seconds", 0.0) for name, r in results.items()}
        timings.update(state.get("timings") or {})
        timings["explain"] = round(time.perf_counter() - started, 4)
        timings["total"] = round(time.time() - state.get("started_at", time.time()), 4)
        explanation = summary_line(reasons, len(state.get("session") or []), bool(degraded))
        output = {"recommendations": recommendations, "degraded": degraded, "timings": timings}
        if turn.get("chat"):  # answer a chat turn on the chat channel too
            output["messages"] = [answer_message(state, recommendations, explanation, degraded)]
        return {**output, "explanation": explanation}
