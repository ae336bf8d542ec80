"""Saved models serve what was fitted: every numpy model round-trips through sr_models.persist without
pickle, with the same scores, and says which session item led to each recommendation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sessiondata.errors import DataError
from sr_models.base import train_data
from sr_models.persist import directory_digest, load_model, save_model
from sr_models.registry import build_model


@pytest.fixture(scope="module")
def data(beauty_protocol):
    return train_data(beauty_protocol, "valid")


@pytest.mark.parametrize("name", ["popularity", "sknn", "vsknn", "sr"])
def test_round_trip_keeps_every_score_and_refuses_pickle(name, data, beauty_protocol, tmp_path, monkeypatch):
    model = build_model(name, "amazon-beauty").fit(data)
    digest = save_model(model, tmp_path / name)
    assert digest == directory_digest(tmp_path / name)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("loading must not unpickle"))
    loaded = load_model(tmp_path / name, expected_digest=digest)
    prompts = [case.prompt for case in beauty_protocol.valid.cases[:40]]
    np.testing.assert_array_equal(loaded.score(prompts), model.score(prompts))
    assert loaded.params() == model.params()


@pytest.mark.parametrize(("name", "kind"), [("vsknn", "co-session"), ("sr", "followed-by"), ("popularity", "popular")])
def test_evidence_points_at_a_session_item_that_explains_the_item(name, kind, data, beauty_protocol):
    model = build_model(name, "amazon-beauty").fit(data)
    hits = 0
    for case in beauty_protocol.valid.cases[:60]:
        items = model.recommend([case.prompt], 5)[0].items
        for item, found in zip(items, model.evidence(case.prompt, items), strict=True):
            if found is None:
                continue
            assert found.kind == kind and found.strength > 0
            if kind == "popular":
                continue
            assert found.item in case.prompt
            if kind == "co-session":  # the evidence item and the recommended one share training sessions
                shared = [s for s in data.sessions if found.item in s.items and item in s.items]
                assert shared
            else:  # a rule from the evidence item to the recommended one exists
                assert model.rules[found.item, item] > 0
            hits += 1
    assert hits >= 100 or kind == "popular"


def test_a_changed_artefact_is_refused(data, tmp_path):
    model = build_model("sr", "amazon-beauty").fit(data)
    digest = save_model(model, tmp_path / "sr")
    (tmp_path / "sr" / "state.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="changed since it was prepared"):
        load_model(tmp_path / "sr", expected_digest=digest)
    (tmp_path / "sr" / "model.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_model(tmp_path / "sr")
