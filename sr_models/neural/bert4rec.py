"""BERT4Rec (Sun et al. 2019): a bidirectional transformer trained with the cloze task.

Training masks each item of a session window with probability ``mask_prob`` (at least one per window, and
the last item with probability ``last_mask_prob`` so training matches next-item inference); the loss is
full-catalogue softmax cross-entropy at masked positions with a tied output table plus bias. Inference
appends a mask token after the prompt and scores the catalogue at that position.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from sr_models.neural.data import IGNORE, Batch
from sr_models.neural.encoder import ExampleMode, SessionEncoder
from sr_models.neural.sasrec import transformer

DEFAULTS: dict = {
    "dim": 64,
    "dropout": 0.2,
    "max_len": 50,
    "batch_size": 256,
    "lr": 2e-3,
    "model": {"n_layers": 2, "n_heads": 2},
    "max_epochs": 150,  # cloze training learns from ~1/4 of the positions per epoch: cheap, slow epochs
    "patience": 10,  # validation NDCG is noisy epoch to epoch; patience 4 stopped it at epoch 26
}


class BERT4RecEncoder(SessionEncoder):
    example_mode: ClassVar[ExampleMode] = "cloze"

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        dropout: float,
        *,
        n_layers: int = 2,
        n_heads: int = 2,
        mask_prob: float = 0.2,
        last_mask_prob: float = 0.5,
    ) -> None:
        super().__init__(n_items, dim)
        self.mask_token = n_items + 1
        self.max_len = max_len
        self.mask_prob = mask_prob
        self.last_mask_prob = last_mask_prob
        self.item = nn.Embedding(n_items + 2, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        self.blocks = transformer(dim, n_layers, n_heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(n_items))
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        width = inputs.shape[1]
        x = self.dropout(self.item(inputs) + self.position(torch.arange(width, device=inputs.device)))
        return self.norm(self.blocks(x, src_key_padding_mask=inputs == 0))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T + self.bias

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        return hidden @ self.item.weight[items + 1].T + self.bias[items]

    def final(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # keep the last max_len - 1 items, then a mask token in the slot after them
        batch, width = inputs.shape
        keep = lengths.clamp(max=self.max_len - 1)
        index = torch.arange(width, device=inputs.device).unsqueeze(0)
        shift = (lengths - keep).unsqueeze(1)
        gathered = inputs.gather(1, (index + shift).clamp(max=width - 1)).masked_fill(index >= keep.unsqueeze(1), 0)
        extended = torch.zeros(batch, min(width + 1, self.max_len), dtype=inputs.dtype, device=inputs.device)
        extended[:, : min(width, extended.shape[1])] = gathered[:, : extended.shape[1]]
        rows = torch.arange(batch, device=inputs.device)
        extended[rows, keep] = self.mask_token
        hidden = self(extended, keep + 1)
        return hidden[rows, keep]

    def prepare(self, batch: Batch, generator: torch.Generator) -> Batch:
        inputs = batch.inputs.clone()
        real = inputs > 0
        masked = (torch.rand(inputs.shape, generator=generator) < self.mask_prob) & real
        rows = torch.arange(inputs.shape[0])
        last = (batch.lengths - 1).clamp(min=0)
        mask_last = torch.rand(inputs.shape[0], generator=generator) < self.last_mask_prob
        masked[rows[mask_last], last[mask_last]] = True
        none = ~masked.any(1)
        masked[rows[none], last[none]] = True
        targets = torch.where(masked, batch.inputs, torch.full_like(inputs, IGNORE))
        inputs[masked] = self.mask_token
        return Batch(inputs, batch.lengths, targets)
