"""SR-GNN (Wu et al. 2019) and NISER+ (Gupta et al. 2019), one encoder with NISER's switches.

SR-GNN: a gated graph neural network over the session graph, then a soft-attention readout combining
the last item's state with an attention-weighted sum of all states (``W3 [s_last; s_global]``), scored by
dot product against the item table. NISER+ adds: L2-normalised item embeddings (against popularity bias),
an L2-normalised session vector and a scale factor on the cosine scores, learned position embeddings
(distance from the session's end) added before the readout, and dropout on the embeddings. Trained on
prefix-augmented sessions with softmax cross-entropy over the full catalogue.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.graph import session_adjacency

SRGNN_DEFAULTS: dict = {
    "dim": 100,
    "dropout": 0.0,
    "max_len": 20,
    "batch_size": 256,
    "lr": 2e-3,
    "weight_decay": 1e-5,
    "model": {},
}
NISER_DEFAULTS: dict = {
    "dim": 100,
    "dropout": 0.1,
    "max_len": 20,
    "batch_size": 256,
    "lr": 2e-3,
    "model": {"niser": True, "positions": True, "scale": 16.0},
}


class GatedGraphCell(nn.Module):
    """SR-GNN's GGNN step: incoming and outgoing messages, then a GRU-style update."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.edge_in = nn.Linear(dim, dim)
        self.edge_out = nn.Linear(dim, dim)
        self.w_ih = nn.Linear(2 * dim, 3 * dim)
        self.w_hh = nn.Linear(dim, 3 * dim)

    def forward(self, a_in: torch.Tensor, a_out: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        messages = torch.cat([a_in @ self.edge_in(hidden), a_out @ self.edge_out(hidden)], dim=-1)
        i_r, i_z, i_n = self.w_ih(messages).chunk(3, -1)
        h_r, h_z, h_n = self.w_hh(hidden).chunk(3, -1)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return (1 - update) * hidden + update * candidate


class AttentionReadout(nn.Module):
    """``s = W3 [h_last; sum_i a_i h_i]`` with ``a_i = q^T sigmoid(W1 h_last + W2 h_i)`` (SR-GNN)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, dim)
        self.w2 = nn.Linear(dim, dim, bias=False)
        self.q = nn.Linear(dim, 1, bias=False)
        self.w3 = nn.Linear(2 * dim, dim)

    def forward(self, hidden: torch.Tensor, last: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = self.q(torch.sigmoid(self.w1(last).unsqueeze(1) + self.w2(hidden)))  # (B, L, 1)
        pooled = (weights * hidden * valid.unsqueeze(-1)).sum(1)
        return self.w3(torch.cat([last, pooled], dim=-1))


def reverse_positions(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Distance from the session's last item (0 = last), clamped at 0 on padding."""
    index = torch.arange(width, device=lengths.device).unsqueeze(0)
    return (lengths.unsqueeze(1) - 1 - index).clamp(min=0)


class SRGNNEncoder(SessionEncoder):
    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        dropout: float,
        *,
        steps: int = 1,
        niser: bool = False,
        scale: float = 16.0,
        positions: bool = False,
    ) -> None:
        super().__init__(n_items, dim)
        self.niser = niser
        self.scale = scale
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.cells = nn.ModuleList(GatedGraphCell(dim) for _ in range(steps))
        self.position = nn.Embedding(max_len, dim) if positions else None
        self.readout = AttentionReadout(dim)
        self.dropout = nn.Dropout(dropout)
        bound = 1.0 / math.sqrt(dim)
        for parameter in self.parameters():  # SR-GNN's uniform initialisation
            nn.init.uniform_(parameter, -bound, bound)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        emb = self.item(inputs)
        return F.normalize(emb, dim=-1) if self.niser else emb

    def propagate(self, inputs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        a_in, a_out, _ = session_adjacency(inputs)
        for cell in self.cells:
            hidden = cell(a_in, a_out, hidden)
        return hidden

    def read(self, inputs: torch.Tensor, lengths: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(inputs.shape[0], device=inputs.device)
        last = hidden[rows, (lengths - 1).clamp(min=0)]
        if self.position is not None:
            hidden = hidden + self.position(reverse_positions(lengths, inputs.shape[1]))
        return self.readout(hidden, last, inputs > 0)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.propagate(inputs, self.dropout(self.embed(inputs)))
        return self.read(inputs, lengths, hidden)

    def item_table(self) -> torch.Tensor:
        table = self.item.weight[1 : self.n_items + 1]
        return F.normalize(table, dim=-1) if self.niser else table

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.niser:
            return self.scale * F.normalize(hidden, dim=-1) @ self.item_table().T
        return hidden @ self.item_table().T

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        table = self.item.weight[items + 1]
        if self.niser:
            return self.scale * F.normalize(hidden, dim=-1) @ F.normalize(table, dim=-1).T
        return hidden @ table.T
