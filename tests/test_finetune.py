"""`semsr embed finetune`'s pieces on a tiny Beauty slice: pairs only from training sessions, a seeded rerun and
a resumed run give the same vectors (1e-5), the split encoder equals the model's own encode, the published
model round-trips through the registry's ``minilm-adapted`` kind per fold, and a corrupt file is one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.catalog import catalog_texts
from embeddings.config import EmbedderConfig, fold_provider
from embeddings.finetune import FinetuneConfig, epoch_dir, finetune, training_pairs
from embeddings.finetuned import AdaptedMiniLMProvider, finetuned_dir, publish, resolve_embedder
from embeddings.minilm import MiniLMProvider, load_sentence_model
from embeddings.split_encoder import SplitEncoder
from sessiondata.errors import ConfigError
from sessiondata.protocol import Protocol
from sr_models.base import train_data

DIGEST = "ab12" * 4
TINY = FinetuneConfig(
    max_epochs=2, train_layers=1, max_pairs=24, batch_size=8, max_seq_length=24, train_seq_length=12, lr=1e-3
)


def _window_pairs(sequences: list[list[int]], window: int) -> set[tuple[int, int]]:
    return {(s[i], s[j]) for s in sequences for i in range(len(s)) for j in range(i + 1, min(len(s), i + window + 1))}


def test_pairs_come_from_the_folds_training_sessions_only(beauty_protocol: Protocol) -> None:
    data = train_data(beauty_protocol, "valid")
    pairs = {tuple(pair) for pair in training_pairs([s.items for s in data.sessions], TINY).tolist()}
    allowed = _window_pairs([list(s.items) for s in data.sessions], TINY.window)
    assert pairs and pairs <= allowed
    held_out = {(case.prompt[-1], case.target) for case in beauty_protocol.valid.cases}
    held_out |= {(case.prompt[-1], case.target) for case in beauty_protocol.test.cases}
    unseen = held_out - allowed  # transitions only validation/test shoppers made
    assert unseen and not unseen & pairs
    test_pairs = {tuple(p) for p in training_pairs([s.items for s in beauty_protocol.test.train], TINY).tolist()}
    assert pairs < test_pairs  # the test fold's model learns from the whole training split, sub-train included


@pytest.fixture(scope="module")
def tiny(beauty_protocol: Protocol) -> dict:
    """60 Beauty items of the sub-train's first sessions, their pairs, and the frozen trunk of their titles."""
    sessions = [list(s.items) for s in train_data(beauty_protocol, "valid").sessions]
    items = sorted({i for s in sessions[:40] for i in s})[:60]
    index = {item: row for row, item in enumerate(items)}
    local = [[index[i] for i in s if i in index] for s in sessions[:40]]
    texts = [catalog_texts(beauty_protocol.dataset.catalog)[i] for i in items]
    model = load_sentence_model(threads=1)
    model.max_seq_length = TINY.max_seq_length
    encoder = SplitEncoder(model, TINY.train_layers)
    base = {name: value.clone() for name, value in model.state_dict().items()}
    return {"texts": texts, "pairs": training_pairs(local, TINY), "encoder": encoder, "base": base,
            "trunk": encoder.trunk(texts)}  # fmt: skip


def _run(tiny: dict, directory: Path, epochs: int) -> np.ndarray:
    encoder = tiny["encoder"]
    encoder.model.load_state_dict(tiny["base"])  # a fresh start from the bundled weights
    finetune(encoder, tiny["trunk"], tiny["pairs"], TINY, directory, epochs=epochs, record={"train_digest": DIGEST})
    return encoder.encode_all(tiny["trunk"])


@pytest.fixture(scope="module")
def straight(tiny: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Two epochs in one go: the run the others are compared with (its checkpoints are published below)."""
    directory = tmp_path_factory.mktemp("finetune") / "straight"
    return directory, _run(tiny, directory, 2)


def _vectors_of(tiny: dict, checkpoint: Path) -> np.ndarray:
    from safetensors.torch import load_file

    tiny["encoder"].model.load_state_dict(load_file(checkpoint / "model.safetensors"))
    return tiny["encoder"].encode_all(tiny["trunk"])


def test_a_seeded_rerun_and_a_resumed_run_give_the_same_vectors(tiny: dict, straight: tuple, tmp_path: Path) -> None:
    directory, vectors = straight
    assert len(tiny["pairs"]) >= 2 * TINY.batch_size
    rerun = _run(tiny, tmp_path / "c", 1)  # the same seed from the bundled weights: epoch 1 again
    assert np.abs(rerun - _vectors_of(tiny, epoch_dir(directory, 1))).max() <= 1e-5
    resumed = _run(tiny, tmp_path / "c", 2)  # picks up epoch 1's checkpoint (weights + optimiser moments)
    assert np.abs(vectors - resumed).max() <= 1e-5
    tiny["encoder"].model.load_state_dict(tiny["base"])
    raw = tiny["encoder"].encode_all(tiny["trunk"])
    assert np.abs(vectors - raw).max() > 1e-3  # it trained


def test_published_model_round_trips_per_fold_and_a_corrupt_file_is_refused(
    tiny: dict, straight: tuple, tmp_path: Path
) -> None:
    directory, vectors = straight
    digest = DIGEST
    target = publish(epoch_dir(directory, 2), finetuned_dir(tmp_path, digest, TINY), {"epochs": 2})
    config = EmbedderConfig(kind="minilm-adapted", finetune=TINY)
    provider = fold_provider(config, train_digest=digest, embeddings_dir=tmp_path)
    assert isinstance(provider, AdaptedMiniLMProvider) and provider.id.startswith("minilm-adapted@")
    assert digest[:8] in provider.id and provider.id != MiniLMProvider().id  # its vectors never mix with raw ones
    np.testing.assert_allclose(provider.embed(tiny["texts"][:6]), vectors[:6], atol=1e-5)  # split == encode
    with pytest.raises(ConfigError, match="semsr embed finetune"):
        resolve_embedder(config, train_digest="cd34" * 4, embeddings_dir=tmp_path)  # another fold: not prepared
    with pytest.raises(ConfigError, match="not this fold"):
        resolve_embedder(config.model_copy(update={"path": target}), train_digest="cd34" * 4, embeddings_dir=None)
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="sha256"):
        AdaptedMiniLMProvider(target, threads=1).embed(["a title"])
