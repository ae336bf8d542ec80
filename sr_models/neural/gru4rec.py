"""GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzoglou 2018), trained as the official implementation does.

The training details follow the official PyTorch code (github.com/hidasib/GRU4Rec_PyTorch_Official,
read, not copied) because third-party re-implementations that dropped them lost much of GRU4Rec's accuracy
(Hidasi & Czapp, RecSys 2023). With the default ``training="session-parallel"``:

* **session-parallel mini-batches** (:func:`sr_models.neural.data.session_parallel_steps`): sessions ordered
  by their first event, ``batch_size`` of them side by side; each step feeds every slot's next event and
  updates the weights; a finished session's slot takes the next session and its hidden state is reset to
  zero; no padding; the batch shrinks once no session is left. The hidden state is detached after every step
  (no back-propagation through time), and the session order is the same every epoch (no shuffling);
* **losses over shared negatives** (:mod:`sr_models.neural.losses`): each step scores its targets against
  the targets of the other slots plus ``n_negatives`` items drawn from popularity^``sample_alpha``
  (one draw shared by the step): ``loss="sampled"`` is the official cross-entropy over those candidates
  (with the official logQ correction weighted by ``logq``: log popularity for the in-batch targets,
  ``sample_alpha``·log popularity for the extra samples), ``loss="bpr-max"`` is BPR-max with its
  score regularisation ``bpreg`` after a final activation (``final_act``: linear, ``elu-<a>``, tanh,
  relu, ``leaky-<a>``); ``loss="ce"`` is the full-catalogue cross-entropy (not in the official code);
  the loss is summed over the step's rows and divided by ``batch_size``;
* **constrained (tied) embeddings** (``constrained_embedding=True``): one item table is the GRU's input
  embedding and the output table; the separate-table option has its own input embedding; the output bias
  is separate either way;
* **dropout** on the input embedding (``embed_dropout``) and on every GRU layer's output, which is also the
  hidden state carried to the next step (``dropout``);
* **Adagrad with momentum** (``optimizer="adagrad"``, :class:`sr_models.neural.optim.AdagradM`): sparse
  updates of the item tables (only the rows a step touched, momentum included), no gradient clipping;
  Adam stays available;
* **initialisation** (``init="glorot"``): uniform ±sqrt(6 / (fan_in + fan_out)) per item table and per GRU
  gate block, zero biases (the official compatibility-mode scheme).

Not kept: the official one-hot input option (``embedding=0`` without constrained embedding, where the first
GRU layer reads item ids directly) and separate input embeddings of another size than the layer; its fixed
epoch count (we stop early on validation NDCG@20 and refit for the validated epochs); the hidden
activations other than tanh of the Theano original; its negative-sample cache (we draw the same
distribution from a seeded generator, 256 steps at a time); its item set is the training items only, ours
the whole catalogue (items never seen in training are never sampled as negatives, as there, but are ranked
at inference). One-item sessions are dropped (they have no target). Inference runs the GRU over the prompt
from a zero state (the official evaluation), over its last ``max_len`` items, and ranks by the raw scores
(the final activations are monotonic). Adam and ``loss="ce"`` over the steps are ours, not official.

The defaults (``DEFAULTS``: BPR-max, linear final activation, ``bpreg`` 2, tied table, embedding dropout
0.5, dropout 0.1, Adagrad lr 0.05 with momentum 0.3, batch 64, dim 128, 2048 negatives with alpha 0.5) were
chosen on the validation fold only; docs/sr_models.md lists every run tried.

``training="batches"`` is the earlier scheme (kept so its artefacts load and refit, and used by
gru4rec-semf): length-bucketed padded batches of whole sessions with a target at every position,
back-propagation through the session, Adam, clipping, full-catalogue cross-entropy or sampled negatives
with the earlier logQ correction.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sr_models.neural.encoder import ExampleMode, SessionEncoder

# the settings of the earlier scheme (padded batches, BPTT, Adam, full-catalogue CE)
EARLIER: dict = {
    "dim": 128,
    "dropout": 0.3,
    "max_len": 50,
    "batch_size": 128,
    "lr": 2e-3,
    "model": {},
    "max_epochs": 10,
    "patience": 2,
    "training": "batches",
    "optimizer": "adam",
    "loss": "ce",
    "clip_norm": 5.0,
}
# the encoder settings of every GRU4Rec artefact trained before the official scheme existed: a record holds
# only the entries that differ from these, and an entry missing from a record means this value
LEGACY_MODEL: dict = {"constrained_embedding": False, "init": "normal", "embed_dropout": 0.0}
# the official scheme with settings chosen on the validation fold only (docs/sr_models.md, "GRU4Rec: the
# official training scheme"); any can be overridden. SemSR-F (``fusion``) fuses whole prefixes (attention
# over the session's title vectors), which the step-wise official scheme does not feed: gru4rec-semf keeps
# the earlier scheme and encoder.
DEFAULTS: dict = {
    "dim": 128,
    "dropout": 0.1,  # on each GRU layer's output / carried state
    "max_len": 50,
    "batch_size": 64,
    "lr": 0.05,
    "model": {"constrained_embedding": True, "init": "glorot", "embed_dropout": 0.5},
    "max_epochs": 25,
    "patience": 3,
    "training": "session-parallel",
    "optimizer": "adagrad",
    "momentum": 0.3,
    "clip_norm": 0.0,
    "loss": "bpr-max",
    "final_act": "linear",
    "bpreg": 2.0,
    "n_negatives": 2048,
    "sample_alpha": 0.5,
    "legacy_model": LEGACY_MODEL,
    "fusion": EARLIER,
}


def _glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -bound, bound)


class GRU4RecEncoder(SessionEncoder):
    example_mode: ClassVar[ExampleMode] = "sequence"
    steps: ClassVar[bool] = True  # can be trained with session-parallel steps (:meth:`step`)

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        dropout: float,
        *,
        n_layers: int = 1,
        embed_dropout: float = 0.0,
        constrained_embedding: bool = False,
        init: str = "normal",
    ) -> None:
        super().__init__(n_items, dim)
        if init not in ("normal", "glorot"):
            raise ValueError(f"init must be 'normal' or 'glorot', not {init!r}")
        self.constrained = constrained_embedding
        if not constrained_embedding:
            self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, num_layers=n_layers, batch_first=True)
        self.output = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.hidden_dropout = nn.Dropout(dropout)
        self.n_layers = n_layers
        tables = ([] if constrained_embedding else [self.item]) + [self.output]  # the earlier init order
        with torch.no_grad():
            for table in tables:
                if init == "glorot":
                    _glorot_(table.weight, n_items, dim)
                    table.weight[0] = 0.0  # padding row
                else:
                    nn.init.normal_(table.weight, std=dim**-0.5)
            if init == "glorot":
                for name, weight in self.gru.named_parameters():
                    if name.startswith("bias"):
                        nn.init.zeros_(weight)
                    else:  # (3 * dim, fan_in): one block per gate
                        for block in weight.chunk(3, 0):
                            _glorot_(block, block.shape[1], block.shape[0])

    def input_embedding(self) -> nn.Embedding:
        return self.output if self.constrained else self.item

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # right padding and a causal GRU: real positions never see the padding after them
        hidden, _ = self.gru(self.embed_dropout(self.input_embedding()(inputs)))
        return self.hidden_dropout(hidden)

    def item_table(self) -> torch.Tensor:
        return self.output.weight[1 : self.n_items + 1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T + self.bias

    # ------------------------------------------------------------------ session-parallel training
    def initial_state(self, n: int, device: torch.device) -> list[torch.Tensor]:
        return [torch.zeros(n, self.dim, device=device) for _ in range(self.n_layers)]

    def step(
        self, tokens: torch.Tensor, state: list[torch.Tensor], *, sparse: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One event per slot: (n,) tokens and the per-layer (n, d) states -> (n, d) output and new states.

        Dropout acts on the embedding and on each layer's output, which is also the state carried on (the
        official scheme); ``sparse`` makes the item-table gradients sparse (for :class:`AdagradM`)."""
        x = self.embed_dropout(F.embedding(tokens, self.input_embedding().weight, padding_idx=0, sparse=sparse))
        new_state = []
        for layer in range(self.n_layers):
            x = torch.gru_cell(
                x,
                state[layer],
                getattr(self.gru, f"weight_ih_l{layer}"),
                getattr(self.gru, f"weight_hh_l{layer}"),
                getattr(self.gru, f"bias_ih_l{layer}"),
                getattr(self.gru, f"bias_hh_l{layer}"),
            )
            x = self.hidden_dropout(x)
            new_state.append(x)
        return x, new_state

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        """(n, d) outputs against the candidate item indices (c,): (n, c) scores with the output bias."""
        table = F.embedding(items + 1, self.output.weight, sparse=sparse)
        return hidden @ table.T + self.bias[items]
