"""GRU4Rec's official session-parallel training pass (see :mod:`sr_models.neural.trainer`): the loss of one step
over the step's shared negatives, and one epoch of steps with the hidden state carried (detached) from step
to step and reset where a new session starts; plus the gradient step both training schemes share."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr_models.neural import distributed
from sr_models.neural.data import Examples, session_parallel_steps
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.losses import SampledSoftmax, bpr_max_loss, event_counts, final_activation

if TYPE_CHECKING:
    from sr_models.neural.trainer import TrainConfig


def sparse_rows(config: TrainConfig) -> bool:
    """Whether item tables follow the sparse update rule: session-parallel steps over sampled candidates
    with Adagrad and no clipping (the official setting; clipping and Adam need dense gradients)."""
    return (
        config.training == "session-parallel"
        and config.optimizer == "adagrad"
        and config.loss != "ce"
        and not config.clip_norm
    )


def sparse_updates(config: TrainConfig) -> bool:
    """Whether item tables get sparse gradients: :func:`sparse_rows` on one process. A distributed run
    all-reduces dense gradients and keeps the sparse rule in the optimiser (``AdagradM``'s ``row_sparse``)."""
    return sparse_rows(config) and not distributed.world().active


@dataclass(frozen=True)
class Shard:
    """This process's session-parallel share: its sessions (every ``world``-th, in time order), their
    indices in the full examples, its config (``batch_size`` = its slots) and the steps every process
    takes (``None``: all of them, on one process)."""

    examples: Examples
    sessions: np.ndarray
    config: TrainConfig
    steps: int | None


def min_slots(config: TrainConfig) -> int:
    # with no extra negatives a single slot has nothing to rank against (the official code stops there too)
    return 1 if config.loss == "ce" or config.n_negatives > 0 else 2


def session_parallel_shard(examples: Examples, config: TrainConfig) -> Shard:
    """The whole run on one process; on ``world`` processes, each takes a disjoint share of the sessions
    with ``batch_size // world`` slots (the same sessions in flight in all), and all take as many steps as
    the shortest share has (DDP needs every process to step alike)."""
    world = distributed.world()
    if not world.active:
        return Shard(examples, np.arange(len(examples)), config, None)
    index = np.arange(world.rank, len(examples), world.size)
    mine = Examples([examples.inputs[i] for i in index], [examples.targets[i] for i in index], per_position=True)
    local = replace(config, batch_size=max(1, config.batch_size // world.size))
    count = sum(1 for _ in session_parallel_steps(mine, local.batch_size, min_slots=min_slots(local)))
    return Shard(mine, index, local, distributed.smallest(count))


class SessionParallelLoss:
    """The loss of one session-parallel step (see :mod:`sr_models.neural.losses`), divided by the batch size."""

    def __init__(self, encoder: SessionEncoder, examples: Examples, config: TrainConfig, generator: torch.Generator):
        self.config = config
        self.sparse = sparse_updates(config)
        self.activation = final_activation(config.final_act)
        counts = event_counts(examples.inputs, examples.targets, encoder.n_items)  # type: ignore[arg-type]
        self.sampled = None
        if config.loss != "ce":
            self.sampled = SampledSoftmax(
                counts, alpha=config.sample_alpha, n_negatives=config.n_negatives, logq=config.logq, generator=generator
            )

    def __call__(self, encoder: SessionEncoder, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        config, items = self.config, targets - 1
        if config.loss == "ce":
            loss = F.cross_entropy(encoder.logits(hidden), items, reduction="sum")
            return loss / config.batch_size
        assert self.sampled is not None
        if config.loss == "sampled":
            loss = self.sampled(encoder, hidden, items, sparse=self.sparse, reduction="sum")
        elif config.loss == "bpr-max":
            candidates, _ = self.sampled.candidates(items)
            scores = encoder.candidate_scores(hidden, candidates, sparse=self.sparse)
            loss = bpr_max_loss(self.activation(scores), config.bpreg)
        else:
            raise ValueError(f"unknown loss {config.loss!r} for session-parallel training")
        return loss / config.batch_size

    def step(
        self, encoder: SessionEncoder, inputs: torch.Tensor, state: list[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One step's forward: the loss of ``inputs``' next events ``targets`` and the new hidden state."""
        hidden, state = encoder.step(inputs, state, sparse=self.sparse)  # type: ignore[operator]
        return self(encoder, hidden, targets), state


def optimiser_step(
    encoder: SessionEncoder,
    loss: torch.Tensor,
    config: TrainConfig,
    optimiser: torch.optim.Optimizer,
    desc: str,
    step: int,
) -> float:
    """One gradient step on ``loss`` (with the configured clipping); its value, which must be finite."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip_norm:
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), config.clip_norm)
    optimiser.step()
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(f"{desc}: the training loss became {value} at step {step}")
    return value


def session_parallel_epoch(
    forward: Any,
    encoder: SessionEncoder,
    shard: Shard,
    optimiser: torch.optim.Optimizer,
    step_loss: SessionParallelLoss,
    device: torch.device,
    desc: str,
) -> tuple[float, int]:
    """One pass of session-parallel steps over ``shard``: (sum of step losses, number of steps).
    ``forward`` is :meth:`SessionParallelLoss.step` (DDP-wrapped in a distributed run)."""
    config = shard.config
    steps = session_parallel_steps(shard.examples, config.batch_size, min_slots=min_slots(config))
    if shard.steps is not None:
        steps = islice(steps, shard.steps)
    bar = tqdm(steps, desc=desc, disable=not (config.progress and distributed.world().main), leave=False)
    state: list[torch.Tensor] = []
    total, n_steps = 0.0, 0
    for step in bar:
        inputs, targets, reset = step.inputs.to(device), step.targets.to(device), step.reset.to(device)
        if not state:
            state = encoder.initial_state(len(inputs), device)  # type: ignore[operator]
        if step.keep is not None:
            keep = step.keep.to(device)
            state = [h[keep] for h in state]
        state = [h.detach().masked_fill(reset.unsqueeze(1), 0.0) for h in state]  # no BPTT; new sessions at 0
        loss, state = forward(inputs, state, targets)
        value = optimiser_step(encoder, loss, config, optimiser, desc, n_steps)
        total += value
        n_steps += 1
        if n_steps % 50 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    return total, n_steps
