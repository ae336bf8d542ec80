"""The evaluation protocol: how sessions become train data and held-out next-item cases.

One place decides the split, the filters and the targets, so every pipeline (kNN, torch models, the
LangGraph graph) is scored on exactly the same cases. The rules follow the published Beauty protocol:

1. split sessions globally by time (the published ``split.csv`` or the last ``test_fraction`` by end time);
2. delete held-out events whose item never occurs in the training sessions, drop sessions left shorter
   than ``min_session_length``;
3. one case per held-out session with the last item as target (or one per prefix);
4. a validation fold is cut from the training sessions by the same rule, so tuning never sees the test split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sessiondata.errors import ConfigError
from sessiondata.schema import Dataset, Session, SessionId

FoldName = Literal["test", "valid"]


class ProtocolConfig(BaseModel):
    """Every choice that changes which cases exist or how they are scored; recorded in the protocol card."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: Literal["auto", "predefined", "temporal"] = Field(
        "auto", description="'predefined' uses the dataset's published split; 'auto' uses it when present."
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of sessions, latest by end time, held out.")
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of training sessions held out to tune.")
    min_session_length: int = Field(2, ge=2, description="Held-out sessions shorter than this after filtering go.")
    target: Literal["last", "every_prefix"] = "last"
    exclude_seen: bool = Field(True, description="Items already in the prompt may not be recommended.")
    k_values: tuple[int, ...] = Field(
        (5, 10, 20, 50, 100),
        description="Cut-offs scored; cases.jsonl keeps the top max(k) items (HR@50/@100 judge coarse retrieval).",
    )
    tie_rule: Literal["conservative"] = Field(
        "conservative", description="A target tied with other items is ranked after all of them."
    )
    seed: int = 0

    @field_validator("k_values")
    @classmethod
    def _positive_sorted(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(k <= 0 for k in values):
            raise ValueError(f"k_values must be positive integers, got {values}")
        return tuple(sorted(set(values)))

    @property
    def max_k(self) -> int:
        return max(self.k_values)


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One held-out prediction: the prompt (item indices, oldest first) and the item that came next."""

    case_id: str
    session_id: SessionId
    prompt: tuple[int, ...]
    target: int


@dataclass(frozen=True)
class Fold:
    """Training sessions and the held-out cases scored against them."""

    name: FoldName
    train: tuple[Session, ...]
    cases: tuple[EvalCase, ...]
    n_heldout_sessions: int
    removed_events: int
    dropped_sessions: int

    @property
    def train_items(self) -> set[int]:
        return {item for session in self.train for item in session.items}

    def summary(self) -> dict[str, int]:
        return {
            "n_train_sessions": len(self.train),
            "n_train_events": sum(len(s) for s in self.train),
            "n_heldout_sessions": self.n_heldout_sessions,
            "n_cases": len(self.cases),
            "removed_unseen_events": self.removed_events,
            "dropped_short_sessions": self.dropped_sessions,
        }


class LeakageError(AssertionError):
    """The split broke a promise of the protocol (time order, disjoint sessions, unseen targets)."""


def _split_by_end_time(sessions: Sequence[Session], fraction: float) -> tuple[list[Session], list[Session]]:
    """Rank by (end time, original order) and hold out the last ``fraction``; equal times stay in file order."""
    order = sorted(range(len(sessions)), key=lambda i: (sessions[i].end_time, i))
    n_held = round(len(sessions) * fraction)
    if n_held == 0 or n_held == len(sessions):
        raise ConfigError("fraction", fraction, f"leaves an empty side when splitting {len(sessions)} sessions")
    held = set(order[len(order) - n_held :])
    train = [s for i, s in enumerate(sessions) if i not in held]
    heldout = [s for i, s in enumerate(sessions) if i in held]
    return train, heldout


def _make_cases(
    heldout: Sequence[Session], known_items: set[int], config: ProtocolConfig
) -> tuple[list[EvalCase], int, int, int]:
    cases: list[EvalCase] = []
    removed = dropped = kept = 0
    for session in heldout:
        items = [item for item in session.items if item in known_items]
        removed += len(session.items) - len(items)
        if len(items) < config.min_session_length:
            dropped += 1
            continue
        kept += 1
        if config.target == "last":
            cases.append(EvalCase(str(session.session_id), session.session_id, tuple(items[:-1]), items[-1]))
        else:
            for position in range(1, len(items)):
                case_id = f"{session.session_id}#{position}"
                cases.append(EvalCase(case_id, session.session_id, tuple(items[:position]), items[position]))
    return cases, removed, dropped, kept


def _fold(name: FoldName, train: list[Session], heldout: list[Session], config: ProtocolConfig) -> Fold:
    known = {item for session in train for item in session.items}
    cases, removed, dropped, kept = _make_cases(heldout, known, config)
    fold = Fold(name, tuple(train), tuple(cases), kept, removed, dropped)
    check_no_leakage(fold, heldout)
    return fold


def check_no_leakage(fold: Fold, heldout: Sequence[Session]) -> None:
    """Assert the promises a temporal split makes; raise :class:`LeakageError` naming the broken one."""
    train_ids = {s.session_id for s in fold.train}
    overlap = train_ids.intersection(s.session_id for s in heldout)
    if overlap:
        raise LeakageError(f"{len(overlap)} sessions are both train and held out, e.g. {next(iter(overlap))!r}")
    if fold.train and heldout:
        train_end = max(s.end_time for s in fold.train)
        heldout_end = min(s.end_time for s in heldout)
        if train_end > heldout_end:
            raise LeakageError(f"a training session ends at {train_end}, after a held-out session ends ({heldout_end})")
    known = fold.train_items
    for case in fold.cases:
        if case.target not in known or not set(case.prompt) <= known:
            raise LeakageError(f"case {case.case_id} uses an item never seen in training")


@dataclass(frozen=True)
class Protocol:
    """A dataset cut into a test fold (full train vs test) and a validation fold (sub-train vs valid)."""

    dataset: Dataset
    config: ProtocolConfig
    split_rule: Literal["predefined", "temporal"]
    test: Fold
    valid: Fold

    def fold(self, name: FoldName) -> Fold:
        return self.test if name == "test" else self.valid

    def train_digest(self, fold: FoldName) -> str:
        """A short hash of the fold's training sessions and the catalogue: the key of trained artefacts
        (computed once per fold: the folds are immutable, and preparing a profile asks for it per artefact)."""
        known: dict[str, str] = self.__dict__.setdefault("_train_digests", {})
        if fold not in known:
            digest = hashlib.sha256(self.dataset.fingerprint().sha256.encode())
            for session in self.fold(fold).train:
                digest.update(str(session.session_id).encode() + b"\x1f")
            known[fold] = digest.hexdigest()[:16]
        return known[fold]

    def card(self, fold: FoldName = "test", **extra: object) -> dict[str, object]:
        """The protocol card written beside every result (JSON-ready)."""
        chosen = self.fold(fold)
        card: dict[str, object] = {
            "dataset": self.dataset.fingerprint().as_dict(),
            "fold": fold,
            "split": {
                "rule": self.split_rule,
                "test_fraction": None if self.split_rule == "predefined" else self.config.test_fraction,
                "valid_fraction": self.config.valid_fraction,
                "order": "sessions ranked by last timestamp; ties keep file order",
                **chosen.summary(),
            },
            "filters": {
                "remove_heldout_items_unseen_in_train": True,
                "min_session_length": self.config.min_session_length,
            },
            "target": self.config.target,
            "k": list(self.config.k_values),
            "ties": self.config.tie_rule,
            "exclude_seen": self.config.exclude_seen,
            "ranking": "full catalogue, no sampled negatives",
            "seed": self.config.seed,
            "cases_sha256": cases_digest(chosen.cases),
        }
        card.update(extra)
        return card


def cases_digest(cases: Sequence[EvalCase]) -> str:
    digest = hashlib.sha256()
    for case in cases:
        digest.update(json.dumps([case.case_id, list(case.prompt), case.target]).encode())
    return digest.hexdigest()[:16]


def build_protocol(dataset: Dataset, config: ProtocolConfig | None = None) -> Protocol:
    """Cut ``dataset`` into test and validation folds according to ``config``."""
    config = config or ProtocolConfig()
    rule: Literal["predefined", "temporal"]
    if config.split == "predefined" and dataset.predefined_split is None:
        raise ConfigError("split", "predefined", f"dataset {dataset.name!r} ships no predefined split")
    if config.split in ("auto", "predefined") and dataset.predefined_split is not None:
        rule = "predefined"
        train = [s for s in dataset.sessions if dataset.predefined_split[s.session_id] == "train"]
        test = [s for s in dataset.sessions if dataset.predefined_split[s.session_id] == "test"]
    else:
        rule = "temporal"
        train, test = _split_by_end_time(dataset.sessions, config.test_fraction)
    sub_train, valid = _split_by_end_time(train, config.valid_fraction)
    return Protocol(
        dataset=dataset,
        config=config,
        split_rule=rule,
        test=_fold("test", train, test, config),
        valid=_fold("valid", sub_train, valid, config),
    )
