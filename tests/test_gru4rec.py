"""GRU4Rec's official training scheme: session-parallel steps (every event once, in order, state reset at
session starts), BPR-max and sampled cross-entropy over shared negatives, the tied item table, Adagrad with
momentum and sparse row updates, artefacts that round-trip, and records that keep earlier artefacts valid."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from test_sr_neural import TINY, cpu_env, popularity_metrics, slice_of

from sessiondata.errors import ConfigError
from sessiondata.schema import Session
from sr_models.base import TrainData
from sr_models.neural import load_recommender
from sr_models.neural.data import sequence_examples, session_examples, session_parallel_steps
from sr_models.neural.gru4rec import GRU4RecEncoder
from sr_models.neural.hyper import constructor_args, hyper_parameters
from sr_models.neural.losses import PopularitySampler, bpr_max_loss, final_activation, sampled_softmax_loss
from sr_models.neural.optim import AdagradM
from sr_models.neural.trainer import TrainConfig, train
from sr_models.registry import build_model

# the official scheme on a small model: what the learning tests train
OFFICIAL = {
    "training": "session-parallel",
    "optimizer": "adagrad",
    "momentum": 0.3,
    "clip_norm": 0.0,
    "n_negatives": 512,
    "sample_alpha": 0.5,
    "batch_size": 64,
    "model": {"constrained_embedding": True, "init": "glorot", "embed_dropout": 0.2},
}


@pytest.fixture(scope="module")
def beauty_slice(beauty_protocol) -> TrainData:
    return slice_of(beauty_protocol)


def _session(sid: int, items: list[int], start: int) -> Session:
    return Session(sid, tuple(items), tuple(range(start, start + len(items))))


def test_session_examples_are_whole_sessions_in_order_of_their_first_event():
    sessions = [_session(0, [0, 1, 2], 50), _session(1, [3, 4], 10), _session(2, [5], 0), _session(3, [6, 7], 30)]
    examples = session_examples(sessions)
    assert examples.inputs == [[4], [7], [1, 2]]  # tokens = index + 1; the one-item session is dropped
    assert examples.targets == [[5], [8], [2, 3]]


def test_session_parallel_steps_on_hand_built_sessions():
    # sessions (tokens) A = 1 2 3 4, B = 5 6, C = 7 8 9, E = 11 12; two slots
    examples = session_examples(
        [_session(0, [0, 1, 2, 3], 0), _session(1, [4, 5], 1), _session(2, [6, 7, 8], 2), _session(3, [10, 11], 3)]
    )
    steps = [
        (s.inputs.tolist(), s.targets.tolist(), s.reset.tolist(), None if s.keep is None else s.keep.tolist())
        for s in session_parallel_steps(examples, batch_size=2)
    ]
    assert steps == [
        ([1, 5], [2, 6], [True, True], None),  # A and B start
        ([2, 7], [3, 8], [False, True], None),  # B ended: C takes its slot, with a fresh state
        ([3, 8], [4, 9], [False, False], None),
        ([11], [12], [True], [0]),  # A ended: E takes slot 0; C ended with no session left: slot 1 dropped
    ]
    assert [s.inputs.tolist() for s in session_parallel_steps(examples, 2, min_slots=2)] == [[1, 5], [2, 7], [3, 8]]


def test_session_parallel_steps_feed_every_event_once_in_order(beauty_protocol):
    sessions = beauty_protocol.valid.train[:500]
    examples = session_examples(sessions)
    slots: list[int] = []  # which session each slot is feeding
    started = 0
    seen: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for step in session_parallel_steps(examples, batch_size=32):
        if step.keep is not None:
            slots = [slots[i] for i in step.keep.tolist()]
        for row, fresh in enumerate(step.reset.tolist()):
            if fresh:  # a slot's session changes exactly where the state is reset
                if row < len(slots):
                    slots[row] = started
                else:
                    slots.append(started)
                started += 1
        assert len(slots) == len(step.inputs)
        for row, (x, y) in enumerate(zip(step.inputs.tolist(), step.targets.tolist(), strict=True)):
            seen[slots[row]].append((x, y))
    assert started == len(examples)
    for index, (inputs, targets) in enumerate(zip(examples.inputs, examples.targets, strict=True)):
        assert seen[index] == list(zip(inputs, targets, strict=True))  # every pair once, in session order
    assert sum(len(v) for v in seen.values()) == sequence_examples(sessions, 1000).n_targets


def test_stepping_the_gru_from_a_zero_state_is_the_whole_sequence_forward():
    torch.manual_seed(0)
    for constrained in (True, False):
        encoder = GRU4RecEncoder(50, 8, 10, 0.0, n_layers=2, constrained_embedding=constrained, init="glorot").eval()
        session = torch.tensor([[3, 7, 7, 12, 1]])
        state = encoder.initial_state(1, torch.device("cpu"))
        outputs = []
        for t in range(session.shape[1]):
            out, state = encoder.step(session[:, t], state)
            outputs.append(out)
        whole = encoder(session, torch.tensor([5]))
        torch.testing.assert_close(torch.stack(outputs, 1), whole)


def test_the_trainer_resets_the_state_at_session_starts_and_never_backpropagates_through_it(beauty_protocol):
    examples = session_examples(beauty_protocol.valid.train[:200])
    encoder = GRU4RecEncoder(len(beauty_protocol.dataset.catalog), 8, 10, 0.0, constrained_embedding=True)
    calls: list[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]] = []
    real_step = encoder.step

    def spy(tokens_, state, **kwargs):
        out, new = real_step(tokens_, state, **kwargs)
        calls.append((tokens_, state[0], new, [h.requires_grad for h in state]))
        return out, new

    encoder.step = spy  # type: ignore[method-assign]
    config = TrainConfig(epochs=1, batch_size=16, training="session-parallel", loss="sampled", n_negatives=64)
    train(encoder, examples, config)
    steps = list(session_parallel_steps(examples, 16))
    assert len(calls) == len(steps)
    previous = None
    for (_, state_in, new, grads), step in zip(calls, steps, strict=True):
        assert not any(grads)  # detached: no back-propagation through time
        assert (state_in[step.reset] == 0).all()  # a new session starts from zero
        if previous is not None:  # a continuing session carries its slot's state on
            carried = previous if step.keep is None else previous[step.keep]
            torch.testing.assert_close(state_in[~step.reset], carried[~step.reset].detach())
        previous = new[0]
    assert steps[0].reset.all()


def test_bpr_max_and_sampled_cross_entropy_match_their_formulas():
    torch.manual_seed(0)
    scores = torch.randn(3, 5, requires_grad=True)
    bpreg = 0.7
    expected = 0.0
    for i in range(3):
        negatives = [j for j in range(5) if j != i]
        weights = torch.softmax(scores[i, negatives], 0)
        ranking = sum(w * torch.sigmoid(scores[i, i] - scores[i, j]) for w, j in zip(weights, negatives, strict=True))
        expected += -torch.log(ranking) + bpreg * sum(
            w * scores[i, j] ** 2 for w, j in zip(weights, negatives, strict=True)
        )
    loss = bpr_max_loss(scores, bpreg)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    correction = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    manual = sum(-torch.log_softmax(scores[i] - correction, 0)[i] for i in range(3))
    torch.testing.assert_close(sampled_softmax_loss(scores, correction), manual)
    big = torch.full((4, 6), 60.0)  # saturated scores stay finite
    assert math.isfinite(bpr_max_loss(final_activation("elu-1")(big), 1.0).item())
    with pytest.raises(ValueError, match="final activation"):
        final_activation("softplus")


def test_popularity_sampler_follows_count_to_the_alpha_and_never_draws_unseen_items():
    counts = np.array([0, 1, 4, 16, 0])
    sampler = PopularitySampler(counts, 0.5, torch.Generator().manual_seed(0), buffer=4)
    draws = torch.cat([sampler.draw(1000) for _ in range(20)]).numpy()
    frequency = np.bincount(draws, minlength=5) / len(draws)
    assert frequency[0] == frequency[4] == 0
    np.testing.assert_allclose(frequency[1:4], np.array([1, 2, 4]) / 7, atol=0.01)


def test_adagrad_momentum_updates_only_the_rows_a_step_touched():
    table = torch.nn.Parameter(torch.ones(6, 3))
    dense = torch.nn.Parameter(torch.ones(6, 3))
    sparse_opt = AdagradM([table], lr=0.1, momentum=0.5)
    dense_opt = AdagradM([dense], lr=0.1, momentum=0.5)
    for rows in ([0, 1], [1, 2], [1, 2]):
        for weight, optimiser, sparse in ((table, sparse_opt, True), (dense, dense_opt, False)):
            optimiser.zero_grad()
            torch.nn.functional.embedding(torch.tensor(rows), weight, sparse=sparse).sum().backward()
            optimiser.step()
    # row 0 was seen once: its velocity is not applied again later (the dense update keeps moving it)
    assert table[0, 0].item() == pytest.approx(1 - 0.1 / math.sqrt(1 + 1e-6))
    assert dense[0, 0].item() < table[0, 0].item()
    assert torch.equal(table[3:].detach(), torch.ones(3, 3))
    # a row touched every step moves as dense Adagrad with momentum does
    assert table[1, 0].item() == pytest.approx(dense[1, 0].item())


def test_tied_embeddings_share_one_table():
    encoder = GRU4RecEncoder(30, 8, 10, 0.0, constrained_embedding=True)
    assert not hasattr(encoder, "item") and encoder.input_embedding() is encoder.output
    assert "item.weight" not in encoder.state_dict()
    separate = GRU4RecEncoder(30, 8, 10, 0.0)
    assert separate.input_embedding() is separate.item and "item.weight" in separate.state_dict()
    # a gradient from the input side reaches the output rows of the same items
    out, _ = encoder.step(torch.tensor([5]), encoder.initial_state(1, torch.device("cpu")))
    out.sum().backward()
    assert encoder.output.weight.grad[5].abs().sum() > 0


# the record every GRU4Rec artefact had before the official scheme (the defaults then): key 4a12e59ddbc0472f
EARLIER_RECORD = {
    "semantic": "none",
    "semantic_source": None,
    "dim": 128,
    "max_len": 50,
    "dropout": 0.3,
    "lr": 0.002,
    "weight_decay": 0.0,
    "batch_size": 128,
    "max_epochs": 10,
    "patience": 2,
    "epochs": None,
    "loss": "ce",
    "n_negatives": None,
    "sample_alpha": None,
    "model": {},
    "seed": 0,
}


def test_records_keep_the_earlier_keys_and_read_absent_settings_as_the_earlier_scheme():
    from sr_models.neural.artifacts import params_key
    from sr_models.neural.gru4rec import EARLIER, LEGACY_MODEL

    earlier = hyper_parameters("gru4rec", **{**EARLIER, "model": LEGACY_MODEL})
    assert earlier == EARLIER_RECORD and params_key("gru4rec", earlier) == "4a12e59ddbc0472f"
    # an earlier record read back: absent settings are the earlier scheme's, not today's defaults
    assert hyper_parameters("gru4rec", **constructor_args(EARLIER_RECORD, "gru4rec")) == EARLIER_RECORD
    assert hyper_parameters("gru4rec", semantic="fusion")["model"] == {}  # SemSR-F keeps the earlier scheme
    official = hyper_parameters("gru4rec", **{**OFFICIAL, "loss": "bpr-max", "final_act": "elu-1"})
    assert official["training"] == "session-parallel" and official["final_act"] == "elu-1"
    assert hyper_parameters("gru4rec", **constructor_args(official, "gru4rec")) == official
    assert "training" not in hyper_parameters("gru4rec", semantic="fusion")
    with pytest.raises(ConfigError, match="loss"):
        hyper_parameters("gru4rec", training="batches", loss="bpr-max")
    with pytest.raises(ConfigError, match="training"):
        hyper_parameters("sasrec", training="session-parallel")
    with pytest.raises(ConfigError, match="training"):
        hyper_parameters("gru4rec", semantic="fusion", training="session-parallel")
    with pytest.raises(ConfigError, match="final_act"):
        hyper_parameters("gru4rec", **{**OFFICIAL, "loss": "bpr-max", "final_act": "elu-x"})


LOSSES = [
    ("bpr-max", {"loss": "bpr-max", "final_act": "elu-1", "bpreg": 1.0, "lr": 0.05}),
    ("sampled", {"loss": "sampled", "logq": 1.0, "lr": 0.05}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("label", "extra"), LOSSES, ids=[label for label, _ in LOSSES])
def test_session_parallel_losses_learn_on_real_beauty_slice(label, extra, beauty_slice, tmp_path):
    settings = {**TINY, **OFFICIAL, "dropout": 0.0, "max_epochs": 2, "patience": 3, **extra}
    model = build_model("gru4rec", env=cpu_env(tmp_path), **settings).fit(beauty_slice)
    history = model.history
    assert all(math.isfinite(record["train_loss"]) for record in history[1:])
    best = max(history[1:], key=lambda record: record["ndcg@20"])
    floor = popularity_metrics(beauty_slice)
    assert best["ndcg@20"] > floor["ndcg@20"] and best["hr@20"] >= floor["hr@20"]
    # the artefact round-trips: the loaded model has the same record and the same scores
    prompts = [c.prompt for c in beauty_slice.valid_cases[:5]]
    loaded = load_recommender(model.artifact_path, env=cpu_env(None))
    assert loaded.params() == model.params()
    np.testing.assert_allclose(loaded.score(prompts), model.score(prompts), rtol=1e-5, atol=1e-5)


def test_an_earlier_gru4rec_artefact_loads_as_the_earlier_encoder(beauty_slice, tmp_path):
    sessions = beauty_slice.sessions[-200:]
    small = TrainData(sessions, beauty_slice.catalog, beauty_slice.valid_cases[:30], "beauty-tiny", "valid", "")
    from sr_models.neural.gru4rec import EARLIER, LEGACY_MODEL

    earlier = {**EARLIER, "model": LEGACY_MODEL, **TINY, "max_epochs": 1}
    model = build_model("gru4rec", env=cpu_env(tmp_path), **earlier).fit(small)
    assert not {"training", "optimizer"} & set(model.params())
    loaded = load_recommender(model.artifact_path, env=cpu_env(None))
    assert loaded.hyper["model"] == {} and hasattr(loaded.encoder, "item")
    prompts = [c.prompt for c in small.valid_cases[:3]]
    np.testing.assert_allclose(loaded.score(prompts), model.score(prompts), rtol=1e-5, atol=1e-5)
