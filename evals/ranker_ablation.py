"""Remove each source in turn: refit the ranker on the same validation queries without it and score it on
the same later-in-time slice the full ranker stopped on (validation only, never the test split).

It costs one feature pass and one LightGBM fit per source (about as long as the ranker's own fit, per
source), so it is an explicit command rather than part of ``semsr prepare``::

    python -m evals.ranker_ablation --profile fused --dataset amazon-beauty

It writes ``<runs_dir>/<dataset>/ranker_ablation-<profile>.json`` beside the runs, where the report's
"Ranking stage" section reads it; the file names the ranker it ablated (validation digest, features,
best iteration), so the report never shows an ablation of another ranker.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from evals.ranker_eval import holdout_metrics
from evals.ranker_fit import Query, build_rows, gather_candidates, prefix_queries, ranked_sources, train_ranker
from graphs.ranker import RankerFusion
from graphs.services import ProfileServices, ServingProfile
from graphs.state import Candidate
from semsr.settings import Settings, apply_threads, load_settings
from sessiondata.errors import ConfigError
from sessiondata.loaders import load_dataset
from sessiondata.protocol import Protocol, build_protocol

ABLATION_FILE = "ranker_ablation-{profile}.json"


def ranker_identity(fusion: dict[str, Any]) -> dict[str, Any]:
    """What names one fitted ranker: the report matches an ablation to a run's fusion by it."""
    return {
        "valid_digest": fusion.get("fitted_on", {}).get("valid_digest"),
        "features": fusion.get("features"),
        "best_iteration": fusion.get("best_iteration"),
    }


def ablate(
    serving: ServingProfile,
    queries: list[Query],
    per_query: list[dict[str, list[Candidate]]],
    *,
    settings: Settings,
    progress: bool,
) -> dict[str, Any]:
    """Per removed source: the refit ranker's holdout metrics, its best iteration and the union's recall."""
    sources = ranked_sources(serving.spec)
    out: dict[str, Any] = {}
    for removed in sources:
        started = time.perf_counter()
        kept = [s for s in sources if s != removed]
        train, stop = build_rows(serving, queries, per_query, seed=settings.seed, sources=kept, progress=progress)
        model = train_ranker(train, stop, kept, threads=settings.threads, seed=settings.seed)
        matrix, _, _ = stop.stacked()
        out[removed] = {
            "valid": holdout_metrics(model.score_matrix(matrix, threads=settings.threads), stop),
            "union_recall": sum(r >= 0 for r in stop.target_rows) / max(len(stop.target_rows), 1),
            "best_iteration": model.best_iteration,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if progress:
            print(f"ablation: without {removed}: {out[removed]}", flush=True)
    return out


def run_ablation(settings: Settings, protocol: Protocol, profile: str, out: Path | None = None) -> Path:
    """Ablate ``profile``'s prepared ranker on ``protocol``'s validation fold; write and return the JSON."""
    started = time.perf_counter()
    services = ProfileServices(settings)
    spec_name = protocol.dataset.spec or protocol.dataset.name
    fusion = services.manifest(profile, spec_name).fusion
    if not fusion or fusion.get("strategy") != "ranker":
        raise ConfigError(
            "profile", profile, "has no fitted ranker: run `semsr prepare --profile` with a ranker profile"
        )
    # the ranker as the test fold serves it (the valid fold serves a placeholder: it is what the fit replays)
    fitted = RankerFusion.load(settings.home / fusion["artifact"]["path"]).model_dump(mode="json")
    serving = services.profile(profile, "valid", dataset=spec_name)
    queries = prefix_queries(protocol)
    per_query = gather_candidates(serving, queries, progress=settings.progress)
    result = {
        "profile": profile,
        "dataset": spec_name,
        "ranker": ranker_identity(fitted),
        "scope": fitted["fitted_on"].get("valid_scope"),
        "full": {
            "valid": fitted["fitted_on"].get("valid"),
            "union_recall": fitted["fitted_on"].get("candidate_recall", {}).get("union"),
        },
        "without": ablate(serving, queries, per_query, settings=settings, progress=settings.progress),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    path = out or settings.runs_dir / protocol.dataset.name / ABLATION_FILE.format(profile=profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="fused")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--loader", default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: beside the runs)")
    args = parser.parse_args(argv)
    settings = load_settings()
    apply_threads(settings)
    protocol = build_protocol(load_dataset(args.dataset, args.loader), settings.protocol)
    print(run_ablation(settings, protocol, args.profile, args.out))


if __name__ == "__main__":
    main()
