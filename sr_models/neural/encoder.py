"""What every torch session encoder provides, so one trainer and one fusion head serve all of them.

An encoder maps right-padded token sequences (B, L) to session representations and owns the output item
table it is scored against:

* ``example_mode`` says which training examples it learns from: ``"prefix"`` (one target per prefix,
  SR-GNN/NISER+/MSGAT), ``"sequence"`` (a target at every position of a causal model, GRU4Rec/SASRec) or
  ``"cloze"`` (masked items, BERT4Rec);
* ``forward`` returns (B, d) in prefix mode and (B, L, d) otherwise;
* ``final`` returns (B, d): the representation that scores the item after the whole input (inference);
* ``logits`` turns representations into scores over the full catalogue (dot product or scaled cosine);
* ``candidate_scores`` gives the same scores for a subset of items only (equal to ``logits(h)[:, items]``),
  what sampled softmax trains with (:mod:`sr_models.neural.losses`); an encoder that overrides ``logits``
  overrides it too, and one that does not cannot train with sampled negatives (one clear error);
* ``prepare_training`` is the hook for what an architecture learns from the sessions outside gradient
  descent (MSGAT's global item graph), so the fit loop never special-cases a model type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import nn

from sessiondata.schema import Session
from sr_models.neural.data import Batch

ExampleMode = Literal["prefix", "sequence", "cloze"]


def gather_last(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, L, d) -> (B, d): the state at each sequence's last real position."""
    index = (lengths - 1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


class SessionEncoder(nn.Module):
    """Base class of the torch encoders; subclasses implement ``forward`` and usually ``item_table``."""

    example_mode: ClassVar[ExampleMode] = "prefix"

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.dim = dim

    def item_table(self) -> torch.Tensor:
        """(n_items, d) output representations of the catalogue (no padding row)."""
        return self.item.weight[1 : self.n_items + 1]  # type: ignore[attr-defined,index]

    def input_embedding(self) -> nn.Embedding:
        """The item embedding table SemSR-I initialises from text embeddings (row 0 = padding)."""
        return self.item  # type: ignore[attr-defined,return-value]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T

    def candidate_scores(self, hidden: torch.Tensor, items: torch.Tensor, *, sparse: bool = False) -> torch.Tensor:
        """(n, d) representations against candidate item indices (c,): the (n, c) scores ``logits`` gives
        those items, computed without scoring the whole catalogue. ``sparse`` asks for sparse item-table
        gradients where the encoder supports them (GRU4Rec's official training)."""
        if type(self).logits is not SessionEncoder.logits:
            raise NotImplementedError(
                f"{type(self).__name__} scores items with its own logits and defines no candidate_scores: "
                "it cannot train with sampled negatives (use loss='ce')"
            )
        return hidden @ self.item_table()[items].T

    def final(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self(inputs, lengths)
        return gather_last(hidden, lengths) if self.example_mode == "sequence" else hidden

    def prepare_training(self, sessions: Sequence[Session]) -> None:
        """Learn whatever the architecture takes from the training sessions before the first batch (MSGAT
        builds its cross-session item graph here); nothing by default. Called before training only: the
        result must live in buffers, so a loaded artefact has it without the sessions."""

    def prepare(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Turn a training batch into model inputs (BERT4Rec masks items here); identity by default."""
        return batch


def scores_candidates(encoder: SessionEncoder) -> bool:
    """Whether ``encoder`` can score a subset of the catalogue (:meth:`SessionEncoder.candidate_scores`),
    what sampled softmax needs: its own ``candidate_scores``, or the base class's scoring throughout."""
    kind = type(encoder)
    return kind.candidate_scores is not SessionEncoder.candidate_scores or kind.logits is SessionEncoder.logits
