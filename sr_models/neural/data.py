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


def iterate_batches(
    examples: Examples, batch_size: int, max_len: int, *, shuffle: bool, rng: np.random.Generator | None = None
) -> Iterator[Batch]:
    """Length-bucketed batches: examples sorted by length (with random tie order), batches shuffled."""
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
    for chunk in chunks:
        inputs = [examples.inputs[i] for i in chunk]
        targets = [examples.targets[i] for i in chunk]
        yield make_batch(inputs, targets, max_len, examples.per_position)
