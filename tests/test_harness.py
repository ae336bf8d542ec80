"""The evaluation harness: the cases.jsonl contract, resume after a kill, refusal to mix runs."""

from __future__ import annotations

import json

import pytest

from evals.harness import CASES_FILE, evaluate, read_records
from evals.metrics import per_case, rank_of
from evals.pipelines import RecommenderPipeline, build_pipeline, train_data
from sessiondata.errors import ConfigError
from sr_models.popularity import Popularity


@pytest.fixture(scope="module")
def popularity(beauty_protocol):
    return RecommenderPipeline("popularity", Popularity().fit(train_data(beauty_protocol, "test")))


def test_cases_jsonl_contract_and_metrics_match_an_independent_scorer(tmp_path, beauty_protocol, popularity):
    result = evaluate(popularity, beauty_protocol, tmp_path, limit=300, progress=False)
    lines = (tmp_path / CASES_FILE).read_text().splitlines()
    assert len(lines) == 300
    first = json.loads(lines[0])
    assert {"session_id", "target", "recommendations"} <= set(first)
    assert isinstance(first["target"], int) and all(isinstance(i, int) for i in first["recommendations"])
    assert beauty_protocol.config.k_values == (5, 10, 20, 50, 100)
    assert len(first["recommendations"]) == 100  # the largest cut-off: HR@100 is scored from the file
    # the first test case is the first test session with its last item as target
    case = beauty_protocol.test.cases[0]
    assert first["session_id"] == case.session_id
    assert first["target"] == beauty_protocol.dataset.catalog.ids[case.target]
    # an independent scorer reading only the file gets the same numbers
    records = [json.loads(line) for line in lines]
    ranks = [rank_of(r["target"], r["recommendations"]) for r in records]
    for k in beauty_protocol.config.k_values:
        expected = per_case(ranks, k)
        for metric in ("hr", "mrr", "ndcg"):
            assert result.metrics["metrics"][f"{metric}@{k}"] == pytest.approx(expected[metric].mean())
    protocol_card = json.loads((tmp_path / "protocol.json").read_text())
    assert protocol_card["pipeline"] == "popularity" and protocol_card["limit"] == 300
    assert json.loads((tmp_path / "metrics.json").read_text())["n_cases"] == 300


def test_prompt_items_are_never_recommended(tmp_path, beauty_protocol, popularity):
    evaluate(popularity, beauty_protocol, tmp_path, limit=200, progress=False)
    catalog = beauty_protocol.dataset.catalog
    by_id = {c.case_id: c for c in beauty_protocol.test.cases}
    for record in read_records(tmp_path / CASES_FILE).values():
        prompt = {catalog.ids[i] for i in by_id[record.case_id].prompt}
        assert not prompt & set(record.recommendations)


def test_a_killed_run_resumes_without_losing_or_repeating_cases(tmp_path, beauty_protocol, popularity):
    evaluate(popularity, beauty_protocol, tmp_path, limit=120, batch_size=50, progress=False)
    path = tmp_path / CASES_FILE
    # simulate a kill in the middle of writing a line
    content = path.read_bytes()
    path.write_bytes(content + b'{"case_id": "999", "session_id": 9')
    result = evaluate(popularity, beauty_protocol, tmp_path, limit=400, batch_size=50, progress=False)
    assert result.n_new_cases == 280
    ids = [json.loads(line)["case_id"] for line in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 400
    assert ids == [c.case_id for c in beauty_protocol.test.cases[:400]]
    # a complete rerun writes nothing new
    assert evaluate(popularity, beauty_protocol, tmp_path, limit=400, progress=False).n_new_cases == 0


def test_a_directory_of_another_run_is_refused(tmp_path, beauty_protocol, popularity, settings):
    evaluate(popularity, beauty_protocol, tmp_path, limit=20, progress=False)
    other = build_pipeline("sr", beauty_protocol, "test", settings=settings)
    with pytest.raises(ConfigError, match=r"different run.*pipeline"):
        evaluate(other, beauty_protocol, tmp_path, limit=20, progress=False)


def test_cases_without_a_protocol_card_are_refused(tmp_path, beauty_protocol, popularity):
    (tmp_path / CASES_FILE).write_text("")
    with pytest.raises(ConfigError, match=r"no protocol\.json"):
        evaluate(popularity, beauty_protocol, tmp_path, limit=5, progress=False)


def test_non_positive_limit_is_refused(tmp_path, beauty_protocol, popularity):
    with pytest.raises(ConfigError, match="limit=0"):
        evaluate(popularity, beauty_protocol, tmp_path, limit=0, progress=False)
