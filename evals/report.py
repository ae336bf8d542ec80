"""The evaluation report: one markdown file plus PNG plots over a directory of pipeline runs.

Runs are comparable only when their protocol cards agree on everything but the pipeline (same data
fingerprint, split, filters, target rule, k, tie rule, exclude_seen and the very same cases); the report
refuses to put others side by side. Fused pipelines are tested against each of their components with a
paired bootstrap over the same cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evals.degraded import degraded_line
from evals.harness import CASES_FILE, METRICS_FILE, PROTOCOL_FILE, read_records
from evals.metrics import LENGTH_BUCKETS, bucket_label, paired_bootstrap_pvalue, per_case
from evals.published import published_metrics
from sessiondata.errors import ConfigError

COMPARABLE_KEYS = ("dataset", "fold", "filters", "target", "k", "ties", "exclude_seen", "cases_sha256", "limit")
HEADLINE = ("hr@20", "ndcg@20", "mrr@20", "hr@10", "mrr@10", "hr@50", "hr@100", "coverage@20")
RECALL_KS = (20, 50, 100)  # the recall claim is judged at each cut-off the runs were scored at
SEMANTIC = {"semantic", "llm-agent"}
FUSED_PREFIX = ("fused", "graph-")


@dataclass
class Run:
    name: str
    directory: Path
    card: dict[str, Any]
    metrics: dict[str, Any]
    ranks: dict[str, int | None]
    lengths: dict[str, int]
    timings: dict[str, list[float]]

    @classmethod
    def load(cls, directory: Path) -> Run:
        card = json.loads((directory / PROTOCOL_FILE).read_text())
        metrics = json.loads((directory / METRICS_FILE).read_text())
        records = read_records(directory / CASES_FILE)
        timings: dict[str, list[float]] = {}
        for record in records.values():
            for node, seconds in (getattr(record, "timings", None) or {}).items():
                timings.setdefault(node, []).append(float(seconds))
        return cls(
            name=str(card.get("pipeline", directory.name)),
            directory=directory,
            card=card,
            metrics=metrics,
            ranks={case_id: r.rank for case_id, r in records.items()},
            lengths={case_id: r.prompt_length for case_id, r in records.items()},
            timings=timings,
        )

    @property
    def seconds_per_case(self) -> float:
        return float(self.metrics.get("seconds", 0.0)) / max(int(self.metrics.get("n_cases", 1)), 1)


def comparable_identity(card: dict[str, Any]) -> dict[str, Any]:
    identity = {key: card.get(key) for key in COMPARABLE_KEYS}
    split = dict(card.get("split") or {})
    identity["split"] = {k: split.get(k) for k in ("rule", "test_fraction", "valid_fraction", "n_cases")}
    return identity


def check_comparable(runs: list[Run]) -> None:
    """Raise ConfigError naming the first pair of runs whose protocol cards disagree, and on what."""
    if not runs:
        raise ConfigError("runs", "[]", "no evaluation runs to compare")
    reference = comparable_identity(runs[0].card)
    for run in runs[1:]:
        identity = comparable_identity(run.card)
        differing = sorted(key for key in identity if identity[key] != reference[key])
        if differing:
            raise ConfigError(
                "runs",
                f"{runs[0].name} vs {run.name}",
                f"not comparable: their protocol cards differ in {differing}",
            )


def load_runs(root: Path, names: list[str] | None = None) -> list[Run]:
    directories = [root / name for name in names] if names else sorted(p.parent for p in root.glob(f"*/{METRICS_FILE}"))
    missing = [str(d) for d in directories if not (d / METRICS_FILE).exists()]
    if missing:
        raise ConfigError("runs", missing[0], "has no metrics.json: run `semsr eval` into it first")
    return [Run.load(d) for d in directories]


def per_case_values(run: Run, case_ids: list[str], metric: str, k: int = 20) -> np.ndarray:
    return per_case([run.ranks[c] for c in case_ids], k)[metric]


def significance(runs: list[Run], k: int = 20) -> list[dict[str, Any]]:
    """Paired bootstrap of every fused pipeline against every other pipeline, per metric."""
    case_ids = sorted(runs[0].ranks)
    rows = []
    for fused in [r for r in runs if r.name.startswith(FUSED_PREFIX)]:
        for other in runs:
            if other is fused or other.name.startswith(FUSED_PREFIX):
                continue
            row: dict[str, Any] = {"fused": fused.name, "vs": other.name}
            for metric in ("hr", "mrr", "ndcg"):
                a, b = per_case_values(fused, case_ids, metric, k), per_case_values(other, case_ids, metric, k)
                row[f"{metric}@{k} diff"] = float(a.mean() - b.mean())
                row[f"{metric}@{k} p"] = paired_bootstrap_pvalue(a, b)
            rows.append(row)
    return rows


def claims(runs: list[Run]) -> list[str]:
    """Do the paper's claims hold here? Semantic leads recall, data-driven leads MRR, fusion beats both."""
    by_name = {r.name: r.metrics["metrics"] for r in runs}
    semantic = [n for n in by_name if n in SEMANTIC]
    fused = [n for n in by_name if n.startswith(FUSED_PREFIX)]
    data_driven = [n for n in by_name if n not in SEMANTIC and not n.startswith(FUSED_PREFIX) and n != "popularity"]
    lines = []
    ks = [k for k in RECALL_KS if all(f"hr@{k}" in metrics for metrics in by_name.values())]
    if semantic and data_driven:
        for k in ks:
            metric = f"hr@{k}"
            best_sem = max(semantic, key=lambda n: by_name[n][metric])
            best_dd_hr = max(data_driven, key=lambda n: by_name[n][metric])
            holds = by_name[best_sem][metric] > by_name[best_dd_hr][metric]
            lines.append(
                f"- Semantic methods lead on recall (HR@{k}): **{'holds' if holds else 'does not hold'}** — best "
                f"semantic `{best_sem}` {by_name[best_sem][metric]:.4f} vs best data-driven `{best_dd_hr}` "
                f"{by_name[best_dd_hr][metric]:.4f}."
            )
        best_sem = max(semantic, key=lambda n: by_name[n]["hr@20"])
        best_dd_mrr = max(data_driven, key=lambda n: by_name[n]["mrr@20"])
        holds = by_name[best_dd_mrr]["mrr@20"] > by_name[best_sem]["mrr@20"]
        lines.append(
            f"- Data-driven models lead on MRR: **{'holds' if holds else 'does not hold'}** — `{best_dd_mrr}` "
            f"MRR@20 {by_name[best_dd_mrr]['mrr@20']:.4f} vs `{best_sem}` {by_name[best_sem]['mrr@20']:.4f}."
        )
    if fused and (semantic or data_driven):
        best_fused = max(fused, key=lambda n: by_name[n]["ndcg@20"])
        others = semantic + data_driven
        judged = ["hr@20", "mrr@20", "ndcg@20", *(f"hr@{k}" for k in ks if k != 20)]
        beaten = [n for n in others if all(by_name[best_fused][m] > by_name[n][m] for m in judged)]
        holds = len(beaten) == len(others)
        names = ", ".join(m.upper() for m in judged)
        lines.append(
            f"- Fusion beats both: **{'holds' if holds else 'does not hold'}** — `{best_fused}` beats "
            f"{len(beaten)} of {len(others)} single sources on {names} at once."
        )
    return lines


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_cell(run: Run, metric: str) -> str:
    value = run.metrics["metrics"].get(metric)
    if value is None:
        return "—"
    interval = run.metrics.get("ci95", {}).get(metric)
    if interval:
        return f"{value:.4f} [{interval['ci95_low']:.4f}, {interval['ci95_high']:.4f}]"
    return f"{value:.4f}"


def subset_section(full: list[Run], partial: list[Run]) -> list[str]:
    """Slow pipelines run on the first N cases only: compare them with every full run on those same cases."""
    lines: list[str] = []
    for run in partial:
        case_ids = sorted(run.ranks)
        if any(case_id not in other.ranks for other in full for case_id in case_ids):
            continue
        n = len(case_ids)
        lines += ["", f"### On the {n} cases `{run.name}` was run on (its limit)", ""]
        rows = []
        for other in [*full, run]:
            values = {m: per_case_values(other, case_ids, m).mean() for m in ("hr", "ndcg", "mrr")}
            rows.append([other.name, *(f"{values[m]:.4f}" for m in ("hr", "ndcg", "mrr"))])
        lines.append(_table(rows, ["pipeline", "hr@20", "ndcg@20", "mrr@20"]))
        note = "intervals on so few cases are wide: one hit moves HR@20 by " + f"{1 / n:.4f}"
        lines += ["", note]
    return lines


def write_report(
    root: Path, out: Path | None = None, names: list[str] | None = None, partial: list[str] | None = None
) -> Path:
    """Write ``report.md`` and plots for the runs under ``root``; return the report's path.

    ``names`` are the runs over the full test split (they must be comparable); ``partial`` are runs
    limited to the first N cases, reported on their own subset beside the full runs.
    """
    runs = load_runs(root, names)
    check_comparable(runs)
    partial_runs = load_runs(root, partial) if partial else []
    out = out or root / "report"
    out.mkdir(parents=True, exist_ok=True)
    from evals.plots import plot_all

    figures = plot_all(runs, out)
    dataset = runs[0].card["dataset"]["name"]
    sections = [f"# SemSR evaluation report: {dataset}", ""]
    sections += ["## Protocol", "", "```json", json.dumps(comparable_identity(runs[0].card), indent=2), "```", ""]
    sections += ["## Results (test split; 95% bootstrap intervals)", ""]
    sections.append(
        _table(
            [[r.name, *(_metric_cell(r, m) for m in HEADLINE), f"{1000 * r.seconds_per_case:.1f}"] for r in runs],
            ["pipeline", *HEADLINE, "ms/case"],
        )
    )
    flagged = [f"- `{r.name}`: {line}" for r in runs + partial_runs if (line := degraded_line(r.metrics))]
    sections += ["", "## Degraded cases", ""]
    sections += flagged or ["No case of any run was answered degraded (every source of every case answered)."]
    published = published_metrics(dataset)
    if published:
        sections += ["", "## Beside the published numbers (same 4,469 test cases)", ""]
        rows = [
            [r.name, "SemSR", *(f"{r.metrics['metrics'].get(m, float('nan')):.4f}" for m in HEADLINE)] for r in runs
        ]
        rows += [[n, "published", *(f"{v[m]:.4f}" if m in v else "—" for m in HEADLINE)] for n, v in published.items()]
        sections.append(_table(rows, ["model", "source", *HEADLINE]))
    sections += ["", "## Do the paper's claims hold on this data?", "", *claims(runs)]
    from evals.report_ranking import ranking_section

    sections += ranking_section(runs, root, out)[0]  # its importance plots are shown inside it
    significance_rows = significance(runs)
    if significance_rows:
        sections += ["", "## Fused vs each component (paired bootstrap, two-sided p)", ""]
        header = ["fused", "vs", "ΔHR@20", "p", "ΔMRR@20", "p", "ΔNDCG@20", "p"]
        rows = [
            [
                row["fused"],
                row["vs"],
                f"{row['hr@20 diff']:+.4f}",
                f"{row['hr@20 p']:.3f}",
                f"{row['mrr@20 diff']:+.4f}",
                f"{row['mrr@20 p']:.3f}",
                f"{row['ndcg@20 diff']:+.4f}",
                f"{row['ndcg@20 p']:.3f}",
            ]
            for row in significance_rows
        ]
        sections.append(_table(rows, header))
    sections += ["", "## By prompt length (HR@20 / MRR@20)", ""]
    labels = [bucket_label(low, high) for low, high in LENGTH_BUCKETS]
    rows = []
    for run in runs:
        buckets = run.metrics.get("by_prompt_length", {})
        rows.append(
            [run.name]
            + [
                f"{buckets[label]['hr@20']:.3f} / {buckets[label]['mrr@20']:.3f}" if label in buckets else "—"
                for label in labels
            ]
        )
    counts = runs[0].metrics.get("by_prompt_length", {})
    sections.append(
        _table(rows, ["pipeline", *(f"{label} (n={counts.get(label, {}).get('n_cases', 0)})" for label in labels)])
    )
    latency_rows = []
    for run in runs:
        for node, values in sorted(run.timings.items()):
            array = np.asarray(values) * 1000
            latency_rows.append([run.name, node, f"{np.percentile(array, 50):.2f}", f"{np.percentile(array, 95):.2f}"])
    if latency_rows:
        sections += ["", "## Per-node latency in the graph (ms per case)", ""]
        sections.append(_table(latency_rows, ["pipeline", "node", "p50", "p95"]))
    usage = [(r.name, r.metrics.get("llm_usage")) for r in runs if r.metrics.get("llm_usage")]
    if usage:
        sections += ["", "## LLM tokens and cost", ""]
        sections.append(
            _table([[n, json.dumps(u)] for n, u in usage], ["pipeline", "usage (tokens in/out, calls, seconds, cost)"])
        )
    if partial_runs:
        sections += ["", "## Slow pipelines on a subset of the test cases", *subset_section(runs, partial_runs)]
        usage = [(r.name, r.metrics.get("llm_usage")) for r in partial_runs if r.metrics.get("llm_usage")]
        if usage:
            sections += ["", "LLM usage: " + "; ".join(f"`{n}` {json.dumps(u)}" for n, u in usage)]
    sections += ["", "## Plots", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    path = out / "report.md"
    path.write_text("\n".join(sections) + "\n")
    return path
