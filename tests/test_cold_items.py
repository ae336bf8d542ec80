"""The cold-item slice (evals/cold_items.py) on the 700-session Beauty slice: hidden items leave the
sub-train, V-SKNN goes silent on them, the title kNN (every catalogue item a candidate) still ranks them.

The title vectors are hashed character trigrams of the real titles (a file embedder: MiniLM on the whole
slice catalogue costs over a minute on one core); the Beauty MiniLM numbers are in docs/results/cold_items.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes.openai_http import hashed_embedding

from embeddings.config import EmbedderConfig
from evals.cold_items import cold_protocol
from sessiondata.errors import ConfigError
from sessiondata.protocol import Protocol
from sr_models.base import train_data
from sr_models.registry import build_model


def test_hidden_items_silence_vsknn_but_not_the_title_knn(
    slice_protocol: Protocol, slice_settings, tmp_path: Path
) -> None:
    cold, hidden = cold_protocol(slice_protocol, 0.2, seed=0)
    assert cold_protocol(slice_protocol, 0.2, seed=0)[1] == hidden  # seeded
    assert hidden <= slice_protocol.valid.train_items and not hidden & cold.valid.train_items
    assert cold.valid.cases and all(case.target in hidden for case in cold.valid.cases)
    assert cold.test == slice_protocol.test  # the standard protocol is untouched
    assert cold.train_digest("valid") != slice_protocol.train_digest("valid")  # never reuses standard artefacts
    assert cold.train_digest("test") == slice_protocol.train_digest("test")

    prompts = [list(case.prompt) for case in cold.valid.cases]
    hidden_index = np.array(sorted(hidden))
    env = slice_settings.model_env(progress=False)
    vsknn = build_model("vsknn", cold.dataset.name, env=env).fit(train_data(cold, "valid"))
    assert not vsknn.score(prompts)[:, hidden_index].any()  # silent on every hidden item

    catalog = cold.dataset.catalog
    vectors = np.asarray([hashed_embedding(title, 256) for title in catalog.titles], dtype=np.float32) + 1e-3
    np.savez(tmp_path / "titles.npz", ids=np.asarray(catalog.ids), vectors=vectors)
    titles = EmbedderConfig(kind="file", path=tmp_path / "titles.npz")
    # raw vectors: whitening the fake vectors adds ~6 s and is not what this test is about
    knn = build_model(
        "title-knn", cold.dataset.name, env=env, candidates="all", center=False, whiten=0.0, embedder=titles
    )
    knn.fit(train_data(cold, "valid"))
    scores = knn.score(prompts)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    assert np.isin(top, hidden_index).any(axis=1).mean() > 0.5  # hidden items reach most top-100 lists
    hits = [case.target in row for case, row in zip(cold.valid.cases, top, strict=True)]
    assert sum(hits) > 0  # and some cold target is found


def test_the_share_is_checked(slice_protocol: Protocol) -> None:
    with pytest.raises(ConfigError, match="share"):
        cold_protocol(slice_protocol, 1.0, seed=0)
