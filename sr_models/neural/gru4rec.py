"""GRU4Rec (Hidasi et al. 2016; Hidasi & Czapp 2023 "The effect of third party implementations").

Kept from the official implementation: a GRU over the session's items with the hidden state reset at
every session start, dropout on the input embedding and on the hidden state, a separate output item table
with a bias, and a loss over the whole catalogue (cross-entropy) or over sampled negatives with the logQ
correction (``loss="sampled"``, popularity^``sample_alpha`` sampling). Sessions are processed in time order
with a target at every position, which is what session-parallel mini-batches compute.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from sr_models.neural.encoder import ExampleMode, SessionEncoder

# defaults on 2 CPU cores (validation-chosen where docs/sr_models.md says so); any can be overridden
DEFAULTS: dict = {"dim": 128, "dropout": 0.3, "max_len": 50, "batch_size": 128, "lr": 2e-3, "model": {}}


class GRU4RecEncoder(SessionEncoder):
    example_mode: ClassVar[ExampleMode] = "sequence"

    def __init__(
        self, n_items: int, dim: int, max_len: int, dropout: float, *, n_layers: int = 1, embed_dropout: float = 0.0
    ) -> None:
        super().__init__(n_items, dim)
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, num_layers=n_layers, batch_first=True)
        self.output = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.hidden_dropout = nn.Dropout(dropout)
        nn.init.normal_(self.item.weight, std=dim**-0.5)
        nn.init.normal_(self.output.weight, std=dim**-0.5)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # right padding and a causal GRU: real positions never see the padding after them
        hidden, _ = self.gru(self.embed_dropout(self.item(inputs)))
        return self.hidden_dropout(hidden)

    def item_table(self) -> torch.Tensor:
        return self.output.weight[1 : self.n_items + 1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T + self.bias
