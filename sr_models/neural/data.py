"""Training examples for the torch recommenders: token sequences, prefix augmentation, padded batches.

Items enter torch as *tokens*: dense item index + 1, so that token 0 is padding (and, for BERT4Rec,
``n_items + 1`` is the mask token). Sessions keep their time order; only the last ``max_len`` items of a
prompt are used (the recent items carry the signal on Beauty; the median session has 6 items).

Two shapes of training data exist:

* *prefix-augmented* examples (SR-GNN, NISER+, MSGAT): every prefix ``s[:t]`` of a training session with
  target ``s[t]``, as in the SR-GNN/NISER papers;
* *whole sequences* with a target at every position (GRU4Rec, SASRec): for a causal model this is the
  same set of (prefix, next item) pairs as prefix augmentation, computed in one pass per session.

Batches are built from length-sorted buckets so padding (and wasted compute) stays small.

GRU4Rec's official scheme learns from *session-parallel steps* instead (:func:`session_parallel_steps`):
whole sessions in the order of their first event, one event of each of ``batch_size`` sessions per step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sessiondata.protocol import EvalCase
from sessiondata.schema import Session

PAD = 0
IGNORE = -100  # target value ignored by the loss


def tokens(items: Sequence[int]) -> list[int]:
    """Dense item indices -> tokens (index + 1)."""
    return [int(item) + 1 for item in items]


def pad_right(seqs: Sequence[Sequence[int]], max_len: int, fill: int = PAD) -> np.ndarray:
    """Keep each sequence's last ``max_len`` values, left-aligned, padded on the right with ``fill``."""
    width = max(1, min(max_len, max((len(s) for s in seqs), default=1)))
    out = np.full((len(seqs), width), fill, dtype=np.int64)
    for row, seq in enumerate(seqs):
        tail = list(seq)[-width:]
        out[row, : len(tail)] = tail
    return out


@dataclass(frozen=True)
class Examples:
    """Model inputs (token sequences) with their targets.

    ``targets`` holds one target token per example (prefix mode) or one sequence of targets aligned with
    the inputs (sequence mode: ``targets[i][t]`` follows ``inputs[i][: t + 1]``).
    """

    inputs: list[list[int]]
    targets: list[list[int]] | list[int]
    per_position: bool

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_targets(self) -> int:
        if self.per_position:
            return sum(len(t) for t in self.targets)  # type: ignore[arg-type]
        return len(self.targets)


def prefix_examples(sessions: Sequence[Session], max_len: int) -> Examples:
    """Every (prefix, next item) pair of every session: the SR-GNN/NISER prefix augmentation."""
    inputs: list[list[int]] = []
    targets: list[int] = []
    for session in sessions:
        toks = tokens(session.items)
        for t in range(1, len(toks)):
            inputs.append(toks[max(0, t - max_len) : t])
            targets.append(toks[t])
    return Examples(inputs, targets, per_position=False)


def sequence_examples(sessions: Sequence[Session], max_len: int) -> Examples:
    """Whole sessions, each position predicting the next item (long sessions cut into ``max_len`` windows)."""
    inputs: list[list[int]] = []
    targets: list[list[int]] = []
    for session in sessions:
        toks = tokens(session.items)
        if len(toks) < 2:
            continue
        # windows ending at the session's end, stepping back by max_len: every next-item pair appears once
        end = len(toks)
        while end > 1:
            start = max(0, end - 1 - max_len)
            window = toks[start:end]
            inputs.append(window[:-1])
            targets.append(window[1:])
            end = start + 1 if start > 0 else 0
    return Examples(inputs, targets, per_position=True)


def session_examples(sessions: Sequence[Session]) -> Examples:
    """Whole sessions (two items or more) ordered by their first event, for session-parallel training:
    ``inputs[i][t]`` is followed by ``targets[i][t]``; no window, no padding."""
    kept = [s for s in sessions if len(s.items) >= 2]
    order = sorted(range(len(kept)), key=lambda i: kept[i].times[0])  # stable: ties keep the data's order
    toks = [tokens(kept[i].items) for i in order]
    return Examples([t[:-1] for t in toks], [t[1:] for t in toks], per_position=True)


@dataclass(frozen=True)
class Step:
    """One session-parallel step: the current event and the next one of every active slot.

    ``keep`` (None: all) lists the previous step's slots that are still active, in order (the batch shrinks
    once no session is left to start); ``reset`` marks the slots whose session starts at this step, whose
    hidden state must start from zero.
    """

    inputs: torch.Tensor  # (n,) tokens
    targets: torch.Tensor  # (n,) tokens
    reset: torch.Tensor  # (n,) bool
    keep: torch.Tensor | None  # indices into the previous step's slots


def session_parallel_steps(examples: Examples, batch_size: int, min_slots: int = 1) -> Iterator[Step]:
    """GRU4Rec's session-parallel mini-batches over ``examples`` (:func:`session_examples`), in their order.

    Slot ``j`` starts with session ``j``; each step yields every slot's current event and its next one; a
    slot whose session has no next event takes the next unstarted session (slots in ascending order take
    sessions in order) or, when none is left, is dropped. Every (event, next event) pair is yielded once, in
    session order; iteration stops when fewer than ``min_slots`` slots remain.
    """
    lengths = np.fromiter((len(t) for t in examples.targets), dtype=np.int64, count=len(examples))
    if len(lengths) == 0:
        return
    events = np.fromiter(
        (tok for inp, tgt in zip(examples.inputs, examples.targets, strict=True) for tok in (inp[0], *tgt)),
        dtype=np.int64,
    )
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths + 1)  # a session of L targets has L + 1 events
    n_slots = min(batch_size, len(lengths))
    session = np.arange(n_slots)
    position = offsets[session].copy()
    end = offsets[session + 1] - 1  # index of each slot's last event
    next_session = n_slots
    reset = np.ones(n_slots, dtype=bool)
    keep: np.ndarray | None = None
    while len(position) >= min_slots and len(position) > 0:
        yield Step(
            torch.from_numpy(events[position]),
            torch.from_numpy(events[position + 1]),
            torch.from_numpy(reset),
            None if keep is None else torch.from_numpy(keep),
        )
        position = position + 1
        finished = np.flatnonzero(position >= end)
        reset = np.zeros(len(position), dtype=bool)
        keep = None
        if len(finished) == 0:
            continue
        starting = finished[: max(0, min(len(finished), len(lengths) - next_session))]
        new = np.arange(next_session, next_session + len(starting))
        next_session += len(starting)
        position[starting], end[starting] = offsets[new], offsets[new + 1] - 1
        reset[starting] = True
        dropped = finished[len(starting) :]
        if len(dropped):
            alive = np.ones(len(position), dtype=bool)
            alive[dropped] = False
            keep = np.flatnonzero(alive)
            position, end, reset = position[keep], end[keep], reset[keep]


def case_examples(cases: Sequence[EvalCase], max_len: int) -> Examples:
    """Validation cases as prefix examples (prompt -> target)."""
    return Examples([tokens(c.prompt)[-max_len:] for c in cases], [c.target + 1 for c in cases], per_position=False)


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor  # (B, L) tokens, right-padded
    lengths: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B,) or (B, L) target tokens, IGNORE where none

    def to(self, device: torch.device) -> Batch:
        return Batch(self.inputs.to(device), self.lengths.to(device), self.targets.to(device))


def make_batch(
    inputs: Sequence[Sequence[int]], targets: Sequence[object] | None, max_len: int, per_position: bool
) -> Batch:
    padded = pad_right(inputs, max_len)
    lengths = np.array([min(len(s), padded.shape[1]) for s in inputs], dtype=np.int64)
    if targets is None:
        target_arr = np.full(len(inputs), IGNORE, dtype=np.int64)
    elif per_position:
        target_arr = pad_right(targets, padded.shape[1], fill=IGNORE)  # type: ignore[arg-type]
    else:
        target_arr = np.asarray(targets, dtype=np.int64)
    return Batch(torch.from_numpy(padded), torch.from_numpy(lengths), torch.from_numpy(target_arr))


def batch_chunks(
    examples: Examples, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Example indices of length-bucketed batches: examples sorted by length (random tie order), batches
    shuffled. The same ``rng`` state gives the same chunks on every process of a distributed run."""
    n = len(examples)
    lengths = np.fromiter((len(s) for s in examples.inputs), dtype=np.int64, count=n)
    if shuffle:
        assert rng is not None
        order = np.lexsort((rng.random(n), lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if shuffle:
        rng.shuffle(chunks)  # type: ignore[union-attr,arg-type]
    return chunks


def shard_chunks(chunks: list[np.ndarray], rank: int, world: int) -> list[np.ndarray]:
    """Rank ``rank``'s disjoint share of every batch (rows ``rank::world``), so ``world`` processes together
    take the same steps over the same global batches as one process; batches with fewer rows than
    processes are skipped by all of them (every rank must take the same number of steps)."""
    if world == 1:
        return chunks
    return [chunk[rank::world] for chunk in chunks if len(chunk) >= world]


def chunk_batch(examples: Examples, chunk: np.ndarray, max_len: int) -> Batch:
    return make_batch(
        [examples.inputs[i] for i in chunk], [examples.targets[i] for i in chunk], max_len, examples.per_position
    )


def iterate_batches(
    examples: Examples, batch_size: int, max_len: int, *, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[Batch]:
    """Length-bucketed batches (:func:`batch_chunks`)."""
    for chunk in batch_chunks(examples, batch_size, shuffle=shuffle, rng=rng):
        yield chunk_batch(examples, chunk, max_len)
