"""Torch session recommenders: every model learns on a slice of the real Beauty data, artefacts round-trip
without pickle, validated epochs carry over to the test fit, and serving handles unknown ids and empty
sessions clearly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sessiondata.errors import ConfigError, DataError
from sessiondata.protocol import Protocol
from sr_models.base import TrainData
from sr_models.env import ModelEnv
from sr_models.neural import NeuralRecommender, load_recommender
from sr_models.neural.data import prefix_examples, sequence_examples
from sr_models.neural.graph import session_adjacency
from sr_models.popularity import Popularity
from sr_models.registry import MODELS, build_model

TINY = {"dim": 32, "max_len": 10, "lr": 1e-2, "semantic_source": "random"}


def cpu_env(artifacts: Path | None) -> ModelEnv:
    """One CPU thread (tests share 2 cores), artefacts cached under ``artifacts``."""
    return ModelEnv(artifact_dir=artifacts, threads=1, device="cpu")


@pytest.fixture(scope="module")
def beauty_slice(beauty_protocol: Protocol) -> TrainData:
    return slice_of(beauty_protocol)


def slice_of(beauty_protocol: Protocol) -> TrainData:
    """The latest 4,000 sub-train sessions and 400 validation cases whose items the slice has seen."""
    fold = beauty_protocol.valid
    sessions = fold.train[-4000:]
    seen = {item for session in sessions for item in session.items}
    cases = [c for c in fold.cases if c.target in seen and set(c.prompt) <= seen][:400]
    return TrainData(sessions, beauty_protocol.dataset.catalog, tuple(cases), "beauty-slice", "valid", "")


def popularity_metrics(data: TrainData) -> dict[str, float]:
    """HR@20 and NDCG@20 of popularity on the slice's validation cases (the floor a model must clear)."""
    from sr_models.ranking import mean_metrics

    model = Popularity().fit(data)
    lists = [model.recommend([c.prompt], 20)[0].items for c in data.valid_cases]
    ranks = np.array(
        [
            items.index(c.target) + 1 if c.target in items else 0
            for items, c in zip(lists, data.valid_cases, strict=True)
        ]
    )
    return mean_metrics(ranks, 20)


def _learner_suffix(extra: dict) -> str:
    return "".join(f"+{key}={extra[key]}" for key in ("fusion_head", "fusion_init") if key in extra)


CONCAT_HEAD = {"fusion_head": "concat", "fusion_init": False}  # SemSR-F's concatenating head
# every architecture plain, and each SemSR mechanism once: the late SemSR-F head (MSGAT-F, the best model of the
# Beauty table, docs/sr_models.md), the concatenating head (SASRec-F), SemSR-F on the padded-batch scheme
# (GRU4Rec-F) and SemSR-I's initialisation (MSGAT-I)
LEARNERS = [
    ("gru4rec", {"lr": 0.05}),  # the official scheme: Adagrad's learning rate
    ("srgnn", {}),
    ("niser", {}),
    ("msgat", {}),
    ("sasrec", {"dropout": 0.2}),
    ("bert4rec", {"dropout": 0.1, "max_epochs": 5, "model": {"mask_prob": 0.4}}),  # cloze learns from masked slots
    ("msgat-semf", {"fusion_dropout": 0.0}),
    ("sasrec-semf", {"dropout": 0.1, "fusion_dropout": 0.0, "max_epochs": 4, **CONCAT_HEAD}),
    ("gru4rec-semf", {"dropout": 0.1, "fusion_dropout": 0.0}),
    ("msgat-semi", {}),
]
# the same mechanisms on the other bases: `make test-extended` (pytest -m extended); CI's suite leaves them out
EXTENDED_LEARNERS = [
    ("niser-semf", {}),
    ("sasrec-semf", {"dropout": 0.1, "fusion_dropout": 0.0, "max_epochs": 4}),
    ("sasrec-semi", {"dropout": 0.2}),
    ("niser-semi", {}),
    ("gru4rec-semi", {"lr": 0.05}),
    ("bert4rec-semi", {"dropout": 0.1}),
]
ALL_LEARNERS = [
    *(pytest.param(name, extra, id=name + _learner_suffix(extra)) for name, extra in LEARNERS),
    *(
        pytest.param(name, extra, id=name + _learner_suffix(extra), marks=pytest.mark.extended)
        for name, extra in EXTENDED_LEARNERS
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "extra"), ALL_LEARNERS)
def test_model_learns_on_real_beauty_slice(name, extra, beauty_slice, tmp_path):
    settings = {"max_epochs": 3, "patience": 4, **TINY, **extra}
    model = build_model(name, env=cpu_env(tmp_path), **settings)
    model.fit(beauty_slice)
    history = model.history
    assert history[0]["epoch"] == 0  # the untrained model's validation
    best = max(history[1:], key=lambda record: record["ndcg@20"])
    assert min(record["valid_loss"] for record in history[1:]) < history[0]["valid_loss"]
    floor = popularity_metrics(beauty_slice)
    # early stopping monitors NDCG@20: the chosen epoch must beat popularity there, and never trail on HR@20
    assert best["ndcg@20"] > floor["ndcg@20"] and best["hr@20"] >= floor["hr@20"]
    scores = model.score([beauty_slice.valid_cases[0].prompt])
    assert scores.shape == (1, len(beauty_slice.catalog)) and np.isfinite(scores).all()


def small_fit(tmp_path: Path, data: TrainData, name: str = "niser-semf", **extra) -> NeuralRecommender:
    sessions = data.sessions[-300:]
    small = TrainData(sessions, data.catalog, data.valid_cases[:50], "beauty-tiny", "valid", "")
    params = {**TINY, "max_epochs": 1, **extra}
    return build_model(name, env=cpu_env(tmp_path), **params).fit(small)  # type: ignore[return-value]


def test_artifact_round_trip_without_pickle(beauty_slice, tmp_path, monkeypatch):
    model = small_fit(tmp_path, beauty_slice)
    assert model.artifact_path is not None
    assert {p.name for p in model.artifact_path.iterdir()} >= {"model.safetensors", "config.json"}
    prompts = [c.prompt for c in beauty_slice.valid_cases[:5]]
    expected = model.score(prompts)

    def refuse(*args, **kwargs):
        raise AssertionError("loading an artefact must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_recommender(model.artifact_path, env=cpu_env(None))
    np.testing.assert_allclose(loaded.score(prompts), expected, rtol=1e-5, atol=1e-5)
    assert loaded.name == "niser-semf"


def test_concatenating_head_artifact_loads_as_that_head(beauty_slice, tmp_path):
    model = small_fit(tmp_path, beauty_slice, name="sasrec-semf", **CONCAT_HEAD)
    assert "fusion_head" not in model.params()  # recorded like the artefacts from before the late head
    prompts = [c.prompt for c in beauty_slice.valid_cases[:5]]
    loaded = load_recommender(model.artifact_path, env=cpu_env(None))
    assert type(loaded.encoder).__name__ == "FusedEncoder"
    np.testing.assert_allclose(loaded.score(prompts), model.score(prompts), rtol=1e-5, atol=1e-5)


def test_artifact_with_unknown_model_is_rejected(beauty_slice, tmp_path):
    model = small_fit(tmp_path, beauty_slice, name="sasrec")
    config_path = model.artifact_path / "config.json"
    config = json.loads(config_path.read_text())
    config["params"]["architecture"] = "os.system"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="architecture"):
        load_recommender(model.artifact_path)
    with pytest.raises(ConfigError, match="artifact"):
        load_recommender(tmp_path / "nowhere")


def test_refit_reuses_cached_artifact_and_test_fit_uses_validated_epochs(beauty_slice, tmp_path, monkeypatch):
    model = small_fit(tmp_path, beauty_slice, name="gru4rec", max_epochs=2, patience=5)
    assert model.best_epoch in (1, 2)
    import sr_models.neural.fitting as recommender

    calls = []
    real_train = recommender.train
    monkeypatch.setattr(recommender, "train", lambda *a, **k: calls.append(k) or real_train(*a, **k))
    again = small_fit(tmp_path, beauty_slice, name="gru4rec", max_epochs=2, patience=5)
    assert calls == [] and again.artifact_path == model.artifact_path  # reused, not retrained
    test_data = TrainData(beauty_slice.sessions[-300:], beauty_slice.catalog, (), "beauty-tiny", "test", "")
    fitted = build_model("gru4rec", env=cpu_env(tmp_path), **TINY, max_epochs=2, patience=5).fit(test_data)
    assert len(fitted.history) == model.best_epoch  # trained for the validated number of epochs, no validation


def test_a_saved_model_serves_the_same_scores_and_names_its_evidence(beauty_slice, tmp_path):
    """What serving loads (sr_models.persist) scores exactly as the fitted model, and its evidence is a
    recent session item (the graph's grounded explanations)."""
    from sr_models.persist import load_model, save_model

    model = small_fit(tmp_path / "cache", beauty_slice, name="sasrec")
    digest = save_model(model, tmp_path / "served")
    loaded = load_model(tmp_path / "served", cpu_env(None), expected_digest=digest)
    prompts = [c.prompt for c in beauty_slice.valid_cases[:5]]
    np.testing.assert_allclose(loaded.score(prompts), model.score(prompts), rtol=1e-5, atol=1e-5)
    prompt = beauty_slice.valid_cases[0].prompt
    items = model.recommend([prompt], 5)[0].items
    evidence = loaded.evidence(prompt, items)
    assert all(e is not None and e.kind == "sequence" and e.item in prompt[-3:] for e in evidence)
    (tmp_path / "served" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(DataError, match="changed since it was prepared"):
        load_model(tmp_path / "served", cpu_env(None), expected_digest=digest)


def test_bad_configuration_names_the_field():
    with pytest.raises(ConfigError, match="model"):
        build_model("sasrec", model={"n_layerz": 3})
    assert "bert4rec-semf" not in MODELS
    with pytest.raises(ConfigError, match="semantic"):
        NeuralRecommender("bert4rec", semantic="fusion")
    with pytest.raises(ConfigError, match="device"):
        NeuralRecommender("niser", env=ModelEnv(device="tpu")).fit(TrainData([], None, ()))  # type: ignore[arg-type]


def test_session_graph_averages_over_distinct_neighbours():
    # session 5 -> 6 -> 5 -> 7: item 5 has out-neighbours {6, 7}, item 6 has {5}
    a_in, a_out, edges = session_adjacency(torch.tensor([[5, 6, 5, 7, 0]]))
    out = a_out[0]
    # position 0 (item 5): weight 1/2 to item 6 (position 1) and 1/2 to item 7 (position 3), none to padding
    assert out[0, 1].item() == pytest.approx(0.5) and out[0, 3].item() == pytest.approx(0.5)
    assert torch.equal(out[0], out[2])  # both positions of item 5 share their edges
    assert out[1, 0].item() + out[1, 2].item() == pytest.approx(1.0)  # item 6 -> item 5 (two positions)
    assert a_in[0][3, 0].item() + a_in[0][3, 2].item() == pytest.approx(1.0)  # 7 comes from 5
    assert not edges[0, 4].any()


def test_prefix_and_sequence_examples_hold_the_same_next_item_pairs(beauty_protocol):
    sessions = beauty_protocol.valid.train[:200]
    prefixes = prefix_examples(sessions, max_len=5)
    sequences = sequence_examples(sessions, max_len=5)
    assert prefixes.n_targets == sequences.n_targets == sum(len(s) - 1 for s in sessions)
    # the same (last item, next item) pairs, each once; windows of long sessions see a shorter history
    from collections import Counter

    pairs = Counter((i[-1], t) for i, t in zip(prefixes.inputs, prefixes.targets, strict=True))
    from_sequences = Counter(
        (inputs[p], targets[p])
        for inputs, targets in zip(sequences.inputs, sequences.targets, strict=True)
        for p in range(len(targets))
    )
    assert from_sequences == pairs
    short = [s for s in sessions if len(s) <= 6]
    assert sequence_examples(short, 5).inputs == [list(prefix) for prefix, _ in _last_prefixes(short)]


def _last_prefixes(sessions):
    return [([item + 1 for item in s.items[:-1]], s.items[-1] + 1) for s in sessions]


def test_semsr_i_init_keeps_the_text_geometry():
    from sr_models.neural.semsr_text import init_from_text

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 384)).astype(np.float32)
    vectors[100:] = vectors[:100] + 0.1 * rng.standard_normal((100, 384)).astype(np.float32)  # near-twins
    table = torch.nn.Embedding(201, 64, padding_idx=0)
    before = table.weight.detach().clone()
    init_from_text(table, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    rows = torch.nn.functional.normalize(table.weight.detach()[1:], dim=-1)
    twins = (rows[:100] * rows[100:]).sum(-1)
    strangers = (rows[:100] * rows[100:].roll(1, 0)).sum(-1)
    assert twins.mean() > 0.8 > 0.2 > strangers.abs().mean()
    assert torch.equal(table.weight.detach()[0], before[0])  # padding row untouched
    assert table.weight.detach()[1:].std().item() == pytest.approx(before[1:].std().item(), rel=0.05)


def test_test_fit_without_a_record_validates_first(beauty_slice, tmp_path):
    data = TrainData(beauty_slice.sessions[-400:], beauty_slice.catalog, (), "beauty-tiny", "test", "")
    model = build_model("sasrec", env=cpu_env(tmp_path), **TINY, max_epochs=2, patience=5).fit(data)
    records = list((tmp_path / "beauty-tiny").glob("sasrec-*.epochs.json"))
    assert len(records) == 1
    best = json.loads(records[0].read_text())["best_epoch"]
    assert len(model.history) == best >= 1
    assert all("valid_loss" not in record for record in model.history)  # the test-fold fit saw no validation


def test_other_seeds_refit_for_the_epochs_validated_once(beauty_slice, tmp_path, monkeypatch):
    validated = small_fit(tmp_path, beauty_slice, name="gru4rec", max_epochs=2, patience=5, seed=0)
    import sr_models.neural.fitting as recommender

    folds = []
    real_train = recommender.train
    monkeypatch.setattr(recommender, "train", lambda *a, **k: folds.append(bool(a[3])) or real_train(*a, **k))
    test_data = TrainData(beauty_slice.sessions[-300:], beauty_slice.catalog, (), "beauty-tiny", "test", "")
    other = build_model("gru4rec", env=cpu_env(tmp_path), **TINY, max_epochs=2, patience=5, seed=1).fit(test_data)
    assert folds == [False]  # one training run, on the test fold, with no validation fit of its own
    assert len(other.history) == validated.best_epoch
    assert other.artifact_path != validated.artifact_path


def test_concurrent_fits_of_one_model_train_it_once(beauty_slice, tmp_path, monkeypatch):
    import threading

    import sr_models.neural.fitting as recommender

    calls = []
    real_train = recommender.train
    monkeypatch.setattr(recommender, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    fitted: list[NeuralRecommender] = []
    workers = [
        threading.Thread(target=lambda: fitted.append(small_fit(tmp_path, beauty_slice, name="sasrec")))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(calls) == 1  # the second fit waited for the first and reused its artefact
    assert len(fitted) == 2 and fitted[0].artifact_path == fitted[1].artifact_path


def test_a_reused_validation_artefact_restores_a_missing_epoch_record(beauty_slice, tmp_path):
    model = small_fit(tmp_path, beauty_slice, name="gru4rec", max_epochs=2, patience=5)
    records = list((tmp_path / "beauty-tiny").glob("gru4rec-*.epochs.json"))
    assert len(records) == 1
    records[0].unlink()
    small_fit(tmp_path, beauty_slice, name="gru4rec", max_epochs=2, patience=5)  # cache hit
    assert json.loads(records[0].read_text())["best_epoch"] == model.best_epoch


def test_record_path_names_the_record_a_validation_fit_writes(beauty_slice, tmp_path):
    from evals.sr_table import record_path
    from semsr.settings import Settings

    settings = Settings(home=tmp_path, threads=1, device="cpu")  # artefacts under tmp_path / "artifacts"
    params = {**TINY, "max_epochs": 1}
    expected = record_path(settings, "gru4rec", "beauty-tiny", {**params, "seed": 7})  # shared by seeds
    assert not expected.exists()
    small_fit(settings.paths.artifacts, beauty_slice, name="gru4rec", seed=0)
    assert expected.exists() and json.loads(expected.read_text())["seed"] == 0
    assert record_path(settings, "gru4rec", "beauty-tiny", {**params, "dim": 16}) != expected
