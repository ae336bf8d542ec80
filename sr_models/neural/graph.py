"""Session graphs for the GNN models, built batched on the padded token tensor (no Python loops).

SR-GNN's graph has one node per *distinct* item and an edge u -> v when v follows u somewhere in the
session; messages are averaged over distinct in- and out-neighbours. Here nodes stay at sequence
positions (so padding and batching are trivial) and positions holding the same item share edges: with
``same[i, j]`` = "positions i and j hold one item" and ``step`` the consecutive-position matrix,
``same @ step @ same > 0`` marks item-level edges, and dividing each column by the item's multiplicity
averages over distinct neighbours. Positions with one item therefore get identical states, exactly the
node states of SR-GNN's graph, which its readout then reads at every position.
"""

from __future__ import annotations

import torch


def session_adjacency(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised (B, L, L) in- and out-adjacency between positions, plus the raw item-level edge mask."""
    valid = inputs > 0
    same = ((inputs.unsqueeze(2) == inputs.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)).float()
    step = torch.diag_embed((valid[:, 1:] & valid[:, :-1]).float(), offset=1)
    edges = (same @ step @ same) > 0  # item of i -> item of j
    multiplicity = same.sum(-1).clamp(min=1.0)  # (B, L)
    out_w = edges.float() / multiplicity.unsqueeze(1)
    in_w = edges.transpose(1, 2).float() / multiplicity.unsqueeze(1)
    a_out = out_w / out_w.sum(-1, keepdim=True).clamp(min=1e-9)
    a_in = in_w / in_w.sum(-1, keepdim=True).clamp(min=1e-9)
    return a_in, a_out, edges
