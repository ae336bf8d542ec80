"""GRU4Rec's losses over shared negatives, its final activations and its popularity sampler.

A session-parallel step scores its ``n`` targets against ``n + S`` candidates: the ``n`` targets of the
step (each row's own target is column ``i`` of row ``i``; the others are its negatives) and ``S`` extra
items drawn once per step from popularity^``alpha`` over the training events. As in the official code,
an item that is both a row's target and another candidate is not masked.

* :func:`sampled_softmax_loss`: cross-entropy over the candidates, optionally logQ-corrected (the official
  correction subtracts ``logq * log p`` with ``p`` the item's training count for the in-batch targets and
  its count^``alpha`` for the extra samples);
* :func:`bpr_max_loss`: BPR-max (Hidasi & Karatzoglou 2018): ``-log sum_j s_j sigmoid(r_i - r_j)`` plus
  ``bpreg * sum_j s_j r_j^2``, with ``s`` the softmax of the negatives' scores.

Both return the sum over rows (the trainer divides by the batch size, as the official code does).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-24  # inside the logs of BPR-max, as in the official code


def final_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``linear``, ``tanh``, ``relu``, ``elu-<alpha>`` or ``leaky-<slope>`` (the official choices that act
    before BPR-max); the scores used for ranking at inference are the raw ones (these are monotonic)."""
    if name == "linear":
        return lambda x: x
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return F.relu
    kind, _, value = name.partition("-")
    try:
        param = float(value)
    except ValueError:
        param = float("nan")
    if kind == "elu" and param >= 0:
        return (lambda x: x) if param == 0 else (lambda x: F.elu(x, param))
    if kind == "leaky" and param >= 0:
        return lambda x: F.leaky_relu(x, param)
    raise ValueError(f"unknown final activation {name!r}: use linear, tanh, relu, elu-<a> or leaky-<a>")


def sampled_softmax_loss(scores: torch.Tensor, correction: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of row ``i`` for column ``i`` of (n, n + S) scores, minus ``correction`` (n + S,)."""
    if correction is not None:
        scores = scores - correction
    return F.cross_entropy(scores, torch.arange(scores.shape[0], device=scores.device), reduction="sum")


class SampledSoftmax:
    """The sampled softmax both training schemes share (the official GRU4Rec's, usable by every encoder
    through :meth:`~sr_models.neural.encoder.SessionEncoder.candidate_scores`): each row's target against
    the other rows' targets and ``n_negatives`` items drawn once per step from ``counts``^``alpha``, the
    scores logQ-corrected by ``logq`` x (log count of the in-batch targets, ``alpha`` x log count of the
    drawn items). Evaluation never uses it: models are always scored over the full catalogue."""

    def __init__(
        self,
        counts: np.ndarray,
        *,
        alpha: float,
        n_negatives: int,
        logq: float,
        generator: torch.Generator,
        rows: int = 1024,
    ) -> None:
        self.sampler = PopularitySampler(counts, alpha, generator)
        self.log_count = torch.from_numpy(np.log(np.maximum(counts, 1)).astype(np.float32))
        self.alpha, self.n_negatives, self.logq = alpha, n_negatives, logq
        # a padded batch of a sequence model has a target per position (256 x 50 rows): the other rows'
        # targets are negatives within blocks of ``rows`` rows, so the scores stay rows x (rows + S), not n^2
        self.rows = rows

    def candidates(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the step's candidates: its targets then the drawn items, the drawn items)."""
        extra = self.sampler.draw(self.n_negatives).to(items.device)
        return torch.cat([items, extra]), extra

    def __call__(
        self,
        encoder: torch.nn.Module,
        hidden: torch.Tensor,
        items: torch.Tensor,
        *,
        sparse: bool = False,
        reduction: str = "mean",
    ) -> torch.Tensor:
        extra = self.sampler.draw(self.n_negatives).to(items.device)  # shared by the blocks of rows
        log_count = self.log_count.to(hidden.device)
        loss = hidden.new_zeros(())
        for start in range(0, len(items), self.rows):
            block = items[start : start + self.rows]
            candidates = torch.cat([block, extra])
            scores = encoder.candidate_scores(hidden[start : start + self.rows], candidates, sparse=sparse)  # type: ignore[operator]
            correction = None
            if self.logq:
                correction = self.logq * torch.cat([log_count[block], self.alpha * log_count[extra]])
            loss = loss + sampled_softmax_loss(scores, correction)
        return loss / max(len(items), 1) if reduction == "mean" else loss


def bpr_max_loss(scores: torch.Tensor, bpreg: float) -> torch.Tensor:
    """BPR-max of (n, n + S) scores whose column ``i`` is row ``i``'s target (needs n + S >= 2)."""
    n = scores.shape[0]
    rows = torch.arange(n, device=scores.device)
    own = torch.zeros_like(scores, dtype=torch.bool)
    own[rows, rows] = True
    weights = scores.masked_fill(own, float("-inf")).softmax(dim=1)  # softmax over each row's negatives
    target = scores[rows, rows].unsqueeze(1)
    ranking = -torch.log((torch.sigmoid(target - scores) * weights).sum(dim=1) + EPS)
    regulariser = bpreg * (weights * scores**2).sum(dim=1)
    return (ranking + regulariser).sum()


class PopularitySampler:
    """Items drawn with probability ∝ count^``alpha`` (items with count 0 never), from a seeded generator.

    Draws are made ``buffer`` steps at a time (the official code keeps a large cache of samples for the
    same reason: one call per step is slow)."""

    def __init__(self, counts: np.ndarray, alpha: float, generator: torch.Generator, buffer: int = 256) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        weights = np.where(counts > 0, counts**alpha, 0.0)
        if weights.sum() <= 0:
            raise ValueError("no item has a positive count to sample from")
        cdf = np.cumsum(weights / weights.sum())
        cdf[-1] = 1.0
        self.cdf = torch.from_numpy(cdf)
        self.generator = generator
        self.buffer = buffer
        self._pool = torch.empty(0, dtype=torch.int64)

    def draw(self, n: int) -> torch.Tensor:
        if n <= 0:
            return torch.empty(0, dtype=torch.int64)
        if len(self._pool) < n:
            uniform = torch.rand(n * self.buffer, generator=self.generator, dtype=torch.float64)
            fresh = torch.searchsorted(self.cdf, uniform, right=True).clamp_(max=len(self.cdf) - 1)
            self._pool = torch.cat([self._pool, fresh])
        sample, self._pool = self._pool[:n], self._pool[n:]
        return sample


def target_counts(targets: list, n_items: int) -> np.ndarray:
    """Training count per item index of padded-batch examples' targets (one token or a list of tokens each)."""
    flat = [t for target in targets for t in (target if isinstance(target, list) else [target])]
    return np.bincount(np.asarray(flat, dtype=np.int64) - 1, minlength=n_items)[:n_items]


def event_counts(examples_inputs: list[list[int]], examples_targets: list[list[int]], n_items: int) -> np.ndarray:
    """Training-event count per item index from session-parallel examples (first item + every target)."""
    counts = np.zeros(n_items, dtype=np.int64)
    for inputs, targets in zip(examples_inputs, examples_targets, strict=True):
        counts[inputs[0] - 1] += 1
        np.add.at(counts, np.asarray(targets, dtype=np.int64) - 1, 1)
    return counts
