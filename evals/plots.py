"""Plots for the evaluation report (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from evals.metrics import LENGTH_BUCKETS, bucket_label

if TYPE_CHECKING:
    from evals.report import Run


def metric_bars(runs: list[Run], path: Path) -> Path:
    metrics = ("hr@20", "ndcg@20", "mrr@20")
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    for axis, metric in zip(axes, metrics, strict=True):
        names = [r.name for r in runs]
        values = [r.metrics["metrics"][metric] for r in runs]
        intervals = [r.metrics.get("ci95", {}).get(metric, {}) for r in runs]
        low = [v - i.get("ci95_low", v) for v, i in zip(values, intervals, strict=True)]
        high = [i.get("ci95_high", v) - v for v, i in zip(values, intervals, strict=True)]
        colours = ["tab:red" if n.startswith("fused") else "tab:blue" for n in names]
        axis.barh(names, values, xerr=[low, high], color=colours, capsize=3)
        axis.set_title(metric.upper())
        axis.invert_yaxis()
    figure.suptitle("Test metrics with 95% bootstrap intervals")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def metrics_by_k(runs: list[Run], path: Path) -> Path:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for metric, axis in zip(("hr", "mrr"), axes, strict=True):
        for run in runs:
            ks = [k for k in (5, 10, 20) if f"{metric}@{k}" in run.metrics["metrics"]]
            axis.plot(ks, [run.metrics["metrics"][f"{metric}@{k}"] for k in ks], marker="o", label=run.name)
        axis.set_xlabel("k")
        axis.set_title(f"{metric.upper()}@k")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def by_length(runs: list[Run], path: Path) -> Path:
    labels = [bucket_label(low, high) for low, high in LENGTH_BUCKETS]
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for run in runs:
        buckets = run.metrics.get("by_prompt_length", {})
        axis.plot(labels, [buckets.get(label, {}).get("hr@20", np.nan) for label in labels], marker="o", label=run.name)
    axis.set_xlabel("prompt length (items)")
    axis.set_ylabel("HR@20")
    axis.set_title("HR@20 by session length")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def quality_vs_cost(runs: list[Run], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for run in runs:
        x = max(run.seconds_per_case * 1000, 1e-3)
        y = run.metrics["metrics"]["ndcg@20"]
        axis.scatter([x], [y])
        axis.annotate(run.name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_xlabel("milliseconds per case (fit + ranking, this machine)")
    axis.set_ylabel("NDCG@20")
    axis.set_title("Quality against cost")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_all(runs: list[Run], out: Path) -> list[Path]:
    return [
        metric_bars(runs, out / "metrics.png"),
        metrics_by_k(runs, out / "metrics_by_k.png"),
        by_length(runs, out / "by_session_length.png"),
        quality_vs_cost(runs, out / "quality_vs_cost.png"),
    ]


def importance_bars(title: str, gains: dict[str, float], path: Path, top: int = 25) -> Path:
    """A ranker's features by total split gain (share of the whole), the strongest on top."""
    total = sum(gains.values()) or 1.0
    ranked = sorted(gains.items(), key=lambda item: item[1], reverse=True)[:top]
    figure, axis = plt.subplots(figsize=(8, 0.28 * len(ranked) + 1.2))
    axis.barh([name for name, _ in ranked], [100 * gain / total for _, gain in ranked], color="tab:green")
    axis.invert_yaxis()
    axis.set_xlabel("share of total split gain (%)")
    axis.set_title(title)
    axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
