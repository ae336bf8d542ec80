"""The serving fast paths give exactly what the plain definitions give, on real Beauty prompts.

Each reference below is the straightforward code the model used before: V-SKNN's scoring (dense per-item
arrays, a Python list of neighbour position ranges, ``np.isin``, ``np.maximum.at``) and evidence (one
``intersect1d`` per item pair), the rules' and title kNN's evidence (one column or row at a time), and the
ranker fusion (one booster call per source's ablation, over every row). The fast paths must agree with
them bit for bit, under the tuned configuration and under others that take the other branches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sr_models.base import Evidence, train_data
from sr_models.knn import SessionKNN, prompt_weights
from sr_models.registry import build_model


def reference_scores(model: SessionKNN, prompt: Sequence[int]) -> np.ndarray:
    cfg = model.config
    scores = np.zeros(model.n_items, dtype=np.float64)
    prompt_arr = np.asarray(prompt, dtype=np.int64)
    weights = prompt_weights(len(prompt_arr), cfg.prompt_decay, cfg.prompt_decay_lambda)
    item_weight = np.zeros(model.n_items, dtype=np.float64)
    item_weight[prompt_arr] = weights
    item_recency = np.full(model.n_items, -1, dtype=np.int64)
    item_recency[prompt_arr] = np.arange(len(prompt_arr))
    unique_prompt = np.unique(prompt_arr)
    candidates = model._candidates(unique_prompt)
    if candidates.size == 0:
        return scores + model.backfill_scores if cfg.backfill else scores
    starts, ends = model.indptr[candidates], model.indptr[candidates + 1]
    flat = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
    owner = np.repeat(np.arange(candidates.size), ends - starts)
    items = model.seq_items[flat]
    first_occurrence = np.zeros(flat.size, dtype=bool)
    first_occurrence[np.unique(owner * model.n_items + items, return_index=True)[1]] = True
    similarity = np.bincount(owner, weights=item_weight[items] * first_occurrence, minlength=candidates.size)
    if cfg.similarity == "cosine":
        similarity = similarity / np.sqrt(model.session_sizes[candidates] * unique_prompt.size)
    n_keep = min(cfg.k, candidates.size)
    top = np.argpartition(-similarity, n_keep - 1)[:n_keep]
    top = top[similarity[top] > 0]
    if top.size == 0:
        return scores + model.backfill_scores if cfg.backfill else scores
    keep = np.isin(owner, top)
    items_k, owner_k = items[keep], owner[keep]
    contribution = similarity[owner_k]
    if cfg.neighbour_decay_lambda is not None:
        positions = model.seq_positions[flat[keep]]
        recency = item_recency[items_k]
        key = np.where(recency >= 0, recency * 100_000 + positions, -1)
        best_key = np.full(candidates.size, -1, dtype=np.int64)
        np.maximum.at(best_key, owner_k, key)
        anchor = best_key[owner_k] % 100_000
        contribution = contribution * np.exp(-np.abs(positions - anchor) / cfg.neighbour_decay_lambda)
    if cfg.idf_weight > 0:
        contribution = contribution * (1.0 + cfg.idf_weight * model.idf[items_k])
    scores += np.bincount(items_k, weights=contribution, minlength=model.n_items)
    return scores + model.backfill_scores if cfg.backfill else scores


def reference_evidence(model: SessionKNN, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
    prompt_arr = np.asarray(prompt, dtype=np.int64)
    weights = prompt_weights(len(prompt_arr), model.config.prompt_decay, model.config.prompt_decay_lambda)
    last_weight = {int(i): float(w) for i, w in zip(prompt_arr, weights, strict=True)}

    def sessions(item: int) -> np.ndarray:
        return model.item_sessions[model.item_sessions_indptr[item] : model.item_sessions_indptr[item + 1]]

    found: list[Evidence | None] = []
    for item in items:
        best, best_value = None, 0.0
        for source, weight in last_weight.items():
            shared = np.intersect1d(sessions(item), sessions(source), assume_unique=True).size
            if shared * weight > best_value:
                best, best_value = source, shared * weight
        found.append(Evidence(best, "co-session", best_value) if best is not None else None)
    return found


@pytest.fixture(scope="module")
def beauty_valid(beauty_protocol):
    data = train_data(beauty_protocol, "valid")
    # a slice of real prompts: every length the fold has, repeated items included
    prompts = [list(case.prompt) for case in beauty_protocol.valid.cases[::12]]
    return data, prompts


CONFIGS = {
    "tuned": {},
    "cosine-plain": {"similarity": "cosine", "prompt_decay": "none", "idf_weight": 0.0, "neighbour_decay_lambda": None},
    "small-linear": {"k": 5, "sample_size": 50, "prompt_decay": "linear", "neighbour_decay_lambda": 1.0},
    "no-backfill": {"k": 50, "prompt_decay": "harmonic", "backfill": False, "idf_weight": 2.0},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fast_scores_equal_the_reference_bit_for_bit(beauty_valid, name):
    data, prompts = beauty_valid
    model = build_model("vsknn", "amazon-beauty", **CONFIGS[name]).fit(data)
    fast = model.score(prompts)
    reference = np.stack([reference_scores(model, prompt) for prompt in prompts])
    assert fast.shape == (len(prompts), data.n_items)
    assert np.count_nonzero(reference > 1e-6) > len(prompts) * 10  # real neighbour evidence, not just back-fill
    np.testing.assert_array_equal(fast, reference)


def test_fast_evidence_equals_the_reference(beauty_valid):
    data, prompts = beauty_valid
    model = build_model("vsknn", "amazon-beauty").fit(data)
    found = 0
    for prompt in prompts[:60]:
        items = np.argsort(-model.score([prompt])[0], kind="stable")[:30].tolist()
        fast, reference = model.evidence(prompt, items), reference_evidence(model, prompt, items)
        assert fast == reference
        found += sum(e is not None for e in fast)
    assert found > 600  # most top items have a co-session reason


def test_repeated_items_count_once_per_neighbour_as_in_the_reference():
    # Beauty sessions rarely repeat an item; these do, in the prompt and in the neighbours
    from sessiondata.schema import Catalog, Session
    from sr_models.base import TrainData

    rng = np.random.default_rng(3)
    sessions = [
        Session(s, tuple(int(i) for i in rng.integers(0, 12, rng.integers(2, 9))), tuple(range(100 * s, 100 * s + 9)))
        for s in range(60)
    ]
    sessions = [Session(s.session_id, s.items, s.times[: len(s.items)]) for s in sessions]
    data = TrainData(sessions=sessions, catalog=Catalog(ids=tuple(range(12)), titles=tuple("t" * 12)))
    model = SessionKNN(k=7, sample_size=20, neighbour_decay_lambda=2.0, idf_weight=1.0).fit(data)
    prompts = [[1, 2, 1], [3, 3, 3, 4], [5], [0, 7, 0, 7, 9]]
    assert any(len(set(s.items)) < len(s.items) for s in sessions)
    np.testing.assert_array_equal(model.score(prompts), np.stack([reference_scores(model, p) for p in prompts]))
    for prompt in prompts:
        assert model.evidence(prompt, list(range(12))) == reference_evidence(model, prompt, list(range(12)))


def reference_rules_evidence(model, prompt: Sequence[int], items: Sequence[int]) -> list[Evidence | None]:
    recent = list(prompt)[-model.config.prompt_items :]
    votes: dict[int, float] = {}
    for distance, item in enumerate(reversed(recent)):
        votes[int(item)] = max(votes.get(int(item), 0.0), float(np.exp(-distance / model.config.prompt_decay_lambda)))
    sources = np.fromiter(votes, dtype=np.int64)
    vote = np.fromiter(votes.values(), dtype=np.float64)
    block = model.rules[sources][:, np.asarray(items, dtype=np.int64)].toarray() * vote[:, None]
    found: list[Evidence | None] = []
    for column in range(block.shape[1]):
        row = int(np.argmax(block[:, column]))
        value = float(block[row, column])
        found.append(Evidence(int(sources[row]), "followed-by", value) if value > 0 else None)
    return found


def test_rules_and_title_evidence_equal_the_one_at_a_time_reference(beauty_valid):
    from embeddings.session import position_weights
    from sr_models.title_knn import TitleKNN

    data, prompts = beauty_valid
    rules = build_model("sr", "amazon-beauty").fit(data)
    title = TitleKNN()  # random unit title vectors: the evidence is geometry, not what MiniLM says
    vectors = np.random.default_rng(0).normal(size=(data.n_items, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    title.restore({"vectors": vectors, "prior": np.zeros(data.n_items), "mask": np.zeros(data.n_items)})
    found = 0
    for prompt in prompts[:80]:
        items = np.argsort(-rules.score([prompt])[0], kind="stable")[:40].tolist()
        fast = rules.evidence(prompt, items)
        assert fast == reference_rules_evidence(rules, prompt, items)
        found += sum(e is not None for e in fast)
        weights = position_weights(len(prompt), title.config.mode, title.config.decay)
        similarity = (vectors[items] @ vectors[np.asarray(prompt)].T) * weights[None, :]
        expected = [
            Evidence(int(prompt[int(np.argmax(row))]), "similar-title", float(row.max())) if row.max() > 0 else None
            for row in similarity
        ]
        assert title.evidence(prompt, items) == expected
    assert found > 80 * 20  # the rules' top items mostly follow a session item


def reference_ranker_fuse(fusion, results, context):
    """The ranker fusion as it was: every row scored, then one booster call per speaking source's ablation."""
    from graphs.ranker_features import PER_SOURCE, ranker_features

    items, matrix = ranker_features(results, fusion.sources, context)
    scores = fusion.score_matrix(matrix)
    width, n_sources = len(PER_SOURCE), fusion.features.index("n_sources")
    contributions, proposers = {}, {}
    for i, source in enumerate(fusion.sources):
        if not results.get(source):
            continue
        block = slice(i * width, (i + 1) * width)
        proposed = matrix[:, block][:, PER_SOURCE.index("missing")] == 0.0
        ablated = matrix.copy()
        ablated[proposed, block.start + PER_SOURCE.index("raw")] = np.nan
        ablated[proposed, block.start + PER_SOURCE.index("z")] = np.nan
        ablated[proposed, block.start + PER_SOURCE.index("rank")] = float(np.count_nonzero(proposed)) + 1.0
        ablated[proposed, block.start + PER_SOURCE.index("missing")] = 1.0
        ablated[proposed, n_sources] -= 1.0
        contributions[source] = scores - fusion.score_matrix(ablated)
        proposers[source] = proposed
    values, mask = np.stack(list(contributions.values()), 1), np.stack(list(proposers.values()), 1)
    lowest = np.where(mask, values, np.inf).min(axis=1)
    below = np.minimum(0.0, np.where(np.isfinite(lowest), lowest, 0.0)) - 1e-6
    values = np.where(mask, values, below[:, None])
    order = np.lexsort((items, -scores))
    return items[order], scores[order], {s: values[order, j] for j, s in enumerate(contributions)}


def test_ranker_fusion_equals_the_per_source_reference_with_and_without_a_cut(beauty_protocol, beauty_valid):
    import lightgbm

    from graphs.candidates import model_candidates
    from graphs.ranker import RankerFusion
    from graphs.ranker_features import feature_names, ranker_features, session_context
    from sr_models.popularity import item_counts

    data, _ = beauty_valid
    sources = ["vsknn", "sr"]
    models = {name: build_model(name, "amazon-beauty").fit(data) for name in sources}
    popularity = item_counts(data.sessions, data.n_items).astype(np.float64)
    per_case = []
    for position, case in enumerate(beauty_protocol.valid.cases[:250]):
        window, exclude = list(case.prompt), sorted(set(case.prompt))
        results = {name: model_candidates(models[name], [window], [exclude], 50)[0] for name in sources}
        if position % 4 == 0:  # sessions where the rules propose nothing: only V-SKNN speaks
            results["sr"] = []
        per_case.append((case, results, session_context(window, popularity, popularity / 2, models)))
    rows = [ranker_features(results, sources, context) for _, results, context in per_case]
    targets = [case.target for case, _, _ in per_case]
    labels = np.concatenate([(items == t).astype(float) for t, (items, _) in zip(targets, rows, strict=True)])
    train = lightgbm.Dataset(np.concatenate([m for _, m in rows]), labels, group=[i.size for i, _ in rows])
    params = {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 0}
    fusion = RankerFusion(sources=sources, features=feature_names(sources)).attach(lightgbm.train(params, train, 40))
    for _, results, context in per_case[:120]:
        items, scores, shares = reference_ranker_fuse(fusion, results, context)
        full = fusion.fuse(results, context)
        np.testing.assert_array_equal(full[0], items)
        np.testing.assert_array_equal(full[1], scores)
        assert full[2].keys() == shares.keys() and all(np.array_equal(full[2][s], shares[s]) for s in shares)
        cut = fusion.fuse(results, context, top=13)
        np.testing.assert_array_equal(cut[0], items)
        np.testing.assert_array_equal(cut[1], scores)
        assert all(np.array_equal(cut[2][s], shares[s][:13]) for s in shares)
    assert len(np.unique(np.round(scores, 9))) > 10  # a booster that ranks, not a constant
