"""Train, evaluate and tabulate the torch session recommenders on the Beauty protocol (``docs/sr_models.md``).

``run`` fits each model per seed on the validation fold (early stopping there, never on test), evaluates it
on the validation cases, refits on the full training sessions for the validated number of epochs and
evaluates on the test split, writing ``<out>/<model>/seed<S>/{valid,test}/`` (harness output) and
``summary.json``. ``report`` turns every ``summary.json`` into the mean and spread over seeds beside the
published numbers and rewrites the table block of ``docs/sr_models.md``.

    python -m evals.sr_table run --model niser --model niser-semf --seed 0 --seed 1 --seed 2
    python -m evals.sr_table run --model sasrec-semf --param fusion_residual=true --tag +residual
    python -m evals.sr_table run --model niser-semf --param lr=0.001 --tag +lr1e-3 --valid-only --out runs/tuning
    python -m evals.sr_table report

Settings come from the environment like every entry point's: ``SEMSR_HOME`` (artefacts, embeddings),
``SEMSR_PROTOCOL__*`` (the cases), ``SEMSR_THREADS`` and ``SEMSR_DEVICE`` (where torch trains).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from evals.experiment import parse_params
from evals.harness import evaluate
from evals.pipelines import RecommenderPipeline, build_pipeline
from evals.published import published_metrics
from semsr.settings import Settings, apply_threads, load_settings
from sessiondata.loaders import load_dataset
from sessiondata.protocol import build_protocol
from sr_models.neural.specs import neural_specs

COLUMNS = ("hr@20", "ndcg@20", "mrr@20", "hr@10", "ndcg@10", "mrr@10", "coverage@20")
DOC = Path("docs/sr_models.md")
START, END = "<!-- sr-table:start -->", "<!-- sr-table:end -->"
NO_RUN_CELLS = " | – | – | – | – | – |"  # valid hr, valid ndcg, epochs, s/epoch, device: rows without a run


def run_one(
    settings: Settings,
    name: str,
    seed: int,
    out: Path,
    dataset: str,
    progress: bool,
    params: dict[str, Any] | None = None,
    tag: str = "",
    validate: bool = True,
    valid_only: bool = False,
) -> dict[str, Any]:
    """Fit and evaluate ``name`` with ``seed``: on the validation fold first when ``validate`` (which also
    records the validated epoch count), then the test-fold refit for the recorded epochs. ``valid_only``
    stops after the validation fold: a tuning run that never sees the test split."""
    protocol = build_protocol(load_dataset(dataset, None), settings.protocol)
    label = f"{name}{tag}"
    target = out / label / f"seed{seed}"
    summary: dict[str, Any] = {"model": label, "seed": seed, "dataset": protocol.dataset.name, "valid": None}
    summary["test"] = None
    folds = ("valid",) if valid_only else ("valid", "test") if validate else ("test",)
    for fold in folds:
        started = time.perf_counter()
        overrides = {**(params or {}), "seed": seed, "progress": progress}
        pipeline = build_pipeline(name, protocol, fold, settings=settings, **overrides)  # type: ignore[arg-type]
        fit_seconds = time.perf_counter() - started
        assert isinstance(pipeline, RecommenderPipeline)
        model = pipeline.recommender
        result = evaluate(pipeline, protocol, target / fold, fold=fold, progress=progress)  # type: ignore[arg-type]
        history = [h for h in getattr(model, "history", []) if h["epoch"] > 0]
        epoch_seconds = [h["epoch_seconds"] for h in history]
        summary[fold] = {
            "metrics": {k: result.metrics["metrics"][k] for k in COLUMNS},
            "fit_seconds": round(fit_seconds, 1),
            "epochs_run": len(history),
            "best_epoch": getattr(model, "best_epoch", None),
            "seconds_per_epoch": round(statistics.mean(epoch_seconds), 1) if epoch_seconds else None,
            "artifact": str(getattr(model, "artifact_path", "")),
        }
        summary["params"] = model.params()
        summary["device"] = str(getattr(model, "device", "cpu"))  # seconds per epoch mean little without it
        logging.info("%s seed %d %s: %s", name, seed, fold, summary[fold]["metrics"])
    target.mkdir(parents=True, exist_ok=True)
    (target / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def record_path(settings: Settings, name: str, dataset: str, params: dict[str, Any]) -> Path:
    """Where a validation fit of ``name`` with ``params`` records its best epoch (seeds share the record)."""
    from sr_models.neural import NeuralRecommender
    from sr_models.registry import build_model

    model = build_model(name, dataset, env=settings.model_env(), **params)
    store = model.store() if isinstance(model, NeuralRecommender) else None
    if store is None:
        raise ValueError(f"{name} is not a torch model with an artefact store: it has no validated epoch record")
    return store.epochs_path(dataset, model.name, model.epoch_params())


def _fmt(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def report(out: Path, doc: Path | None, dataset: str = "amazon-beauty") -> str:
    """The markdown table of every ``summary.json`` under ``out``; rewrites the table block of ``doc``."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out.glob("*/seed*/summary.json")):
        summary = json.loads(path.read_text())
        if summary.get("test"):  # tuning runs (``--valid-only``) have no test numbers to tabulate
            rows.setdefault(summary["model"], []).append(summary)
    header = "| model | seeds | " + " | ".join(f"test {c}" for c in COLUMNS) + " | valid hr@20 | valid ndcg@20 |"
    header += " epochs (valid best) | s/epoch (valid fit) | device |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in sorted(rows, key=lambda n: (n.split("-")[0], n)):
        runs = rows[name]
        cells = [_fmt([r["test"]["metrics"][c] for r in runs]) for c in COLUMNS]
        validated = [r["valid"] for r in runs if r.get("valid")]
        valid = [_fmt([v["metrics"][c] for v in validated]) for c in ("hr@20", "ndcg@20")]
        epochs = ", ".join(str(v["best_epoch"]) for v in validated)
        speed = _fmt([v["seconds_per_epoch"] for v in validated if v["seconds_per_epoch"]], 1)
        devices = ", ".join(sorted({r.get("device", "cpu") for r in runs}))  # summaries before the field: CPU
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells + valid) + f" | {epochs} | {speed} | {devices} |")
    missing = [name for name, *_ in neural_specs() if name not in rows]
    for name in missing:
        lines.append(f"| {name} | 0 | " + " | ".join(["not run"] * len(COLUMNS)) + NO_RUN_CELLS)
    for name, metrics in published_metrics(dataset).items():
        cells = [f"{metrics[c]:.4f}" for c in COLUMNS]
        lines.append(f"| *published {name}* | – | " + " | ".join(cells) + NO_RUN_CELLS)
    table = "\n".join(lines) + "\n"
    if doc is not None and doc.exists():
        text = doc.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            doc.write_text(f"{head}{START}\n{table}{END}{tail}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--model", action="append", required=True)
    run_parser.add_argument("--seed", action="append", type=int)
    run_parser.add_argument("--out", type=Path, default=Path("runs/sr_models"))
    run_parser.add_argument("--dataset", default="amazon-beauty")
    run_parser.add_argument("--progress", action="store_true")
    run_parser.add_argument("--param", action="append", help="Hyper-parameter override KEY=VALUE (JSON value).")
    run_parser.add_argument("--tag", default="", help="Suffix of the row name for runs with --param overrides.")
    run_parser.add_argument(
        "--validate-every-seed",
        action="store_true",
        help="Run the validation fit for every seed (default: the first seed only; later seeds refit on the"
        " training sessions for the epochs it validated).",
    )
    run_parser.add_argument(
        "--skip-validation",
        action="store_true",
        help="No validation fit for any seed: refit for the epoch count an earlier run validated (parallel seeds).",
    )
    run_parser.add_argument(
        "--valid-only",
        action="store_true",
        help="Tuning: fit and evaluate on the validation fold only (never the test split).",
    )
    record_parser = sub.add_parser("record", help="Print the path of the validated-epoch record a run writes.")
    record_parser.add_argument("--model", required=True)
    record_parser.add_argument("--dataset", default="amazon-beauty")
    record_parser.add_argument("--param", action="append")
    report_parser = sub.add_parser("report")
    report_parser.add_argument("--out", type=Path, default=Path("runs/sr_models"))
    report_parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = load_settings()
    apply_threads(settings)
    if args.command == "record":
        print(record_path(settings, args.model, args.dataset, parse_params(args.param)))
        return
    if args.command == "run":
        for name in args.model:
            for position, seed in enumerate(args.seed or [0]):
                validate = args.validate_every_seed or (position == 0 and not args.skip_validation)
                params = parse_params(args.param)
                run_one(
                    settings,
                    name,
                    seed,
                    args.out,
                    args.dataset,
                    args.progress,
                    params,
                    args.tag,
                    validate,
                    args.valid_only,
                )
    # ``run`` only prints the table: runs side by side (experiments/sr_table_parallel.sh) must not race on the doc
    print(report(args.out, args.doc if args.command == "report" else None))


if __name__ == "__main__":
    main()
