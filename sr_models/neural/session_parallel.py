"""GRU4Rec's official session-parallel training pass (see :mod:`sr_models.neural.trainer`): the loss of one step
over the step's shared negatives, and one epoch of steps with the hidden state carried (detached) from step
to step and reset where a new session starts; plus the gradient step both training schemes share."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr_models.neural.data import Examples, session_parallel_steps
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.losses import (
    PopularitySampler,
    bpr_max_loss,
    event_counts,
    final_activation,
    sampled_softmax_loss,
)

if TYPE_CHECKING:
    from sr_models.neural.trainer import TrainConfig


def sparse_updates(config: TrainConfig) -> bool:
    """Whether item tables get sparse gradients: session-parallel steps over sampled candidates with
    Adagrad and no clipping (the official setting; clipping and Adam need dense gradients)."""
    return (
        config.training == "session-parallel"
        and config.optimizer == "adagrad"
        and config.loss != "ce"
        and not config.clip_norm
    )


class SessionParallelLoss:
    """The loss of one session-parallel step (see :mod:`sr_models.neural.losses`), divided by the batch size."""

    def __init__(self, encoder: SessionEncoder, examples: Examples, config: TrainConfig, generator: torch.Generator):
        self.config = config
        self.sparse = sparse_updates(config)
        self.activation = final_activation(config.final_act)
        counts = event_counts(examples.inputs, examples.targets, encoder.n_items)  # type: ignore[arg-type]
        self.sampler = PopularitySampler(counts, config.sample_alpha, generator) if config.loss != "ce" else None
        self.log_count = torch.from_numpy(np.log(np.maximum(counts, 1)).astype(np.float32))

    def __call__(self, encoder: SessionEncoder, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        config, items = self.config, targets - 1
        if config.loss == "ce":
            loss = F.cross_entropy(encoder.logits(hidden), items, reduction="sum")
            return loss / config.batch_size
        assert self.sampler is not None
        extra = self.sampler.draw(config.n_negatives).to(hidden.device)
        candidates = torch.cat([items, extra])
        scores = encoder.candidate_scores(hidden, candidates, sparse=self.sparse)  # type: ignore[operator]
        if config.loss == "sampled":
            correction = None
            if config.logq:
                log_count = self.log_count.to(hidden.device)
                correction = config.logq * torch.cat([log_count[items], config.sample_alpha * log_count[extra]])
            loss = sampled_softmax_loss(scores, correction)
        elif config.loss == "bpr-max":
            loss = bpr_max_loss(self.activation(scores), config.bpreg)
        else:
            raise ValueError(f"unknown loss {config.loss!r} for session-parallel training")
        return loss / config.batch_size


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
    encoder: SessionEncoder,
    examples: Examples,
    config: TrainConfig,
    optimiser: torch.optim.Optimizer,
    step_loss: SessionParallelLoss,
    device: torch.device,
    desc: str,
) -> tuple[float, int]:
    """One pass of session-parallel steps: (sum of step losses, number of steps)."""
    # with no extra negatives a single slot has nothing to rank against (the official code stops there too)
    min_slots = 1 if config.loss == "ce" or config.n_negatives > 0 else 2
    steps = session_parallel_steps(examples, config.batch_size, min_slots=min_slots)
    bar = tqdm(steps, desc=desc, disable=not config.progress, leave=False)
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
        hidden, state = encoder.step(inputs, state, sparse=step_loss.sparse)  # type: ignore[operator]
        value = optimiser_step(encoder, step_loss(encoder, hidden, targets), config, optimiser, desc, n_steps)
        total += value
        n_steps += 1
        if n_steps % 50 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    return total, n_steps
