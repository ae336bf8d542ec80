"""Intent inference: a session's titles in, a typed :class:`Intent` out (what the graph's intent node calls).

The intent's summary and keywords become semantic-retrieval queries (:meth:`Intent.queries`). Every
string field has a length cap and every list a size cap in the schema, so a grammar-constrained local
model cannot ramble; values are cleaned (whitespace, duplicates) before the size rules are checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agents.errors import LLMFailure
from agents.prompts import intent_prompt
from agents.provider import ChatClient
from sessiondata.errors import ConfigError

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]

__all__ = ["Intent", "IntentAttributes", "LLMFailure", "infer_intent"]


def _dedupe(values: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for value in values:
        text = " ".join(value.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            kept.append(text)
    return kept


class IntentAttributes(BaseModel):
    """Attributes the titles show; leave a field out when the titles do not say."""

    model_config = ConfigDict(extra="ignore")

    brand: Short | None = Field(None, description="Brand the shopper favours, if any.")
    shade: Short | None = Field(None, description="Colour or shade, if any.")
    size: Short | None = Field(None, description="Size or volume, if any.")
    price_level: Literal["budget", "mid-range", "premium"] | None = Field(None, description="Price level, if clear.")


class Intent(BaseModel):
    """What the shopper is looking for, inferred from the products in their session."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(..., min_length=3, max_length=160, description="One sentence: what the shopper wants.")
    categories: list[Short] = Field(..., min_length=1, max_length=5, description="Product categories, likeliest first.")
    attributes: IntentAttributes = Field(default_factory=IntentAttributes)
    keywords: list[Short] = Field(..., min_length=3, max_length=8, description="3 to 8 short search keywords.")
    confidence: float = Field(..., ge=0.0, le=1.0, description="How sure you are, from 0 to 1.")

    @field_validator("summary", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return " ".join(value.split()) if isinstance(value, str) else value

    @field_validator("categories", "keywords", mode="after")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return _dedupe(values)

    @field_validator("keywords", mode="after")
    @classmethod
    def _enough_keywords(cls, values: list[str]) -> list[str]:
        if len(values) < 3:
            raise ValueError(f"needs at least 3 distinct keywords, got {values}")
        return values

    @field_validator("confidence", mode="before")
    @classmethod
    def _percent_to_fraction(cls, value: object) -> object:
        if isinstance(value, int | float) and 1.0 < value <= 100.0:
            return value / 100.0  # "85" meant 85 %
        return value

    def queries(self) -> list[str]:
        """Texts for semantic retrieval: the summary, then the keywords as one query."""
        return [self.summary, " ".join(self.keywords)]


def infer_intent(titles: Sequence[str], client: ChatClient, *, user_text: str | None = None) -> Intent:
    """The shopper's intent from the session's titles (oldest first, most recent last) and what the shopper
    said (``user_text``, data inside the prompt's ``<message>`` tags), at least one of them.

    Long sessions keep their most recent ``llm.max_session_titles`` titles. Raises
    :class:`~agents.errors.LLMFailure` when the model gives no usable answer after one retry.
    """
    if not titles and not (user_text and user_text.strip()):
        raise ConfigError("titles", [], "needs at least one product title or the shopper's words to infer an intent")
    prompt = intent_prompt(
        titles,
        user_text=user_text,
        max_titles=client.config.max_session_titles,
        max_chars=client.config.max_title_chars,
    )
    return client.structured(prompt, Intent)
