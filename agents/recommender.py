"""In-context LLM recommender (the paper's approach i): the LLM proposes next products as titles, and
semantic retrieval maps each proposed title onto the catalogue.

For each prompt: the session's titles go to the LLM (prompt ``next_items``), which returns up to N
product titles, best first. Each title is embedded with the catalogue's embedder; an item's score is its
best cosine to any proposal, minus a small penalty per proposal rank, so the first proposal's nearest
items lead. When the LLM gives no usable answer (:class:`~agents.errors.LLMFailure`) the prompt degrades
to plain semantic similarity with the session's own items (recency-weighted), and the failure is counted.

Registered as pipeline ``llm-agent`` (see ``sr_models.registry``, which imports this module lazily).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Self

import numpy as np
from pydantic import BaseModel, Field, StringConstraints, create_model

from agents.config import LLMConfig
from agents.errors import LLMFailure
from agents.prompts import PROMPT_VERSION, clean_text, next_items_prompt
from agents.provider import ChatClient
from embeddings.session import session_vectors
from sessiondata.errors import ConfigError
from sr_models.base import Recommender, TrainData

log = logging.getLogger(__name__)


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


class LLMRecommender(Recommender):
    """Next-item titles from the LLM, mapped to catalogue items by embedding similarity."""

    name = "llm-agent"

    def __init__(
        self,
        n_proposals: int | None = None,
        rank_penalty: float = 0.01,
        fallback_decay: float = 0.5,
        *,
        llm: LLMConfig | None = None,
        client: ChatClient | None = None,
        embedder: Any = None,
        home: Path,
        threads: int = 1,
        embedder_config: Any = None,
    ) -> None:
        if n_proposals is not None and not 1 <= n_proposals <= 20:
            raise ConfigError("n_proposals", n_proposals, "must be between 1 and 20")
        if rank_penalty < 0:
            raise ConfigError("rank_penalty", rank_penalty, "must be >= 0")
        if not 0 < fallback_decay <= 1:
            raise ConfigError("fallback_decay", fallback_decay, "must be in (0, 1]")
        client = client or ChatClient(llm or LLMConfig(), home=home)
        self.client = client
        self._embedder_config = embedder_config
        self._threads = threads
        self.n_proposals = n_proposals or client.config.n_proposals
        self.rank_penalty = rank_penalty
        self.fallback_decay = fallback_decay
        self._embedder = embedder
        self._home = home
        self.stats = {"llm_ok": 0, "llm_failed": 0}
        self.usage_path: Path | None = None

    def params(self) -> dict[str, Any]:
        config = self.client.config
        return {
            "n_proposals": self.n_proposals,
            "rank_penalty": self.rank_penalty,
            "fallback_decay": self.fallback_decay,
            "llm_model": config.model,
            "llm_endpoint": self.client.endpoint_identity(),
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "prompt_version": PROMPT_VERSION,
            "max_session_titles": config.max_session_titles,
            "embedder": getattr(self.embedder, "id", type(self.embedder).__name__),
        }

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from embeddings import default_provider

            self._embedder = default_provider(self._embedder_config, threads=self._threads)
        return self._embedder

    def fit(self, data: TrainData) -> Self:
        """Nothing to learn: embed the catalogue (cached on disk) so proposals can be mapped onto it."""
        from embeddings import embed_catalog

        self.catalog = data.catalog
        self.item_vectors = embed_catalog(data.catalog, self.embedder, cache_dir=self._home / "embeddings")
        self.n_items = len(data.catalog)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.usage_path = self._home / "llm_runs" / f"{data.dataset or 'dataset'}-{data.fold or 'fold'}-{stamp}.json"
        return self

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

    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        self._check_fitted()
        scores = np.empty((len(prompts), self.n_items), dtype=np.float32)
        for row, prompt in enumerate(prompts):
            titles = [self.catalog.titles[i] for i in prompt]
            try:
                proposals = self.propose(titles)
            except LLMFailure as failure:
                self.stats["llm_failed"] += 1
                log.warning("llm-agent degrades to session similarity: %s", failure)
                scores[row] = session_scores(prompt, self.item_vectors, self.fallback_decay)
                continue
            self.stats["llm_ok"] += 1
            vectors = self.embedder.embed(proposals)
            scores[row] = proposal_scores(vectors, self.item_vectors, self.rank_penalty)
        self.write_usage()
        return scores

    def usage(self) -> dict[str, Any]:
        """Run totals: LLM calls, tokens, seconds, cost, and how many prompts degraded."""
        return {**self.client.account.totals(), **self.stats}

    def write_usage(self) -> None:
        if self.usage_path is None:
            return
        self.usage_path.parent.mkdir(parents=True, exist_ok=True)
        self.usage_path.write_text(json.dumps({"params": self.params(), "totals": self.usage()}, indent=2) + "\n")
