"""Sampled softmax on large catalogues: every encoder scores a subset of items exactly as its full-catalogue
logits do (so the sampled loss trains the model that is evaluated), the catalogue size chooses the loss by
a setting, the choice is recorded in the artefact, and the model is still scored over the whole catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sessiondata.errors import ConfigError
from sessiondata.protocol import Protocol
from sr_models.base import TrainData
from sr_models.env import ModelEnv
from sr_models.neural import NeuralRecommender
from sr_models.neural.architectures import ARCHITECTURES
from sr_models.neural.config import NeuralConfig
from sr_models.neural.data import make_batch
from sr_models.neural.encoder import SessionEncoder, scores_candidates
from sr_models.neural.losses import SampledSoftmax
from sr_models.neural.trainer import TrainConfig, train

N_ITEMS = 60
# every architecture plain, SemSR-F with each head (and the residual text score), SemSR-I
VARIANTS = [(name, "none", {}) for name in ARCHITECTURES] + [
    ("msgat", "fusion", {}),
    ("sasrec", "fusion", {"fusion_head": "concat", "fusion_init": False}),
    ("niser", "fusion", {"fusion_head": "concat", "fusion_residual": True}),
    ("gru4rec", "fusion", {}),
    ("niser", "init", {}),
]


def encoder_of(name: str, semantic: str, extra: dict) -> SessionEncoder:
    torch.manual_seed(0)
    model = NeuralRecommender(name, semantic=semantic, semantic_source="random", dim=16, max_len=8, **extra)  # type: ignore[arg-type]
    vectors = np.random.default_rng(0).normal(size=(N_ITEMS, 24)).astype(np.float32)
    return model.build_encoder(N_ITEMS, vectors if semantic != "none" else None).eval()


@pytest.mark.parametrize(("name", "semantic", "extra"), VARIANTS)
def test_candidate_scores_are_the_full_logits_of_those_items(name: str, semantic: str, extra: dict) -> None:
    encoder = encoder_of(name, semantic, extra)
    assert scores_candidates(encoder)
    batch = make_batch([[1, 5, 9], [3], [7, 2, 2, 11]], None, 8, per_position=False)
    items = torch.tensor([0, 13, 4, 59, 13, 30])  # repeats, first and last item
    with torch.no_grad():
        hidden = encoder.final(batch.inputs, batch.lengths)
        full = encoder.logits(hidden)
        subset = encoder.candidate_scores(hidden, items)
    assert full.shape == (3, N_ITEMS)
    torch.testing.assert_close(subset, full[:, items], rtol=1e-5, atol=1e-5)


class OwnLogits(SessionEncoder):
    """An encoder with its own scoring rule and no candidate_scores: sampled softmax cannot train it."""

    def __init__(self, n_items: int) -> None:
        super().__init__(n_items, 8)
        self.item = torch.nn.Embedding(n_items + 1, 8)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.item(inputs).mean(1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(hidden) @ self.item_table().T


def test_an_encoder_that_cannot_score_candidates_is_one_clear_error() -> None:
    from sr_models.neural.data import Examples

    examples = Examples([[1, 2], [3]], [3, 4], per_position=False)
    with pytest.raises(ConfigError, match=r"loss.*sampled.*OwnLogits cannot score sampled candidates"):
        train(OwnLogits(10), examples, TrainConfig(epochs=1, loss="sampled", n_negatives=4))


@pytest.fixture(scope="module")
def small_slice(beauty_protocol: Protocol) -> TrainData:
    """The latest 2,000 sub-train sessions and 300 validation cases they have seen; the whole catalogue."""
    fold = beauty_protocol.valid
    sessions = fold.train[-2000:]
    seen = {item for session in sessions for item in session.items}
    cases = [c for c in fold.cases if c.target in seen and set(c.prompt) <= seen][:300]
    return TrainData(sessions, beauty_protocol.dataset.catalog, tuple(cases), "beauty-slice", "valid", "")


def fit(
    data: TrainData, threshold: int, home: Path, monkeypatch: pytest.MonkeyPatch, epochs: int
) -> tuple[NeuralRecommender, int]:
    """SASRec fitted with ``sampled_above_items=threshold``; also how many sampled-softmax steps ran."""
    calls = []
    original = SampledSoftmax.__call__

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SampledSoftmax, "__call__", counted)
    env = ModelEnv(
        artifact_dir=home,
        threads=1,
        device="cpu",
        neural=NeuralConfig(sampled_above_items=threshold, sampled_negatives=256),
    )
    model = NeuralRecommender(
        "sasrec", env=env, dim=32, max_len=10, lr=5e-3, dropout=0.2, max_epochs=epochs, patience=2
    )
    model.fit(data)
    return model, len(calls)


def test_a_catalogue_above_the_threshold_trains_sampled_and_is_scored_over_every_item(
    small_slice: TrainData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_items = small_slice.n_items
    sampled, steps = fit(small_slice, 1_000, tmp_path, monkeypatch, epochs=2)
    assert n_items > 1_000 and steps > 0
    assert (sampled.hyper["loss"], sampled.hyper["n_negatives"], sampled.hyper["sample_alpha"]) == (
        "sampled",
        256,
        0.75,
    )
    config = json.loads((sampled.artifact_path / "config.json").read_text())  # type: ignore[operator]
    assert config["params"]["loss"] == "sampled" and config["params"]["n_negatives"] == 256
    assert config["loss_rule"] == {"sampled_above_items": 1_000, "n_items": n_items}
    # scored over the full catalogue, in validation and in serving, and it learnt under the sampled loss
    scores = sampled.score([c.prompt for c in small_slice.valid_cases[:5]])
    assert scores.shape == (5, n_items) and np.isfinite(scores).all()
    first, best = sampled.history[0], max(h["ndcg@20"] for h in sampled.history[1:])
    assert best > 2 * first["ndcg@20"] + 0.01

    full, steps = fit(small_slice, n_items, tmp_path, monkeypatch, epochs=1)  # at the threshold: full softmax
    assert steps == 0 and full.hyper["loss"] == "ce" and full.hyper["n_negatives"] is None
    assert full.artifact_path != sampled.artifact_path
    assert "loss_rule" not in json.loads((full.artifact_path / "config.json").read_text())  # type: ignore[operator]
