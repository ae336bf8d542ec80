"""V-SKNN with semantic neighbours (``vsknn-sem``) on the 700-session Beauty slice: session vectors find
neighbours that share no item with the prompt, blend 0 is V-SKNN to the bit, and the fitted model saves
and loads.

The title vectors are hashed character trigrams of the real titles (a file embedder: MiniLM on the slice
catalogue costs over a minute on one core), not post-processed (whitening them is not what this is about);
the V-SKNN part is inherited from the slice's tuned ``vsknn`` record (Beauty's)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes.openai_http import hashed_embedding

from embeddings.config import EmbedderConfig
from sessiondata.protocol import Protocol
from sr_models.base import TrainData, train_data
from sr_models.env import ModelEnv
from sr_models.persist import load_model, save_model
from sr_models.registry import build_model, tuned_params
from sr_models.semantic_knn import SemanticKNN

RAW = {"center": False, "whiten": 0.0, "keep": 1.0}


@pytest.fixture(scope="module")
def env(slice_protocol: Protocol, slice_settings, tmp_path_factory: pytest.TempPathFactory) -> ModelEnv:
    catalog = slice_protocol.dataset.catalog
    vectors = np.asarray([hashed_embedding(title, 128) for title in catalog.titles], dtype=np.float32) + 1e-3
    path = tmp_path_factory.mktemp("vsknn-sem") / "titles.npz"
    np.savez(path, ids=np.asarray(catalog.ids), vectors=vectors)
    return replace(slice_settings.model_env(progress=False), embedder=EmbedderConfig(kind="file", path=path))


@pytest.fixture(scope="module")
def data(slice_protocol: Protocol) -> TrainData:
    return train_data(slice_protocol, "valid")


@pytest.fixture(scope="module")
def prompts(slice_protocol: Protocol) -> list[list[int]]:
    return [list(case.prompt) for case in slice_protocol.valid.cases[:80]]


def _sem(protocol: Protocol, env: ModelEnv, data: TrainData, **overrides) -> SemanticKNN:
    model = build_model("vsknn-sem", protocol.dataset.name, env=env, **RAW, **overrides)
    assert isinstance(model, SemanticKNN)
    return model.fit(data)


def test_session_vectors_find_neighbours_that_share_no_item(slice_protocol, env, data, prompts) -> None:
    # one-item prompts: every session sharing the item is as similar to it under V-SKNN (a longer prompt's
    # old items weigh ~e^-60, so a session sharing only those is a neighbour through its cosine alone)
    prompts = [prompt[-1:] for prompt in prompts]
    n_vector, big = 30, 100_000  # k above every candidate count: V-SKNN keeps all its neighbours
    model = _sem(slice_protocol, env, data, blend=0.5, k=big, vector_neighbours=n_vector)
    vsknn = build_model("vsknn", slice_protocol.dataset.name, env=env, k=big).fit(data)
    semantic, plain = model.score(prompts), vsknn.score(prompts)
    cosines = np.maximum(model.session_cosines(prompts), 0.0)
    sessions = data.sessions
    gained_any = 0
    for row, prompt in enumerate(prompts):
        # items only the vectors gave real evidence for (V-SKNN left them at the popularity back-fill; 1e-6:
        # above the ~1e-17 that a far-off item of a long shared neighbour gets through the position decay)
        evidence = semantic[row] - model.backfill_scores > 1e-6
        gained = np.flatnonzero(evidence & (plain[row] == vsknn.backfill_scores))
        nearest = np.argpartition(-cosines[row], n_vector - 1)[:n_vector]
        disjoint = [s for s in nearest if cosines[row, s] > 0 and not set(sessions[s].items) & set(prompt)]
        from_vectors = {i for s in disjoint for i in sessions[s].items}
        assert set(gained.tolist()) <= from_vectors, row
        gained_any += bool(gained.size)
    assert gained_any > len(prompts) / 2  # most prompts gain neighbours through their vectors


def test_blend_zero_is_vsknn_exactly_and_the_vsknn_part_is_inherited(slice_protocol, env, data, prompts) -> None:
    name = slice_protocol.dataset.name
    vsknn = build_model("vsknn", name, env=env).fit(data)
    model = _sem(slice_protocol, env, data, blend=0.0, vector_neighbours=200)
    inherited = tuned_params(name, "vsknn", env.tuned_dir)
    assert inherited and {k: model.params()[k] for k in inherited} == inherited
    assert np.array_equal(model.score(prompts), vsknn.score(prompts))
    blended = _sem(slice_protocol, env, data, blend=0.5, vector_neighbours=200).score(prompts)
    assert not np.array_equal(blended, vsknn.score(prompts))  # the vectors do change the answer


def test_a_fitted_model_saves_and_loads_to_the_same_scores(slice_protocol, env, data, prompts, tmp_path: Path) -> None:
    model = _sem(slice_protocol, env, data, blend=0.5, vector_neighbours=50, vector_mode="last")
    digest = save_model(model, tmp_path / "vsknn-sem")
    loaded = load_model(tmp_path / "vsknn-sem", env, expected_digest=digest)
    assert isinstance(loaded, SemanticKNN) and loaded.params() == model.params()
    assert np.array_equal(loaded.score(prompts), model.score(prompts))
