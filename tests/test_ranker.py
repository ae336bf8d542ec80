"""The learned ranking stage on a real slice of Beauty: ``semsr prepare`` fits a LambdaMART ranker on every
prefix of the validation sessions, saves it as LightGBM text with its feature list, serving reloads it
(sha256-checked) and the graph's fusion node ranks a session with it exactly as the ranker itself does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evals.prepare import prepare_profile
from evals.ranker_fit import RANKED_KINDS, prefix_queries, ranked_sources
from graphs.api import SemSR
from graphs.candidates import known_window, model_candidates
from graphs.context import Context
from graphs.ranker import BOOSTER_FILE, RANKER_FILE, RankerFusion
from graphs.ranker_features import PER_SOURCE, SHARED, feature_names
from graphs.services import ProfileServices
from sessiondata.errors import ConfigError

PROFILE = "fused"  # the default profile is the ranker


@pytest.fixture(scope="module")
def manifest(slice_prepared, slice_settings):
    """The default profile as the shared slice fixture prepared it (its ranker is fitted once per suite)."""
    return prepare_profile(PROFILE, slice_prepared, slice_settings, progress=False)


def test_the_ranker_trains_on_every_prefix_and_is_saved_as_lightgbm_text(manifest, slice_protocol, slice_settings):
    fusion = manifest.fusion
    assert fusion is not None and fusion["strategy"] == "ranker"
    directory = slice_settings.home / fusion["artifact"]["path"]
    booster_text = (directory / BOOSTER_FILE).read_text()
    assert booster_text.startswith("tree") and "objective=lambdarank" in booster_text  # LightGBM's text format
    saved = json.loads((directory / RANKER_FILE).read_text())
    sources = ranked_sources(manifest.profile)  # the query source is blended by its rule, not ranked
    assert (
        len(sources) == len(manifest.profile.sources) - 1
        and saved["sources"] == sources
        and saved["features"] == feature_names(sources)
    )
    fitted = saved["fitted_on"]
    # queries come from every prefix, not only the protocol's last item of each validation session
    assert fitted["queries"]["all_prefixes"] == len(prefix_queries(slice_protocol))
    assert fitted["queries"]["all_prefixes"] > len(slice_protocol.valid.cases)
    assert set(fitted["same_candidates"]) == {"weighted", "learned", "rrf"}
    assert 0.0 <= fitted["candidate_recall"]["vsknn"] <= fitted["candidate_recall"]["union"] <= 1.0
    reloaded = RankerFusion.load(directory)
    assert reloaded.best_iteration == saved["best_iteration"] and reloaded.features == saved["features"]


def test_the_graph_ranks_a_session_as_the_ranker_does(manifest, slice_protocol, slice_settings):
    case = slice_protocol.test.cases[0]
    ids = slice_protocol.dataset.catalog.ids
    answer = SemSR(slice_settings).recommend([ids[i] for i in case.prompt], k=10, context=Context(profile=PROFILE))
    assert answer.profile["name"] == PROFILE and len(answer.recommendations) == 10 and not answer.degraded
    scores = [r["score"] for r in answer.recommendations]
    assert scores == sorted(scores, reverse=True)
    assert not {ids[i] for i in case.prompt} & {r["item_id"] for r in answer.recommendations}
    assert all(set(r["contributions"]) <= set(manifest.profile.source_names) for r in answer.recommendations)

    serving = ProfileServices(slice_settings).profile(PROFILE, "test", dataset=slice_settings.dataset)
    window = list(case.prompt[-serving.spec.max_session_items :])
    results = {}
    chosen = manifest.fusion["fitted_on"].get("candidate_choice", {}).get("chosen", {})
    assert {s.name: s.candidates for s in serving.spec.sources if s.name in chosen} == chosen  # served as chosen
    for source in serving.spec.sources:
        if source.kind not in RANKED_KINDS:
            continue
        known = known_window(window, source.kind, serving.is_cold)
        if known:
            [results[source.name]] = model_candidates(
                serving.models[source.name], [known], [sorted(set(case.prompt))], source.candidates
            )
    items, fused, _ = serving.fusion.fuse(results, serving.ranker_context(window))
    assert [ids[i] for i in items[:10]] == [r["item_id"] for r in answer.recommendations]
    assert np.allclose(fused[:10], scores, atol=1e-5)


def test_missing_sources_are_flagged_and_a_changed_booster_is_refused(manifest, slice_settings):
    serving = ProfileServices(slice_settings).profile(PROFILE, "test", dataset=slice_settings.dataset)
    from graphs.ranker_features import ranker_features

    window = [0, 1]
    only = {"vsknn": [{"item": 5, "score": 2.0}, {"item": 9, "score": 1.0}]}
    items, matrix = ranker_features(only, ["vsknn", "sr"], serving.ranker_context(window))
    assert items.tolist() == [5, 9] and matrix.shape == (2, 2 * len(PER_SOURCE) + len(SHARED))
    assert matrix[:, 2].tolist() == [1.0, 2.0] and matrix[:, 3].tolist() == [0.0, 0.0]  # vsknn: ranks, present
    assert np.isnan(matrix[:, 4]).all() and matrix[:, 6].tolist() == [1.0, 1.0] and matrix[:, 7].tolist() == [1.0, 1.0]
    path = slice_settings.home / manifest.fusion["artifact"]["path"] / BOOSTER_FILE
    original = path.read_text()
    try:
        path.write_text(original.replace("tree", "tree ", 1))
        with pytest.raises(ConfigError, match="sha256 differs"):
            ProfileServices(slice_settings).profile(PROFILE, "test", dataset=slice_settings.dataset)
    finally:
        path.write_text(original)


def test_the_report_shows_the_ranking_stage_with_its_validation_numbers(
    manifest, slice_prepared, slice_settings, tmp_path
):
    """The report of a ranker run gains recall by N, the four fusions of the same candidates, the
    leave-one-source-out ablation (run here on the slice) and a feature-importance plot."""
    from evals.graph_pipelines import GraphPipeline
    from evals.harness import evaluate
    from evals.ranker_ablation import ABLATION_FILE, run_ablation
    from evals.report import Run, write_report
    from evals.report_ranking import ablation_lines

    fitted = manifest.fusion["fitted_on"]
    table = fitted["recall_by_n"]["by_n"]
    sources = ranked_sources(manifest.profile)
    assert fitted["recall_by_n"]["n_queries"] == len(slice_prepared.valid.cases)
    assert list(table["union"]) == ["10", "20", "50", "100"]  # capped at the 100 candidates each source proposes
    for n in table["union"]:
        assert max(table[s][n] for s in sources) <= table["union"][n] <= 1.0
    union = list(table["union"].values())
    assert union == sorted(union)  # a larger N never loses a target
    assert table["union"]["100"] > table["union"]["10"] > 0.0

    pipeline = GraphPipeline(PROFILE, slice_settings, dataset=slice_settings.dataset)
    evaluate(pipeline, slice_prepared, tmp_path / PROFILE, limit=5, progress=False)
    run = Run.load(tmp_path / PROFILE)
    assert "No leave-one-source-out ablation" in ablation_lines(run, tmp_path, run.card["params"]["fusion"])[0]
    path = run_ablation(slice_settings, slice_prepared, PROFILE, tmp_path / ABLATION_FILE.format(profile=PROFILE))
    ablation = json.loads(path.read_text())
    assert set(ablation["without"]) == set(sources) and ablation["full"]["valid"] == fitted["valid"]
    assert all(r["union_recall"] <= ablation["full"]["union_recall"] for r in ablation["without"].values())
    report = write_report(tmp_path, names=[PROFILE]).read_text()
    section = report.split(f"## Ranking stage: `{PROFILE}`")[1].split("\n## ")[0]
    assert f"| **union** | {table['union']['10']:.4f} | {table['union']['20']:.4f} |" in section
    assert f"| **LambdaMART (this ranker)** | {fitted['valid']['hr@20']:.4f} |" in section
    for key in ("weighted", "rrf", "learned"):
        assert f"{fitted['same_candidates'][key]['ndcg@20']:.4f}" in section
    for source in sources:
        assert f"| without `{source}` | {ablation['without'][source]['valid']['hr@20']:.4f} |" in section
    assert f"![feature importance of {PROFILE}](importance-{PROFILE}.png)" in section
    assert (tmp_path / "report" / f"importance-{PROFILE}.png").stat().st_size > 1000


@pytest.mark.extended
def test_the_wide_profile_serves_the_list_lengths_its_fit_chose_on_validation(slice_prepared, slice_settings, tmp_path):
    """``fused-wide``: nine sources gathered at the grid's largest N, each cut to the N chosen on the slice's
    validation prefixes; serving proposes exactly that, and the report lists the choice."""
    from evals.graph_pipelines import GraphPipeline
    from evals.harness import evaluate
    from evals.report import write_report

    wide = prepare_profile("fused-wide", slice_prepared, slice_settings, progress=False)
    choice = wide.fusion["fitted_on"]["candidate_choice"]
    spec = wide.profile
    assert set(choice["chosen"]) == set(ranked_sources(spec)) and set(choice["chosen"].values()) <= set(choice["grid"])
    assert sum(choice["chosen"].values()) <= spec.candidate_budget
    serving = ProfileServices(slice_settings).profile("fused-wide", "test", dataset=slice_settings.dataset)
    assert {s.name: s.candidates for s in serving.spec.sources if s.name in choice["chosen"]} == choice["chosen"]
    pipeline = GraphPipeline("fused-wide", slice_settings, dataset=slice_settings.dataset)
    evaluate(pipeline, slice_prepared, tmp_path / "fused-wide", limit=5, progress=False)
    section = write_report(tmp_path, names=["fused-wide"]).read_text().split("## Ranking stage: `fused-wide`")[1]
    for source, n in choice["chosen"].items():
        assert f"| `{source}` | {n} | {choice['recall_at_chosen'][source]:.4f} |" in section
