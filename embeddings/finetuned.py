"""A prepared fine-tuned MiniLM (``semsr embed finetune``): where it lives, how it is checked, how it embeds.

One model per fold: ``<embeddings>/finetuned/<train digest>-<settings id>/`` holds ``model.safetensors`` (the
whole sentence model's weights) and ``config.json`` (the base model's sha256, the training sessions' digest,
the dataset and fold, the fine-tune settings, the epochs chosen on validation, every epoch's numbers and the
sha256 of the weights). The embedder kind ``minilm-adapted`` is resolved per fold by
:func:`resolve_embedder`: the model trained on exactly that fold's training sessions, never another's, and a
missing one is one clear error naming the command that prepares it (nothing is fine-tuned on demand).

Loading checks the weights' sha256 against ``config.json`` and the base model's against the bundled one, so
a truncated or edited file fails loudly instead of giving silently different vectors. The provider's id
names the weights' hash and the digest, so caches, transforms and Chroma collections never mix its vectors
with the raw model's or another fold's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from embeddings.base import slug
from embeddings.finetune import WEIGHTS_FILE, FinetuneConfig
from embeddings.minilm import MODEL_SHA256, MiniLMProvider, load_sentence_model
from sessiondata.errors import ConfigError
from sessiondata.files import file_sha256

RECORD_FILE = "config.json"
KIND = "minilm-adapted"


def finetuned_root(embeddings_dir: Path) -> Path:
    return embeddings_dir / "finetuned"


def model_key(train_digest: str, config: FinetuneConfig) -> str:
    return slug(f"{train_digest[:16]}-{config.id}")


def finetuned_dir(embeddings_dir: Path, train_digest: str, config: FinetuneConfig) -> Path:
    """Where the fine-tuned model for these training sessions and settings is published."""
    return finetuned_root(embeddings_dir) / model_key(train_digest, config)


def run_dir(embeddings_dir: Path, train_digest: str, config: FinetuneConfig) -> Path:
    """Where its per-epoch checkpoints live while (and after) it trains."""
    return finetuned_root(embeddings_dir) / "runs" / model_key(train_digest, config)


def publish(checkpoint: Path, target: Path, record: dict[str, Any]) -> Path:
    """Copy the chosen epoch's weights to ``target`` with ``config.json`` (the checkpoint's record with
    ``record`` on top; written last: marks it complete)."""
    saved = read_record(checkpoint)
    verify(checkpoint, saved)
    target.mkdir(parents=True, exist_ok=True)
    (target / RECORD_FILE).unlink(missing_ok=True)
    shutil.copyfile(checkpoint / WEIGHTS_FILE, target / WEIGHTS_FILE)
    full = {**saved, **record, "base_sha256": MODEL_SHA256, "sha256": file_sha256(target / WEIGHTS_FILE)}
    (target / RECORD_FILE).write_text(json.dumps(full, indent=2) + "\n")
    return target


def read_record(directory: Path) -> dict[str, Any]:
    """``config.json`` of a published model; a missing or unreadable one is a :class:`ConfigError`."""
    path = directory / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("embedder.path", str(directory), "holds no fine-tuned model (no config.json)") from None
    except (OSError, ValueError) as error:
        raise ConfigError("embedder.path", str(path), f"cannot be read: {error}") from None
    for field in ("sha256", "train_digest", "base_sha256", "finetune"):
        if field not in record:
            raise ConfigError("embedder.path", str(path), f"lacks {field!r}; rerun `semsr embed finetune`")
    if record["base_sha256"] != MODEL_SHA256:
        raise ConfigError("embedder.path", str(path), f"was fine-tuned from base {record['base_sha256'][:12]}")
    return record


def verify(directory: Path, record: dict[str, Any]) -> None:
    """The weights file's sha256 must equal the one recorded when it was published."""
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError("embedder.path", str(directory), f"has no {WEIGHTS_FILE}; rerun `semsr embed finetune`")
    actual = file_sha256(weights)
    if actual != record["sha256"]:
        raise ConfigError(
            "embedder.path",
            str(weights),
            f"sha256 {actual[:16]} differs from the recorded {record['sha256'][:16]}: the file is corrupt or was "
            "changed; delete the directory and rerun `semsr embed finetune`",
        )


def load_finetuned_model(directory: Path, *, device: str = "cpu", threads: int | None = None) -> Any:
    """The sentence model of a published (or checkpointed) fine-tune, weights hash-checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    record = read_record(directory)
    verify(directory, record)
    model = load_sentence_model(device=device, threads=threads)
    try:
        model.load_state_dict(load_file(directory / WEIGHTS_FILE, device=device))
    except (SafetensorError, RuntimeError) as error:
        raise ConfigError("embedder.path", str(directory / WEIGHTS_FILE), f"cannot be loaded: {error}") from None
    model.max_seq_length = int(record["finetune"]["max_seq_length"])
    model.eval()
    return model


class AdaptedMiniLMProvider(MiniLMProvider):
    """MiniLM fine-tuned on one fold's training sessions (``config.json`` read now, weights checked on load)."""

    def __init__(self, directory: Path, *, batch_size: int = 64, threads: int = 2) -> None:
        self.directory = Path(directory)
        self.record = read_record(self.directory)
        super().__init__(
            max_seq_length=int(self.record["finetune"]["max_seq_length"]), batch_size=batch_size, threads=threads
        )

    @property
    def id(self) -> str:
        digest = str(self.record["train_digest"])[:8]
        return f"{KIND}@{self.record['sha256'][:8]}-{digest}-seq{self.max_seq_length}"

    @property
    def train_digest(self) -> str:
        return str(self.record["train_digest"])

    def _load(self) -> Any:
        if self._model is None:
            self._model = load_finetuned_model(self.directory, threads=self.threads)
        return self._model


def resolve_embedder(config: Any, *, train_digest: str, embeddings_dir: Path | None) -> Any:
    """``config`` (an :class:`~embeddings.config.EmbedderConfig`) with a ``minilm-adapted`` kind bound to the
    model fine-tuned on the training sessions ``train_digest`` names; other kinds come back unchanged.

    An explicit ``path`` must hold a model of the same digest (no fold's model serves another fold).
    """
    if config.kind != KIND:
        return config
    if config.path is None:
        if embeddings_dir is None or not train_digest:
            raise ConfigError("embedder.kind", KIND, "needs the fold's training digest and the embeddings directory")
        directory = finetuned_dir(embeddings_dir, train_digest, config.finetune)
        if not (directory / RECORD_FILE).exists():
            raise ConfigError(
                "embedder.kind",
                KIND,
                f"no fine-tuned MiniLM for these training sessions (digest {train_digest[:16]}) at {directory}; "
                "prepare it first with `semsr embed finetune --dataset DATASET` (same SEMSR_HOME and settings)",
            )
        config = config.model_copy(update={"path": directory})
    record = read_record(Path(config.path))
    if train_digest and record["train_digest"][:16] != train_digest[:16]:
        raise ConfigError(
            "embedder.path",
            str(config.path),
            f"was fine-tuned on training sessions {record['train_digest'][:16]}, not this fold's {train_digest[:16]}",
        )
    return config


def cache_vectors(embeddings_dir: Path, directory: Path, texts: list[str], vectors: Any) -> str:
    """Store ``vectors`` (the fine-tune's own vectors of ``texts``, computed while training through the same
    layers) in the embedding cache under the model's provider id, so scoring and serving never re-embed the
    catalogue; returns that id."""
    from embeddings.cache import text_key
    from embeddings.catalog import open_cache

    provider = AdaptedMiniLMProvider(directory)
    open_cache(embeddings_dir).put(provider.id, [text_key(text) for text in texts], vectors)
    return provider.id
