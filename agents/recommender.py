"""In-context LLM recommender (the paper's approach i): the LLM proposes next products as titles, and
semantic retrieval maps each proposed title onto the catalogue.

For a session, its titles go to the LLM (prompt ``next_items``), which returns up to N product titles,
best first (:meth:`NextItemAgent.propose`). Each title is embedded with the catalogue's embedder; an item's
score is its best cosine to any proposal, minus a small penalty per proposal rank, so the first
proposal's nearest items lead (:func:`proposal_scores`). When the LLM gives no usable answer
(:class:`~agents.errors.LLMFailure`), the caller degrades: the graph's ``llm-agent`` source (the
``llm-agent`` profile) then proposes what the session's own titles are closest to (:func:`session_scores`)
and says so in the answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, StringConstraints, create_model

from agents.errors import LLMFailure
from agents.prompts import PROMPT_VERSION, clean_text, next_items_prompt
from agents.provider import ChatClient
from embeddings.session import session_vectors
from sessiondata.errors import ConfigError

ProposedTitle = Annotated[str, StringConstraints(max_length=80)]
_TITLES_HELP = "Short catalogue-style product titles, best first."
_NUMBERING = re.compile(r"^\s*(?:\d+\s*[.)]|[-*•])\s*")


class NextProducts(BaseModel):
    """Products the shopper is likely to want next, best first."""

    titles: list[ProposedTitle] = Field(..., min_length=1, max_length=20, description=_TITLES_HELP)


@functools.cache
def next_products_schema(n: int) -> type[NextProducts]:
    """:class:`NextProducts` allowing at most ``n`` titles: a grammar-constrained model must stop at ``n``
    instead of listing on until ``max_tokens`` cuts the JSON off (the tool name stays ``NextProducts``)."""
    return create_model(
        "NextProducts",
        __base__=NextProducts,
        __doc__=NextProducts.__doc__,
        titles=(list[ProposedTitle], Field(..., min_length=1, max_length=n, description=_TITLES_HELP)),
    )


def clean_proposal(title: str) -> str:
    """A proposed title without list numbering; empty when fewer than 3 letters remain (e.g. ``"]"``)."""
    text = _NUMBERING.sub("", clean_text(title, 200))
    return text if sum(ch.isalpha() for ch in text) >= 3 else ""


def proposal_scores(proposals: np.ndarray, items: np.ndarray, rank_penalty: float) -> np.ndarray:
    """Per item: max over proposals j of cos(proposal j, item) - rank_penalty * j (rows are unit vectors)."""
    similarities = proposals @ items.T  # (n_proposals, n_items)
    similarities -= rank_penalty * np.arange(len(proposals), dtype=np.float32)[:, None]
    return similarities.max(axis=0)


def session_scores(prompt: Sequence[int], items: np.ndarray, decay: float = 0.5) -> np.ndarray:
    """Fallback: similarity to the session's own items, the most recent weighted most (weights decay^distance)."""
    return items @ session_vectors(items, [prompt], "recency", decay)[0]


class NextItemAgent:
    """Asks the chat model for the next products of a session, as catalogue-style titles."""

    def __init__(self, client: ChatClient, *, n_proposals: int | None = None, rank_penalty: float = 0.01) -> None:
        if n_proposals is not None and not 1 <= n_proposals <= 20:
            raise ConfigError("n_proposals", n_proposals, "must be between 1 and 20")
        if rank_penalty < 0:
            raise ConfigError("rank_penalty", rank_penalty, "must be >= 0")
        self.client = client
        self.n_proposals = n_proposals or client.config.n_proposals
        self.rank_penalty = rank_penalty

    @property
    def account(self) -> Any:
        return self.client.account

    def params(self) -> dict[str, Any]:
        config = self.client.config
        return {
            "n_proposals": self.n_proposals,
            "rank_penalty": self.rank_penalty,
            "llm_model": config.model,
            "llm_endpoint": self.client.endpoint_identity(),
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "prompt_version": PROMPT_VERSION,
            "max_session_titles": config.max_session_titles,
        }

    def propose(self, titles: Sequence[str]) -> list[str]:
        """The LLM's next-product titles for a session (raises :class:`LLMFailure`)."""
        config = self.client.config
        prompt = next_items_prompt(
            titles, n=self.n_proposals, max_titles=config.max_session_titles, max_chars=config.max_title_chars
        )
        answer = self.client.structured(prompt, next_products_schema(self.n_proposals))
        proposals = [clean_proposal(title) for title in answer.titles[: self.n_proposals]]
        proposals = [title for title in proposals if title]
        if not proposals:
            raise LLMFailure("empty", "every proposed title was blank")
        return proposals
