"""The evaluation protocol on the real Beauty data and on a synthetic temporal dataset."""

from __future__ import annotations

import pytest

from sessiondata.errors import ConfigError
from sessiondata.protocol import LeakageError, ProtocolConfig, build_protocol, check_no_leakage
from sessiondata.schema import Catalog, Dataset, Session


def test_beauty_yields_the_published_4469_test_cases(beauty_protocol):
    test = beauty_protocol.test
    assert len(test.train) == 17_890
    assert len(test.cases) == 4_469
    assert beauty_protocol.split_rule == "predefined"
    # every case: target is the last kept item, prompt the earlier ones, all seen in train
    known = test.train_items
    for case in test.cases:
        assert case.target in known and set(case.prompt) <= known
        assert len(case.prompt) >= 1


def test_beauty_targets_are_last_items_of_filtered_sessions(beauty, beauty_protocol):
    known = beauty_protocol.test.train_items
    sessions = {s.session_id: s for s in beauty.sessions}
    for case in beauty_protocol.test.cases[:500]:
        kept = [i for i in sessions[case.session_id].items if i in known]
        assert (*case.prompt, case.target) == tuple(kept)


def test_validation_fold_is_cut_from_train_only_and_earlier_than_test(beauty_protocol):
    valid, test = beauty_protocol.valid, beauty_protocol.test
    train_ids = {s.session_id for s in test.train}
    valid_ids = {c.session_id for c in valid.cases}
    assert valid_ids <= train_ids
    assert not valid_ids & {c.session_id for c in test.cases}
    assert {s.session_id for s in valid.train} <= train_ids
    assert max(s.end_time for s in valid.train) <= min(s.end_time for s in test.train if s.session_id in valid_ids)
    assert 0.15 < len(valid.cases) / len(test.train) < 0.25


def test_protocol_card_records_every_choice(beauty_protocol):
    card = beauty_protocol.card("test", pipeline="x")
    assert card["dataset"]["n_sessions"] == 22_363
    assert card["dataset"]["n_items"] == 12_101
    assert card["dataset"]["n_events"] == 198_502
    assert len(card["dataset"]["sha256"]) == 16
    assert card["split"]["n_cases"] == 4_469
    assert card["ties"] == "conservative" and card["exclude_seen"] is True
    assert card["k"] == [5, 10, 20, 50, 100] and card["target"] == "last"
    assert card["pipeline"] == "x"


def _toy(times_by_session: dict[int, list[int]], items_by_session: dict[int, list[int]], n_items: int = 6) -> Dataset:
    sessions = tuple(
        Session(sid, tuple(items_by_session[sid]), tuple(times_by_session[sid])) for sid in times_by_session
    )
    catalog = Catalog(ids=tuple(range(n_items)), titles=tuple(f"item {i}" for i in range(n_items)))
    return Dataset("toy", sessions, catalog)


def test_temporal_split_orders_by_end_time_and_filters_unseen_items():
    items = {s: [s % 3, (s + 1) % 3, 3 if s == 9 else (s + 2) % 3] for s in range(10)}
    items[8] = [0, 5, 1]  # item 5 never occurs in train: removed, session keeps two items
    items[9] = [5, 4]  # only unseen items... 4 unseen too: the session is dropped
    times = {s: [100 * s, 100 * s + 1, 100 * s + 2][: len(items[s])] for s in range(10)}
    dataset = _toy(times, items)
    protocol = build_protocol(dataset, ProtocolConfig(test_fraction=0.2, valid_fraction=0.25))
    assert protocol.split_rule == "temporal"
    test = protocol.test
    assert {s.session_id for s in test.train} == set(range(8))
    assert [c.session_id for c in test.cases] == [8]
    assert test.cases[0].prompt == (0,) and test.cases[0].target == 1
    assert test.removed_events == 3 and test.dropped_sessions == 1


def test_every_prefix_target_rule():
    items = {s: [0, 1, 2, 3] for s in range(5)}
    times = {s: [s * 10 + j for j in range(4)] for s in range(5)}
    protocol = build_protocol(_toy(times, items), ProtocolConfig(target="every_prefix", valid_fraction=0.25))
    ids = [c.case_id for c in protocol.test.cases]
    assert ids == ["4#1", "4#2", "4#3"]
    assert protocol.test.cases[1].prompt == (0, 1) and protocol.test.cases[1].target == 2


def test_leakage_check_catches_a_train_session_ending_after_test(beauty_protocol):
    test = beauty_protocol.test
    late = test.train[0]
    heldout = [Session("x", late.items, tuple(t - 10**9 for t in late.times))]
    with pytest.raises(LeakageError, match="after a held-out session"):
        check_no_leakage(test, heldout)


def test_bad_protocol_settings_are_named():
    with pytest.raises(ValueError, match="test_fraction"):
        ProtocolConfig(test_fraction=1.5)
    with pytest.raises(ValueError, match="k_values"):
        ProtocolConfig(k_values=(0, 5))
    toy = _toy({0: [1, 2], 1: [3, 4]}, {0: [0, 1], 1: [1, 2]})
    with pytest.raises(ConfigError, match="split='predefined'"):
        build_protocol(toy, ProtocolConfig(split="predefined"))
