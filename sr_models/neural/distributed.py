"""Training on several processes with torch's own engine: ``torchrun`` starts the processes,
``torch.distributed`` connects them (gloo on the CPU, NCCL on CUDA), ``DistributedDataParallel``
averages the gradients.

How a distributed fit works (:mod:`sr_models.neural.trainer`, :mod:`sr_models.neural.fitting`):

* every process builds the same model from the same seed (DDP also broadcasts rank 0's weights);
* padded batches: every process draws the same shuffled global batches from the same seed and trains on
  its disjoint rows of each (:func:`~sr_models.neural.data.shard_chunks`), so the global batch, the
  number of steps and the learning rate mean what they mean on one process; session-parallel steps: each
  process runs its own disjoint share of the sessions with ``batch_size / world`` slots, all processes
  taking the same number of steps;
* validation cases are split across the processes and their ranks gathered, so every process computes
  the same metrics; rank 0's early-stopping decision is broadcast, so all stop together;
* only rank 0 writes (training log, validated epoch record, the artefact); decisions that read the disk
  (reuse a cached artefact, the validated epoch count) are rank 0's, broadcast to the others.

What differs from one process: dropout, masks and sampled negatives are drawn per process, and a loss
with in-batch negatives (GRU4Rec's) sees each process's own rows as the batch (on 2 processes a slot of
GRU4Rec's 64 ranks against 32 in-batch targets plus the sampled items, not 64). Measured on a Beauty slice
(tests/test_distributed.py, 5 seeds), 2 processes reached a validation NDCG@20 0.007 below 1 process on
average (same-seed sd 0.009: within noise). Item tables get dense gradients, all-reduced whole: cheap for
Beauty's 12k items, communication-bound for 10^5+ items (a sparse all-reduce of the rows a step touched
is not built).

A single process (no ``torchrun``) sees rank 0 of 1 everywhere here, and nothing changes for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` (0 of 1 without ``torchrun``)."""

    rank: int = 0
    size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (torch.distributed.run)."""
    return dist.is_available() and dist.is_torchelastic_launched()


def start(device: str) -> World:
    """Join the ``torchrun`` process group (once; gloo on the CPU, NCCL when ``device`` resolves to CUDA,
    each process on its node's GPU ``LOCAL_RANK``); without ``torchrun``, rank 0 of 1."""
    if not launched():
        return World()
    if not dist.is_initialized():
        cuda = device in ("cuda", "auto") and torch.cuda.is_available()
        if cuda:  # torchrun's own variable: which of this node's GPUs is this process's
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return world()


def world() -> World:
    """The current process group's rank and size (0 of 1 when none is running)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def agree(value: T) -> T:
    """Rank 0's ``value`` on every process (``value`` itself on one process)."""
    if not world().active:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: T) -> list[T]:
    """Every process's ``value``, in rank order (``[value]`` on one process)."""
    if not world().active:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def smallest(value: int) -> int:
    """The smallest ``value`` over the processes (how many steps every process can take)."""
    return min(gather(value))


def barrier() -> None:
    if world().active:
        dist.barrier()


def finish() -> None:
    """Leave the process group (an entry point's last step)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class LossStep(nn.Module):
    """The encoder and one training step's loss as a module, so the whole step runs inside ``forward``
    (what DDP needs to see every parameter the loss uses, the output table included)."""

    def __init__(self, encoder: nn.Module, loss: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss

    def forward(self, *args: Any) -> Any:
        return self.loss(self.encoder, *args)


def step_module(encoder: nn.Module, loss: Any) -> Any:
    """``loss(encoder, *args)`` as a callable: DDP-wrapped in a distributed run, plain otherwise.

    Buffers are synchronised once, not at every step (they are computed alike on every process from the
    same sessions: MSGAT's item graph, SemSR-F's frozen text vectors); unused parameters are allowed (a
    step need not touch all of them)."""
    step = LossStep(encoder, loss)
    if not world().active:
        return step
    device = next(encoder.parameters()).device
    ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        step, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=True
    )


def seed_offset() -> int:
    """Added to a seed for what should differ across processes (dropout, masks, sampled negatives): 0 on
    rank 0, so rank 0 of a distributed run draws what one process would."""
    return 1_000_003 * world().rank


def audit(module: nn.Module, seen: np.ndarray) -> dict[str, Any]:
    """A distributed epoch's record of what each process trained on (``seen``: example or session indices):
    counts per rank, how many indices more than one rank saw (0: the shards were disjoint), and how far
    the ranks' weights are apart (sum of absolute values; 0.0: DDP kept them identical)."""
    with torch.no_grad():
        checksum = float(sum(p.double().abs().sum() for p in module.parameters()))
    shares = gather((seen, checksum))
    indices = np.concatenate([x for x, _ in shares]).astype(np.int64)
    counts = np.bincount(indices) if len(indices) else np.zeros(0, dtype=np.int64)
    sums = [c for _, c in shares]
    return {
        "world": len(shares),
        "shard_examples": [len(x) for x, _ in shares],
        "shard_overlap": int((counts > 1).sum()),
        "weights_spread": max(sums) - min(sums),
    }
