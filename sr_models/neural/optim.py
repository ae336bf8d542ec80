"""Adagrad with momentum as GRU4Rec's official code applies it (its ``IndexedAdagradM``; our own code).

Per parameter: ``acc += g²``; ``v = momentum·v - lr·g / sqrt(acc + eps)``; ``p += v`` (``p -= lr·g /
sqrt(acc + eps)`` without momentum). A *sparse* gradient (an item table looked up with ``sparse=True``)
updates only the rows it holds: their accumulator, their velocity and their values; rows a step did not
touch keep their velocity unapplied, so an item's embedding moves only in steps that see the item. Dense
parameters listed in ``row_sparse`` (the output bias, looked up densely) are treated the same way, by the
entries whose gradient is non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer


class AdagradM(Optimizer):
    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 0.05,
        momentum: float = 0.0,
        eps: float = 1e-6,
        row_sparse: Iterable[torch.nn.Parameter] = (),
    ) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, not {lr}")
        if momentum < 0:
            raise ValueError(f"momentum must be non-negative, not {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "eps": eps})
        self._row_sparse = {id(p) for p in row_sparse}

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def,override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, eps = group["lr"], group["momentum"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["acc"] = torch.zeros_like(p)
                    if momentum > 0:
                        state["velocity"] = torch.zeros_like(p)
                grad = p.grad
                if grad.is_sparse:
                    grad = grad.coalesce()
                    self._rows(p, state, grad.indices()[0], grad.values(), lr, momentum, eps)
                elif id(p) in self._row_sparse:
                    rows = torch.nonzero(grad.reshape(grad.shape[0], -1).abs().sum(1)).squeeze(1)
                    self._rows(p, state, rows, grad[rows], lr, momentum, eps)
                else:
                    state["acc"].addcmul_(grad, grad)
                    update = grad / (state["acc"] + eps).sqrt_() * -lr
                    if momentum > 0:
                        update = state["velocity"].mul_(momentum).add_(update)
                    p.add_(update)
        return loss

    @staticmethod
    def _rows(
        p: torch.Tensor,
        state: dict[str, torch.Tensor],
        rows: torch.Tensor,
        values: torch.Tensor,
        lr: float,
        momentum: float,
        eps: float,
    ) -> None:
        acc = state["acc"].index_select(0, rows).addcmul_(values, values)
        state["acc"].index_copy_(0, rows, acc)
        update = acc.add_(eps).rsqrt_().mul_(values).mul_(-lr)  # acc is a copy: reuse its memory
        if momentum > 0:
            update.add_(state["velocity"].index_select(0, rows), alpha=momentum)
            state["velocity"].index_copy_(0, rows, update)
        p.index_add_(0, rows, update)
