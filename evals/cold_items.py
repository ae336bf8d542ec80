"""Cold-item slice on the validation fold: how well each source ranks items it never saw in training.

``python -m evals.cold_items --dataset DATASET --out DIR [--share 0.1] [--seed 0]``

A seeded share of the items of the validation fold's training sessions (sub-train) is hidden: every event
of them is removed from those sessions (a session left empty is dropped), and the models are fitted on what
remains. The slice's cases are the validation cases whose target is hidden (``target-cold``); the metrics
also break out the cases whose every prompt item is hidden too (``all-cold``). Each variant writes
``DIR/VARIANT/`` (cases.jsonl, metrics.json, protocol.json, through :func:`evals.harness.evaluate`) and a
summary lands in ``DIR/summary.json``. The standard protocol is untouched: this derives a second protocol
whose validation fold is the cold one and whose training digest names the hidden items, so nothing fitted
here is mistaken for (or reused as) a standard artefact. Test sessions are never read.

Data-driven models (V-SKNN, sequential rules) cannot rank an item they never saw (expected ~0); the title
kNN can, when it is allowed to propose every catalogue item (``candidates="all"``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from graphs.profiles import PROFILES
from sessiondata.errors import ConfigError
from sessiondata.protocol import FoldName, Protocol
from sessiondata.schema import Session

# variant name -> (registry model, overrides on top of its tuned parameters)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "title-knn-minilm": ("title-knn", {"candidates": "all", "center": False, "whiten": 0.0, "keep": 1.0}),
    "title-knn-whitened": ("title-knn", {"candidates": "all"}),
    # whitened + the opt-in contrastive adapter (embeddings/adapter.py), trained on the cold sub-train's pairs
    "title-knn-adapted": ("title-knn", {"candidates": "all", "adapter_epochs": 2, "adapter_lr": 1e-3}),
    "title-knn-tuned": ("title-knn", {}),  # as tuned and served (may restrict candidates to training items)
    "vsknn": ("vsknn", {}),
    "vsknn-sem": ("vsknn-sem", {}),  # neighbours through session vectors too: found for all-cold prompts
    "sr": ("sr", {}),
}


@dataclass(frozen=True)
class ColdProtocol(Protocol):
    """``Protocol`` whose validation fold is the cold one; its training digest also names the hidden items."""

    hidden_key: str = ""

    def train_digest(self, fold: FoldName) -> str:
        base = super().train_digest(fold)
        if fold == "test":
            return base
        return hashlib.sha256(f"{base}:cold:{self.hidden_key}".encode()).hexdigest()[:16]


def _without(session: Session, hidden: frozenset[int]) -> Session | None:
    kept = [(i, t) for i, t in zip(session.items, session.times, strict=True) if i not in hidden]
    if not kept:
        return None
    return Session(session.session_id, tuple(i for i, _ in kept), tuple(t for _, t in kept))


def cold_protocol(protocol: Protocol, share: float, seed: int) -> tuple[ColdProtocol, frozenset[int]]:
    """The validation fold with a seeded ``share`` of sub-train items hidden; its cases: cold targets only."""
    if not 0.0 < share < 1.0:
        raise ConfigError("share", share, "must be a fraction strictly between 0 and 1")
    valid = protocol.valid
    items = np.array(sorted(valid.train_items))
    size = max(1, round(share * len(items)))
    hidden = frozenset(int(i) for i in np.random.default_rng(seed).choice(items, size=size, replace=False))
    train = tuple(s for s in (_without(s, hidden) for s in valid.train) if s is not None)
    cases = tuple(c for c in valid.cases if c.target in hidden)
    if not cases:
        raise ConfigError("share", share, "no validation target is among the hidden items; hide a larger share")
    key = hashlib.sha256(json.dumps(sorted(hidden)).encode()).hexdigest()[:12]
    fold = replace(valid, train=train, cases=cases)
    cold = ColdProtocol(
        dataset=protocol.dataset,
        config=protocol.config,
        split_rule=protocol.split_rule,
        test=protocol.test,
        valid=fold,
        hidden_key=key,
    )
    return cold, hidden


def run(
    protocol: Protocol, out: Path, settings: Any, *, share: float, seed: int, variants: list[str]
) -> dict[str, Any]:
    """Fit each variant on the cold sub-train and evaluate it on the cold slice; returns the summary."""
    from evals.harness import evaluate, score_directory
    from evals.pipelines import RecommenderPipeline
    from sr_models.base import train_data
    from sr_models.registry import build_model

    unknown = [v for v in variants if v not in VARIANTS and v not in PROFILES]
    if unknown:
        raise ConfigError("variant", unknown[0], f"choose among {sorted(VARIANTS)} or a serving profile")
    cold, hidden = cold_protocol(protocol, share, seed)  # bad input fails here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    all_cold = [c.case_id for c in cold.valid.cases if all(i in hidden for i in c.prompt)]
    summary: dict[str, Any] = {
        "dataset": protocol.dataset.name,
        "fold": "valid",
        "share": share,
        "seed": seed,
        "n_hidden_items": len(hidden),
        "n_train_sessions": len(cold.valid.train),
        "n_cases_target_cold": len(cold.valid.cases),
        "n_cases_all_cold": len(all_cold),
        "variants": {},
    }
    extra = {"cold_items": {k: v for k, v in summary.items() if k != "variants"} | {"hidden_key": cold.hidden_key}}
    for name in variants:
        if name in PROFILES:
            pipeline = _graph_pipeline(name, cold, out, settings)
        else:
            model_name, overrides = VARIANTS[name]
            model = build_model(model_name, protocol.dataset.name, env=settings.model_env(progress=False), **overrides)
            model.fit(train_data(cold, "valid"))
            pipeline = RecommenderPipeline(name, model)
        result = evaluate(pipeline, cold, out / name, fold="valid", progress=False, extra_card=extra)
        row: dict[str, Any] = {"target-cold": _headline(result.metrics)}
        row["hidden_items_recommended"] = _hidden_recommended(out / name, cold, hidden)
        if all_cold:
            row["all-cold"] = _headline(score_directory(out / name, cold, all_cold, fold="valid"))
        summary["variants"][name] = row
        print(name, json.dumps(row), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _graph_pipeline(name: str, cold: ColdProtocol, out: Path, settings: Any) -> Any:
    """Serving profile ``name`` prepared on the cold protocol in its own home (``OUT/home``: the user's
    manifests are never overwritten; the embedding cache, Chroma store and tuned parameters are shared, read
    through links) and replayed through the graph on the cold validation fold. The validation fold of a
    profile fuses by reciprocal rank (its fitted fusion exists only for the test fold); any fusion, the
    ranker included, orders only the union of the sources' candidates, which ``hidden_items_recommended``
    inspects."""
    from evals.graph_pipelines import GraphPipeline
    from evals.prepare import prepare_profile

    home = out / "home"
    home.mkdir(parents=True, exist_ok=True)
    for part in ("embeddings", "chroma", "tuned"):
        link, source = home / part, settings.paths.home / part
        if source.exists() and not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=True)
    local = settings.model_copy(update={"home": home})
    prepare_profile(name, cold, local, progress=False, fit=False)
    return GraphPipeline(name, local, dataset=cold.dataset.spec or cold.dataset.name, fold="valid")


def _hidden_recommended(run_dir: Path, protocol: Protocol, hidden: frozenset[int]) -> int:
    """How many (case, item) entries of the run's 100-item lists are hidden items (0: the run never
    proposes an item it did not see in training)."""
    from evals.harness import CASES_FILE, read_records

    catalog = protocol.dataset.catalog
    records = read_records(run_dir / CASES_FILE).values()
    return sum(catalog.index_of(item) in hidden for record in records for item in record.recommendations)


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics["metrics"].items() if k in ("hr@20", "hr@100", "mrr@20")}


def main(argv: list[str] | None = None) -> None:
    from semsr.settings import apply_threads, load_settings
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="a loader dataset: amazon-beauty, csv:DIR, recbole:DIR")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--share", type=float, default=0.1, help="share of sub-train items to hide")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        default=",".join([*VARIANTS, "fused"]),
        help=f"comma-separated: {list(VARIANTS)} or serving profiles (fused)",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    apply_threads(settings)
    protocol = build_protocol(load_dataset(args.dataset), settings.protocol)
    try:
        run(protocol, args.out, settings, share=args.share, seed=args.seed, variants=args.variants.split(","))
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
