"""MiniLM cut in two for cheap fine-tuning: a frozen trunk run once per title, a trainable top run per step.

Fine-tuning all six layers costs a full forward and backward pass of both titles of every pair; on a shared
2-core machine that is tens of seconds per batch. With the token embeddings and the bottom ``6 - k``
layers frozen, their output for each catalogue title never changes, so it is computed once (``trunk``) and
each step runs only the top ``k`` layers, mean pooling and normalisation (``top``) on the distinct items of
the batch. The same split gives the catalogue's vectors at the end of an epoch for the price of the top
layers only. The result is an ordinary sentence-transformers model (the frozen weights are the bundled
ones), so encoding a title with ``model.encode`` gives the same vector (checked in the tests to 1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Trunk:
    """The frozen layers' output of n texts, ragged: text i is ``states[offsets[i]:offsets[i + 1]]``."""

    states: Any  # (total tokens, d) float32 tensor
    offsets: Any  # (n + 1,) int64 tensor

    def __len__(self) -> int:
        return len(self.offsets) - 1


class SplitEncoder:
    """``model`` (the bundled MiniLM, loaded) with all but its top ``train_layers`` layers frozen."""

    def __init__(self, model: Any, train_layers: int) -> None:
        self.model = model
        self.bert = model[0].auto_model
        layers = self.bert.encoder.layer
        if not 1 <= train_layers <= len(layers):
            from sessiondata.errors import ConfigError

            raise ConfigError("finetune.train_layers", train_layers, f"must be in 1..{len(layers)}")
        self.cut = len(layers) - train_layers
        for parameter in model.parameters():
            parameter.requires_grad = False
        for layer in layers[self.cut :]:
            for parameter in layer.parameters():
                parameter.requires_grad = True

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def trainable(self) -> list[Any]:
        return [parameter for parameter in self.model.parameters() if parameter.requires_grad]

    def _mask(self, hidden: Any, attention: Any) -> Any:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=attention)

    def trunk(self, texts: Sequence[str], batch_size: int = 128) -> Trunk:
        """The frozen layers' output for each text (truncated to the model's ``max_seq_length``), computed
        in batches of similar length (little padding) and kept ragged: no title pays for the longest."""
        import torch

        self.model.eval()
        lengths = self.model.preprocess(list(texts))["attention_mask"].sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        rows: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                chosen = order[start : start + batch_size].tolist()
                features = self.model.preprocess([texts[i] for i in chosen])
                ids = features["input_ids"].to(self.device)
                attention = features["attention_mask"].to(self.device)
                hidden = self.bert.embeddings(input_ids=ids, token_type_ids=features.get("token_type_ids"))
                mask = self._mask(hidden, attention)
                for layer in self.bert.encoder.layer[: self.cut]:
                    hidden = layer(hidden, mask)
                hidden = hidden.float().cpu()
                for position, row in enumerate(chosen):
                    rows[row] = hidden[position, : int(lengths[row])]
        offsets = torch.zeros(len(texts) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, dim=0)
        return Trunk(torch.cat(rows), offsets)

    def batch(self, trunk: Trunk, rows: Sequence[int], limit: int | None = None) -> tuple[Any, Any]:
        """Padded (states, attention) of trunk ``rows``, each cut to its first ``limit`` tokens if given."""
        import torch

        spans = [(int(trunk.offsets[r]), int(trunk.offsets[r + 1])) for r in rows]
        sizes = [min(end - begin, limit or end - begin) for begin, end in spans]
        states = torch.zeros(len(rows), max(sizes), trunk.states.shape[1])
        attention = torch.zeros(len(rows), max(sizes), dtype=torch.int64)
        for position, ((begin, _), size) in enumerate(zip(spans, sizes, strict=True)):
            states[position, :size] = trunk.states[begin : begin + size]
            attention[position, :size] = 1
        return states, attention

    def top(self, states: Any, attention: Any) -> Any:
        """Unit sentence vectors (b, d) from trunk ``states``/``attention`` rows (on any device)."""
        import torch

        width = int(attention.sum(dim=1).max())
        hidden = states[:, :width].to(self.device)
        attention = attention[:, :width].to(self.device)
        mask = self._mask(hidden, attention)
        for layer in self.bert.encoder.layer[self.cut :]:
            hidden = layer(hidden, mask)
        weights = attention.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)

    def encode_all(self, trunk: Trunk, batch_size: int = 256) -> np.ndarray:
        """Every row's vector in eval mode (the catalogue's vectors after an epoch), float32 numpy;
        rows go in batches of similar length."""
        import torch

        self.model.eval()
        order = np.argsort(np.diff(trunk.offsets.numpy()), kind="stable")
        out = np.zeros((len(order), trunk.states.shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self.top(*self.batch(trunk, rows.tolist())).float().cpu().numpy()
        return out


def cached_trunk(encoder: SplitEncoder, texts: Sequence[str], path: Path | None, *, batch_size: int = 128) -> Trunk:
    """:meth:`SplitEncoder.trunk` of ``texts``, saved at ``path`` (safetensors) and loaded from it on reuse.

    The trunk is the frozen base model, so one file serves both folds and every rerun; the caller keys
    ``path`` by the texts, the base weights, the cut and the truncation (:func:`trunk_path`).
    """
    from safetensors.torch import load_file, save_file

    if path is not None and path.exists():
        saved = load_file(path)
        if saved["offsets"].shape[0] == len(texts) + 1:
            return Trunk(saved["states"], saved["offsets"])
    trunk = encoder.trunk(texts, batch_size=batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        save_file({"states": trunk.states.contiguous(), "offsets": trunk.offsets.contiguous()}, partial)
        partial.replace(path)
    return trunk


def trunk_path(root: Path, texts_digest: str, encoder: SplitEncoder, max_seq_length: int) -> Path:
    from embeddings.minilm import MODEL_SHA256

    return root / "trunk" / f"{MODEL_SHA256[:8]}-{texts_digest[:16]}-cut{encoder.cut}-seq{max_seq_length}.safetensors"
