"""Contrastive fine-tuning of the bundled MiniLM on title pairs from a fold's training sessions.

The frozen-vector adapter (:mod:`embeddings.adapter`) only bends the pretrained space linearly; this trains
the sentence model itself (beeFormer / the contrastive stage of LLMEmb): titles of items shoppers put in
one session are pulled together with a symmetric InfoNCE loss over in-batch negatives (the
MultipleNegativesRanking loss of sentence-transformers, both directions). Pairs come from
:func:`embeddings.adapter.session_pairs` over the *training sessions only* (each item and the next, and
items up to ``window`` steps apart: co-session pairs); a seeded sample of ``max_pairs`` is drawn afresh each
epoch, so the cost is fixed whatever the dataset's size. In-batch "negatives" that are the same item as the
positive (or the anchor) are masked, so a popular item in two pairs of a batch is not pushed from itself.

Plain torch over the pinned sentence-transformers model, cut in two by
:class:`~embeddings.split_encoder.SplitEncoder`: the token embeddings and the bottom layers stay frozen and
run once per title; only the top ``train_layers`` layers (then mean pooling and normalisation, as the model
itself does) run per step, on the distinct items of each batch. AdamW with linear warm-up and decay over
``max_epochs``. CPU by default, CUDA when asked for and present. Every epoch ends in a checkpoint under
``run_dir`` (weights and the optimiser's moments as safetensors, never pickle; ``config.json`` last, so a
torn write is not a checkpoint, and each checkpoint loads as a model), and a rerun resumes after the last
complete one. Randomness is re-seeded from (seed, epoch) at each epoch start, so a resumed run and a
straight run give the same weights, and two runs with one seed give the same vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embeddings.adapter import session_pairs
from embeddings.minilm import MODEL_SHA256
from embeddings.split_encoder import SplitEncoder, Trunk
from sessiondata.errors import ConfigError
from sessiondata.files import file_sha256

WEIGHTS_FILE = "model.safetensors"
OPTIMISER_FILE = "optimiser.safetensors"
STATE_FILE = "config.json"  # the same record as a published model: every checkpoint loads as one


class FinetuneConfig(BaseModel):
    """How the sentence model is fine-tuned (the epochs actually used are chosen on validation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_epochs: int = Field(2, ge=1, le=20, description="Epochs tried on the validation fold (best one kept).")
    train_layers: int = Field(1, ge=1, le=6, description="Top transformer layers trained (the rest stay frozen).")
    window: int = Field(2, ge=1, le=10, description="Pairs of session items at most this many steps apart.")
    max_pairs: int = Field(8192, ge=0, description="Pairs drawn per epoch (seeded; 0 = every pair).")
    batch_size: int = Field(64, ge=2, le=4096, description="Pairs per step: each batch is its own negatives.")
    max_seq_length: int = Field(128, ge=8, le=256, description="Title truncation in word pieces (as the raw model).")
    train_seq_length: int = Field(
        32, ge=8, le=256, description="Word pieces the trained layers see per title in a step."
    )
    lr: float = Field(2e-4, gt=0.0, le=1e-2, description="AdamW peak learning rate.")
    warmup: float = Field(0.1, ge=0.0, lt=1.0, description="Share of the steps with a linear warm-up.")
    temperature: float = Field(0.05, gt=0.0, le=1.0, description="InfoNCE temperature (1/scale).")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0)
    seed: int = 0

    @property
    def id(self) -> str:
        """Short hash of every setting but ``max_epochs`` (more epochs extend the same run)."""
        text = json.dumps(self.model_dump(exclude={"max_epochs"}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def training_pairs(sessions: Sequence[Sequence[int]], config: FinetuneConfig) -> np.ndarray:
    """Every (earlier, later) item pair of ``sessions`` at most ``config.window`` steps apart.

    Callers pass the fold's training sessions (``TrainData.sessions``); nothing else reaches the model.
    """
    return session_pairs(sessions, config.window)


def epoch_pairs(pairs: np.ndarray, config: FinetuneConfig, epoch: int) -> np.ndarray:
    """The pairs of ``epoch`` in training order: a seeded draw of ``max_pairs`` (all when 0 or fewer)."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(pairs))
    if config.max_pairs:
        order = order[: config.max_pairs]
    return pairs[order]


def resolve_device(device: str) -> str:
    """'cpu', or 'cuda' when asked for ('cuda' or 'auto') and present; 'cuda' without one is an error."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError("device", device, "must be 'auto', 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", device, "CUDA is not available on this machine")
    return "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"


def _loss(encoder: SplitEncoder, trunk: Trunk, ids: np.ndarray, config: FinetuneConfig) -> Any:
    """Symmetric InfoNCE over in-batch negatives for item pairs ``ids`` (b, 2), same-item false negatives
    masked; each distinct item of the batch goes through the top layers once."""
    import torch

    items, inverse = np.unique(ids, return_inverse=True)
    vectors = encoder.top(*encoder.batch(trunk, items.tolist(), config.train_seq_length))
    device = vectors.device
    inverse = torch.as_tensor(inverse.reshape(ids.shape), device=device)
    a, b = vectors[inverse[:, 0]], vectors[inverse[:, 1]]
    logits = a @ b.T / config.temperature
    left_ids, right_ids = inverse[:, 0], inverse[:, 1]
    eye = torch.eye(len(ids), dtype=torch.bool, device=device)
    # row i (anchor left i): column j is no negative when right j is item right i or item left i
    false_rows = ((right_ids[None, :] == right_ids[:, None]) | (right_ids[None, :] == left_ids[:, None])) & ~eye
    false_cols = ((left_ids[None, :] == left_ids[:, None]) | (left_ids[None, :] == right_ids[:, None])) & ~eye
    labels = torch.arange(len(ids), device=device)
    forward = torch.nn.functional.cross_entropy(logits.masked_fill(false_rows, -1e4), labels)
    backward = torch.nn.functional.cross_entropy(logits.T.masked_fill(false_cols, -1e4), labels)
    return (forward + backward) / 2


def _schedule(step: int, total: int, warmup: float) -> float:
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


def _optimiser_tensors(optimiser: Any) -> dict[str, Any]:
    """AdamW's per-parameter moments as flat named tensors (safetensors holds tensors, not pickles)."""
    flat = {}
    for index, state in optimiser.state_dict()["state"].items():
        for name, value in state.items():
            flat[f"{index}.{name}"] = value.detach().cpu().contiguous().reshape(value.shape or (1,))
    return flat


def _restore_optimiser(optimiser: Any, flat: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value.reshape(()) if name == "step" else value
    optimiser.load_state_dict({"state": state, "param_groups": optimiser.state_dict()["param_groups"]})


def last_checkpoint(run_dir: Path) -> tuple[int, dict[str, Any]] | None:
    """(epoch, state) of the last complete checkpoint in ``run_dir`` (epochs count from 1)."""
    found = None
    for state_path in sorted(run_dir.glob("epoch-*/" + STATE_FILE)):
        state = json.loads(state_path.read_text())
        if found is None or state["epoch"] > found[0]:
            found = (int(state["epoch"]), state)
    return found


def epoch_dir(run_dir: Path, epoch: int) -> Path:
    return run_dir / f"epoch-{epoch:02d}"


def finetune(
    encoder: SplitEncoder,
    trunk: Trunk,
    pairs: np.ndarray,
    config: FinetuneConfig,
    run_dir: Path,
    *,
    epochs: int | None = None,
    on_epoch: Callable[[int, Path, np.ndarray], dict[str, float]] | None = None,
    progress: bool = False,
    record: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``encoder``'s top layers for ``epochs`` (default ``config.max_epochs``) on ``pairs`` of rows
    of ``trunk`` (the frozen layers' output for every text); checkpoint each epoch under ``run_dir``.

    ``on_epoch(epoch, directory, vectors)`` gets the checkpoint and every text's vector after that epoch
    (to score it, e.g. validation HR@20); its numbers are kept in that epoch's ``config.json``. Returns the
    state of every epoch, resumed ones included.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    epochs = epochs or config.max_epochs
    if len(pairs) == 0:
        raise ConfigError("pairs", 0, "the training sessions yield no item pairs to fine-tune on")
    model = encoder.model
    run_dir.mkdir(parents=True, exist_ok=True)
    params = encoder.trainable()
    decay = [p for p in params if p.ndim > 1]
    plain = [p for p in params if p.ndim <= 1]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": plain, "weight_decay": 0.0}], lr=config.lr
    )
    per_epoch = -(-min(len(pairs), config.max_pairs or len(pairs)) // config.batch_size)
    total = per_epoch * config.max_epochs  # one schedule: stopping at epoch e gives the e-th checkpoint
    history: list[dict[str, Any]] = []
    start = 0
    resumed = last_checkpoint(run_dir)
    if resumed is not None:
        start = min(resumed[0], epochs)
        directory = epoch_dir(run_dir, start)
        model.load_state_dict(load_file(directory / WEIGHTS_FILE, device=str(encoder.device)))
        if (directory / OPTIMISER_FILE).exists():
            _restore_optimiser(optimiser, load_file(directory / OPTIMISER_FILE))
        history = [json.loads((epoch_dir(run_dir, e) / STATE_FILE).read_text()) for e in range(1, start + 1)]
        if on_epoch is not None and "scores" not in history[-1]:  # killed while scoring its last epoch
            history[-1]["scores"] = on_epoch(start, directory, encoder.encode_all(trunk))
            (directory / STATE_FILE).write_text(json.dumps(history[-1], indent=2) + "\n")
    bar = tqdm(total=per_epoch * epochs, initial=start * per_epoch, desc="finetune", unit="step", disable=not progress)
    step = start * per_epoch
    for epoch in range(start + 1, epochs + 1):
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks: a function of (seed, epoch) only
        model.train()
        chosen = epoch_pairs(pairs, config, epoch)
        losses = []
        for first in range(0, len(chosen), config.batch_size):
            batch = chosen[first : first + config.batch_size]
            if len(batch) < 2:
                continue
            for group in optimiser.param_groups:
                group["lr"] = config.lr * _schedule(step, total, config.warmup)
            loss = _loss(encoder, trunk, batch, config)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            losses.append(float(loss.detach()))
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-50:]):.3f}")
        model.eval()
        directory = epoch_dir(run_dir, epoch)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, directory / WEIGHTS_FILE)
        save_file(_optimiser_tensors(optimiser), directory / OPTIMISER_FILE)
        state: dict[str, Any] = {
            **(record or {}),
            "epoch": epoch,
            "steps": step,
            "pairs": len(chosen),
            "loss": float(np.mean(losses)) if losses else None,
            "finetune": config.model_dump(),
            "sha256": file_sha256(directory / WEIGHTS_FILE),
            "base_sha256": MODEL_SHA256,
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")  # marks the checkpoint complete
        if epoch > 1 and (epoch_dir(run_dir, epoch - 1) / OPTIMISER_FILE).exists():
            (epoch_dir(run_dir, epoch - 1) / OPTIMISER_FILE).unlink()  # only the newest resumes; weights stay
        if on_epoch is not None:
            state["scores"] = on_epoch(epoch, directory, encoder.encode_all(trunk))
            (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        history.append(state)
    bar.close()
    return history
