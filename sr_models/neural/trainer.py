"""One training loop for every torch encoder: full-catalogue (or sampled, logQ-corrected) cross-entropy,
Adam, seeded shuffles, early stopping on the validation cases (never the test split), a progress bar and a
per-epoch log of training loss, validation loss and validation HR/NDCG/MRR@k.

Two ways through an epoch: padded mini-batches of training examples (``training="batches"``, every
architecture), or GRU4Rec's official session-parallel steps (``training="session-parallel"``, encoders
with ``steps``: :mod:`sr_models.neural.gru4rec`), where each step updates the weights, the hidden state is
carried from step to step (detached) and reset where a new session starts, and the loss runs over the
step's shared negatives (:mod:`sr_models.neural.losses`). Adam or GRU4Rec's Adagrad with momentum
(:class:`sr_models.neural.optim.AdagradM`). Sampled softmax works with every encoder (each scores a subset
of items as its full logits would); validation always ranks the full catalogue.

Under ``torchrun`` the same loop runs data-parallel on every process (:mod:`sr_models.neural.distributed`):
each trains on its disjoint share of every epoch, validation is gathered across them, rank 0 decides
when to stop, and a distributed epoch's record says what each rank trained on."""

from __future__ import annotations

import json
import logging
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

from sessiondata.errors import ConfigError
from sessiondata.protocol import EvalCase
from sr_models.neural import distributed
from sr_models.neural.data import (
    IGNORE,
    Batch,
    Examples,
    batch_chunks,
    case_examples,
    chunk_batch,
    make_batch,
    shard_chunks,
)
from sr_models.neural.encoder import SessionEncoder, scores_candidates
from sr_models.neural.losses import SampledSoftmax, target_counts
from sr_models.neural.optim import AdagradM
from sr_models.neural.session_parallel import (
    SessionParallelLoss,
    optimiser_step,
    session_parallel_epoch,
    session_parallel_shard,
    sparse_rows,
)
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
    sampled: SampledSoftmax | None = None,
) -> torch.Tensor:
    """Cross-entropy of the batch's targets (tokens) over the catalogue, or with ``sampled`` over the
    other targets and popularity-sampled negatives, logQ-corrected (:class:`SampledSoftmax`)."""
    hidden = encoder(batch.inputs, batch.lengths)
    targets = batch.targets
    if targets.dim() == 2:  # a target per position: keep the real ones
        keep = targets != IGNORE
        hidden, targets = hidden[keep], targets[keep]
    targets = targets - 1  # tokens -> item indices
    if sampled is not None:
        return sampled(encoder, hidden, targets)
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
    """Validation loss and HR/NDCG/MRR@k over the full catalogue, prompt items excluded and ties counted
    against the model (the protocol's rule, :func:`sr_models.ranking.target_ranks`). In a distributed run
    each process scores its share of the cases and all compute the metrics of all of them."""
    world = distributed.world()
    mine = list(cases)[world.rank :: world.size]
    examples = case_examples(mine, config.max_len)
    scores = score_tokens(encoder, examples.inputs, config.max_len).cpu()
    targets = [c.target for c in mine]
    losses = F.cross_entropy(scores, torch.tensor(targets, dtype=torch.int64), reduction="none").numpy()
    ranks = target_ranks(scores.numpy(), targets, [c.prompt for c in mine])
    if world.active:
        shares = distributed.gather((np.asarray(ranks), losses))
        ranks = np.concatenate([r for r, _ in shares])
        losses = np.concatenate([loss for _, loss in shares])
    return {"valid_loss": float(np.mean(losses, dtype=np.float64)), **mean_metrics(ranks, config.k)}


def make_optimiser(encoder: SessionEncoder, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adagrad":
        if config.weight_decay:
            raise ValueError("the adagrad optimiser has no weight decay (the official one neither)")
        rows = [encoder.bias] if isinstance(getattr(encoder, "bias", None), torch.nn.Parameter) else []
        if sparse_rows(config) and distributed.world().active:  # dense gradients, the sparse update rule
            rows += [m.weight for m in encoder.modules() if isinstance(m, torch.nn.Embedding)]
        return AdagradM(encoder.parameters(), lr=config.lr, momentum=config.momentum, row_sparse=rows)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use 'adam' or 'adagrad'")


def _batches_epoch(
    step: Any,
    encoder: SessionEncoder,
    examples: Examples,
    config: TrainConfig,
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    rng: np.random.Generator,
    generator: torch.Generator,
    desc: str,
) -> tuple[float, int, np.ndarray]:
    """One pass of shuffled, length-bucketed padded batches (this process's rows of each in a distributed
    run): (sum of batch losses, number of batches, the example indices trained on)."""
    world = distributed.world()
    chunks = shard_chunks(batch_chunks(examples, config.batch_size, shuffle=True, rng=rng), world.rank, world.size)
    total = 0.0
    bar = tqdm(chunks, desc=desc, disable=not (config.progress and world.main), leave=False)
    for n_done, chunk in enumerate(bar):
        batch = encoder.prepare(chunk_batch(examples, chunk, config.max_len), generator).to(device)
        value = optimiser_step(encoder, step(batch), config, optimiser, desc, n_done)
        total += value
        bar.set_postfix(loss=f"{value:.3f}")
    seen = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    return total, len(chunks), seen


def _sampled_loss(
    encoder: SessionEncoder, examples: Examples, config: TrainConfig, generator: torch.Generator
) -> SampledSoftmax | None:
    if config.loss != "sampled" or config.training == "session-parallel":
        return None
    if not scores_candidates(encoder):
        raise ConfigError("loss", "sampled", f"{type(encoder).__name__} cannot score sampled candidates; use 'ce'")
    counts = target_counts(examples.targets, encoder.n_items)  # type: ignore[arg-type]
    return SampledSoftmax(
        counts, alpha=config.sample_alpha, n_negatives=config.n_negatives, logq=config.logq, generator=generator
    )


def train(
    encoder: SessionEncoder,
    examples: Examples,
    config: TrainConfig,
    valid_cases: Sequence[EvalCase] = (),
) -> TrainResult:
    """Train ``encoder`` in place; with ``valid_cases`` stop early and restore the best epoch's weights.

    Under ``torchrun`` every process calls this with the same arguments (:mod:`sr_models.neural.distributed`)."""
    world = distributed.world()
    if world.rank:  # dropout, masks and negatives differ across processes; rank 0 draws what one process would
        torch.manual_seed(config.seed + distributed.seed_offset())
    rng = np.random.default_rng(config.seed)  # the batch order: the same on every process
    generator = torch.Generator().manual_seed(config.seed + distributed.seed_offset())
    optimiser = make_optimiser(encoder, config)
    device = torch.device(config.device)
    parallel = config.training == "session-parallel"
    if parallel and not getattr(encoder, "steps", False):
        raise ValueError(f"{type(encoder).__name__} cannot be trained with session-parallel steps")
    shard = session_parallel_shard(examples, config) if parallel else None
    if shard is not None:
        step_loss = SessionParallelLoss(encoder, examples, shard.config, generator)
        step = distributed.step_module(encoder, step_loss.step)
    else:
        sampled = _sampled_loss(encoder, examples, config, generator)
        step = distributed.step_module(encoder, lambda enc, batch: batch_loss(enc, batch, config, sampled))
    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    started = time.perf_counter()
    log_path = config.log_path if world.main else None
    if valid_cases:  # epoch 0: the untrained model, the baseline "learning happened" is judged against
        initial = {"epoch": 0, "train_loss": None, "epoch_seconds": 0.0, **validate(encoder, valid_cases, config)}
        result.history.append(initial)
        _log_epoch(initial, log_path)
    for epoch in range(1, config.epochs + 1):
        encoder.train()
        epoch_start = time.perf_counter()
        if shard is not None:
            total, n_batches = session_parallel_epoch(
                step, encoder, shard, optimiser, step_loss, device, f"epoch {epoch}"
            )
            seen = shard.sessions
        else:
            total, n_batches, seen = _batches_epoch(
                step, encoder, examples, config, optimiser, device, rng, generator, f"epoch {epoch}"
            )
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total / max(n_batches, 1),
            "epoch_seconds": time.perf_counter() - epoch_start,
        }
        if world.active:
            record.update(distributed.audit(encoder, seen))
        if valid_cases:
            record.update(validate(encoder, valid_cases, config))
        result.history.append(record)
        _log_epoch(record, log_path)
        if not valid_cases:
            result.best_epoch = epoch
            continue
        metric = record[config.monitor]
        if metric > result.best_metric:
            result.best_metric, result.best_epoch = metric, epoch
            best_state = {key: value.detach().clone() for key, value in encoder.state_dict().items()}
        if distributed.agree(epoch - result.best_epoch >= config.patience):  # rank 0 decides for all
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
