"""MSGAT: session graph attention within the session plus a cross-session channel.

The SemSR paper's second base model combines (a) graph attention over the current session's item graph
and (b) information from *other* sessions. Here:

* **within-session**: attention between positions restricted to the session graph's edges, with one
  learned bias per edge type (self, in, out, both directions), as in GCE-GNN's session-level layer;
* **cross-session**: a global item graph built from the training sessions (items co-occurring within
  ``window`` steps, the ``n_neighbours`` most frequent kept per item, weights = counts); each session item
  aggregates its neighbours' embeddings with session-aware attention (neighbour x session mean x weight),
  as in GCE-GNN's global level;
* the two are summed (the global part with dropout), position embeddings are added, and a NISER-style
  normalised soft-attention readout with a scaled cosine scores the catalogue.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sessiondata.schema import Session
from sr_models.neural.encoder import SessionEncoder
from sr_models.neural.graph import session_adjacency
from sr_models.neural.srgnn import AttentionReadout, reverse_positions

DEFAULTS: dict = {"dim": 100, "dropout": 0.1, "max_len": 20, "batch_size": 256, "lr": 2e-3, "model": {}}


def global_graph(
    sessions: Sequence[Session], n_items: int, window: int, n_neighbours: int
) -> tuple[np.ndarray, np.ndarray]:
    """(n_items + 1, K) neighbour tokens and log-count weights of the cross-session item graph (0 = none)."""
    counts: list[Counter[int]] = [Counter() for _ in range(n_items + 1)]
    for session in sessions:
        toks = [item + 1 for item in session.items]
        for i, a in enumerate(toks):
            for b in toks[i + 1 : i + 1 + window]:
                if a != b:
                    counts[a][b] += 1
                    counts[b][a] += 1
    neighbours = np.zeros((n_items + 1, n_neighbours), dtype=np.int64)
    weights = np.zeros((n_items + 1, n_neighbours), dtype=np.float32)
    for token, counter in enumerate(counts):
        for slot, (other, count) in enumerate(counter.most_common(n_neighbours)):
            neighbours[token, slot] = other
            weights[token, slot] = math.log1p(count)
    return neighbours, weights


class SessionGraphAttention(nn.Module):
    """One GAT layer over positions, limited to session-graph edges, with per-edge-type biases."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.edge_types = nn.Parameter(torch.zeros(4, dim))  # self, in, out, both
        nn.init.normal_(self.edge_types, std=dim**-0.5)
        self.value = nn.Linear(dim, dim, bias=False)

    def forward(self, hidden: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        _, _, edges = session_adjacency(inputs)
        valid = inputs > 0
        same = (inputs.unsqueeze(2) == inputs.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)
        out_e, in_e = edges, edges.transpose(1, 2)
        kind = torch.full(edges.shape, -1, dtype=torch.long, device=inputs.device)
        kind[in_e] = 1
        kind[out_e] = 2
        kind[in_e & out_e] = 3
        kind[same] = 0
        pair = hidden.unsqueeze(2) * hidden.unsqueeze(1)  # (B, L, L, d)
        scores = (pair * self.edge_types[kind.clamp(min=0)]).sum(-1)
        scores = F.leaky_relu(scores, 0.2).masked_fill(kind < 0, float("-inf"))
        scores = scores.masked_fill(~valid.unsqueeze(-1), 0.0)  # padded rows: harmless uniform weights
        return scores.softmax(-1) @ self.value(hidden)


class MSGATEncoder(SessionEncoder):
    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        dropout: float,
        *,
        n_neighbours: int = 12,
        window: int = 3,
        global_dropout: float = 0.5,
        scale: float = 16.0,
    ) -> None:
        super().__init__(n_items, dim)
        self.scale = scale
        self.window = window
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.local = SessionGraphAttention(dim)
        self.global_query = nn.Linear(dim, dim, bias=False)
        self.global_out = nn.Linear(2 * dim, dim)
        self.position = nn.Embedding(max_len, dim)
        self.readout = AttentionReadout(dim)
        self.dropout = nn.Dropout(dropout)
        self.global_dropout = nn.Dropout(global_dropout)
        self.register_buffer("neighbours", torch.zeros(n_items + 1, n_neighbours, dtype=torch.long))
        self.register_buffer("neighbour_weights", torch.zeros(n_items + 1, n_neighbours))
        bound = 1.0 / math.sqrt(dim)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def prepare_training(self, sessions: Sequence[Session]) -> None:
        """Build the cross-session item graph from the training sessions (kept in buffers)."""
        neighbours, weights = global_graph(sessions, self.n_items, self.window, self.neighbours.shape[1])
        self.neighbours.copy_(torch.from_numpy(neighbours))
        self.neighbour_weights.copy_(torch.from_numpy(weights))

    def _cross_session(self, emb: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        valid = (inputs > 0).unsqueeze(-1).float()
        session_mean = (emb * valid).sum(1) / valid.sum(1).clamp(min=1.0)  # (B, d)
        neighbours = self.neighbours[inputs]  # (B, L, K)
        neighbour_emb = self.dropout(F.normalize(self.item(neighbours), dim=-1))  # (B, L, K, d)
        query = self.global_query(session_mean)[:, None, None, :]
        scores = (neighbour_emb * query).sum(-1) * self.neighbour_weights[inputs]
        scores = scores.masked_fill(neighbours == 0, float("-inf"))
        has_any = (neighbours > 0).any(-1, keepdim=True)
        weights = torch.where(has_any, scores, torch.zeros_like(scores)).softmax(-1) * has_any
        aggregated = (weights.unsqueeze(-1) * neighbour_emb).sum(2)
        return self.global_out(torch.cat([emb, aggregated], dim=-1))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.dropout(F.normalize(self.item(inputs), dim=-1))
        hidden = self.local(emb, inputs) + self.global_dropout(self._cross_session(emb, inputs))
        rows = torch.arange(inputs.shape[0], device=inputs.device)
        last = hidden[rows, (lengths - 1).clamp(min=0)]
        positioned = hidden + self.position(reverse_positions(lengths, inputs.shape[1]))
        return self.readout(positioned, last, inputs > 0)

    def item_table(self) -> torch.Tensor:
        return F.normalize(self.item.weight[1 : self.n_items + 1], dim=-1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(hidden, dim=-1) @ self.item_table().T

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        return self.scale * F.normalize(hidden, dim=-1) @ F.normalize(self.item.weight[items + 1], dim=-1).T
