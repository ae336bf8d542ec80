"""One training loop for every torch encoder: full-catalogue (or sampled, logQ-corrected) cross-entropy,
Adam, seeded shuffles, early stopping on the validation cases (never the test split), a progress bar and a
per-epoch log of training loss, validation loss and validation HR/NDCG/MRR@k.

Two ways through an epoch: padded mini-batches of training examples (``training="batches"``, every
architecture), or GRU4Rec's official session-parallel steps (``training="session-parallel"``, encoders
with ``steps``: :mod:`sr_models.neural.gru4rec`), where each step updates the weights, the hidden state is
carried from step to step (detached) and reset where a new session starts, and the loss runs over the
step's shared negatives (:mod:`sr_models.neural.losses`). Adam or GRU4Rec's Adagrad with momentum
(:class:`sr_models.neural.optim.AdagradM`)."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sessiondata.protocol import EvalCase
from sr_models.neural.data import (
    IGNORE,
    Batch,
    Examples,
    case_examples,
    iterate_batches,
    make_batch,
)
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.optim import AdagradM
from sr_models.neural.session_parallel import SessionParallelLoss, optimiser_step, session_parallel_epoch
from sr_models.ranking import mean_metrics, target_ranks

log = logging.getLogger("sr_models.neural")


@dataclass(frozen=True)
class TrainConfig:
    max_len: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 20  # fixed number, or the cap when early stopping
    patience: int = 3  # epochs without validation improvement before stopping
    monitor: str = "ndcg@20"
    k: int = 20
    loss: str = "ce"  # "ce" (full catalogue), "sampled" (negatives, logQ correction), "bpr-max"
    n_negatives: int = 2048
    sample_alpha: float = 0.75
    clip_norm: float = 5.0  # 0: no clipping
    training: str = "batches"  # or "session-parallel" (GRU4Rec's official scheme)
    optimizer: str = "adam"  # or "adagrad" (GRU4Rec's Adagrad with momentum)
    momentum: float = 0.0  # adagrad only
    logq: float = 1.0  # weight of the logQ correction of the sampled loss (session-parallel)
    bpreg: float = 1.0  # BPR-max score regularisation
    final_act: str = "linear"  # activation of the scores before BPR-max
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    log_path: Path | None = None


# settings a hyper-parameter record holds only when they are not the earlier scheme's (sr_models.neural.hyper)
RECORDED_TRAINING = ("training", "optimizer", "momentum", "clip_norm", "logq", "bpreg", "final_act")


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("-inf")
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return sum(1 for record in self.history if record["epoch"] > 0)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def batch_loss(
    encoder: SessionEncoder,
    batch: Batch,
    config: TrainConfig,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of the batch's targets (tokens) over the catalogue, or over sampled negatives."""
    hidden = encoder(batch.inputs, batch.lengths)
    targets = batch.targets
    if targets.dim() == 2:  # a target per position: keep the real ones
        keep = targets != IGNORE
        hidden, targets = hidden[keep], targets[keep]
    targets = targets - 1  # tokens -> item indices
    if config.loss == "sampled" and log_q is not None and hasattr(encoder, "output"):
        # GRU4Rec-style: the target against popularity-sampled negatives, scores corrected by -log q
        negatives = torch.multinomial(log_q.exp(), config.n_negatives, replacement=True)
        candidates = torch.cat([targets, negatives])
        table = encoder.item_table()[candidates]
        scores = hidden @ table.T + encoder.bias[candidates]  # type: ignore[index]
        scores = scores - log_q[candidates]
        return F.cross_entropy(scores, torch.arange(len(targets), device=scores.device))
    return F.cross_entropy(encoder.logits(hidden), targets)


@torch.no_grad()
def score_tokens(
    encoder: SessionEncoder, inputs: Sequence[Sequence[int]], max_len: int, batch_size: int = 512
) -> torch.Tensor:
    """(N, n_items) scores for token prompts, in the given order."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(inputs), batch_size):
        batch = make_batch(inputs[start : start + batch_size], None, max_len, per_position=False).to(device)
        out.append(encoder.logits(encoder.final(batch.inputs, batch.lengths)))
    return torch.cat(out) if out else torch.empty(0, encoder.n_items)


@torch.no_grad()
def validate(encoder: SessionEncoder, cases: Sequence[EvalCase], config: TrainConfig) -> dict[str, float]:
    """Validation loss and HR/NDCG/MRR@k with prompt items excluded and ties counted against the model
    (the protocol's rule, :func:`sr_models.ranking.target_ranks`)."""
    examples = case_examples(cases, config.max_len)
    scores = score_tokens(encoder, examples.inputs, config.max_len).cpu()
    targets = [c.target for c in cases]
    loss = float(F.cross_entropy(scores, torch.tensor(targets)))
    ranks = target_ranks(scores.numpy(), targets, [c.prompt for c in cases])
    return {"valid_loss": loss, **mean_metrics(ranks, config.k)}


def item_log_q(examples: Examples, n_items: int, alpha: float) -> torch.Tensor:
    counts = np.ones(n_items, dtype=np.float64)
    for targets in examples.targets:
        for token in targets if isinstance(targets, list) else [targets]:
            counts[token - 1] += 1
    probs = counts**alpha
    return torch.log(torch.from_numpy(probs / probs.sum()).float())


def make_optimiser(encoder: SessionEncoder, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adagrad":
        if config.weight_decay:
            raise ValueError("the adagrad optimiser has no weight decay (the official one neither)")
        bias = [encoder.bias] if isinstance(getattr(encoder, "bias", None), torch.nn.Parameter) else []
        return AdagradM(encoder.parameters(), lr=config.lr, momentum=config.momentum, row_sparse=bias)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use 'adam' or 'adagrad'")


def _batches_epoch(
    encoder: SessionEncoder,
    examples: Examples,
    config: TrainConfig,
    optimiser: torch.optim.Optimizer,
    log_q: torch.Tensor | None,
    device: torch.device,
    rng: np.random.Generator,
    generator: torch.Generator,
    desc: str,
) -> tuple[float, int]:
    """One pass of shuffled, length-bucketed padded batches: (sum of batch losses, number of batches)."""
    total, n_batches = 0.0, math.ceil(len(examples) / config.batch_size)
    batches = iterate_batches(examples, config.batch_size, config.max_len, shuffle=True, rng=rng)
    bar = tqdm(batches, total=n_batches, desc=desc, disable=not config.progress, leave=False)
    for n_done, batch in enumerate(bar):
        loss = batch_loss(encoder, encoder.prepare(batch, generator).to(device), config, log_q)
        value = optimiser_step(encoder, loss, config, optimiser, desc, n_done)
        total += value
        bar.set_postfix(loss=f"{value:.3f}")
    return total, n_batches


def train(
    encoder: SessionEncoder,
    examples: Examples,
    config: TrainConfig,
    valid_cases: Sequence[EvalCase] = (),
) -> TrainResult:
    """Train ``encoder`` in place; with ``valid_cases`` stop early and restore the best epoch's weights."""
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = make_optimiser(encoder, config)
    device = torch.device(config.device)
    parallel = config.training == "session-parallel"
    if parallel and not getattr(encoder, "steps", False):
        raise ValueError(f"{type(encoder).__name__} cannot be trained with session-parallel steps")
    step_loss = SessionParallelLoss(encoder, examples, config, generator) if parallel else None
    sampled = config.loss == "sampled" and not parallel
    log_q = item_log_q(examples, encoder.n_items, config.sample_alpha).to(device) if sampled else None
    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    started = time.perf_counter()
    if valid_cases:  # epoch 0: the untrained model, the baseline "learning happened" is judged against
        initial = {"epoch": 0, "train_loss": None, "epoch_seconds": 0.0, **validate(encoder, valid_cases, config)}
        result.history.append(initial)
        _log_epoch(initial, config.log_path)
    for epoch in range(1, config.epochs + 1):
        encoder.train()
        epoch_start = time.perf_counter()
        if step_loss is not None:
            total, n_batches = session_parallel_epoch(
                encoder, examples, config, optimiser, step_loss, device, f"epoch {epoch}"
            )
        else:
            total, n_batches = _batches_epoch(
                encoder, examples, config, optimiser, log_q, device, rng, generator, f"epoch {epoch}"
            )
        record: dict[str, float] = {
            "epoch": epoch,
            "train_loss": total / max(n_batches, 1),
            "epoch_seconds": time.perf_counter() - epoch_start,
        }
        if valid_cases:
            record.update(validate(encoder, valid_cases, config))
        result.history.append(record)
        _log_epoch(record, config.log_path)
        if not valid_cases:
            result.best_epoch = epoch
            continue
        metric = record[config.monitor]
        if metric > result.best_metric:
            result.best_metric, result.best_epoch = metric, epoch
            best_state = {key: value.detach().clone() for key, value in encoder.state_dict().items()}
        elif epoch - result.best_epoch >= config.patience:
            break
    if best_state is not None:
        encoder.load_state_dict(best_state)
    encoder.eval()
    result.seconds = time.perf_counter() - started
    return result


def _log_epoch(record: dict[str, Any], path: Path | None) -> None:
    text = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
    log.info(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
