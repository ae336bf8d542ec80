"""SASRec (Kang & McAuley 2018) trained as RecBole does best: causal self-attention blocks over the last
``max_len`` items, learned positions, dropout, tied input/output item table, and softmax cross-entropy over
the full catalogue at every position (the same (prefix, next item) pairs as prefix augmentation)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from sr_models.neural.encoder import ExampleMode, SessionEncoder

# the transformers were still improving at 10 epochs: a higher cap and more patience for early stopping
DEFAULTS: dict = {
    "dim": 64,
    "dropout": 0.3,
    "max_len": 50,
    "batch_size": 256,
    "lr": 2e-3,
    "model": {"n_layers": 2, "n_heads": 2},
    "max_epochs": 40,
    "patience": 3,
}


def transformer(dim: int, n_layers: int, n_heads: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        dim, n_heads, dim_feedforward=dim * 2, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


class SASRecEncoder(SessionEncoder):
    example_mode: ClassVar[ExampleMode] = "sequence"

    def __init__(
        self, n_items: int, dim: int, max_len: int, dropout: float, *, n_layers: int = 2, n_heads: int = 2
    ) -> None:
        super().__init__(n_items, dim)
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        self.blocks = transformer(dim, n_layers, n_heads, dropout)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        width = inputs.shape[1]
        positions = torch.arange(width, device=inputs.device)
        x = self.dropout(self.item(inputs) + self.position(positions))
        causal = nn.Transformer.generate_square_subsequent_mask(width, device=inputs.device)
        return self.norm(self.blocks(x, mask=causal, is_causal=True))
