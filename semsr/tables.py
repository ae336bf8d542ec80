"""Readable tables of results for the terminal and for markdown reports."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from evals.published import COLUMNS, published_metrics

HEADERS = {
    "hr@20": "HR@20",
    "ndcg@20": "NDCG@20",
    "mrr@20": "MRR@20",
    "hr@10": "HR@10",
    "ndcg@10": "NDCG@10",
    "mrr@10": "MRR@10",
    "hr@50": "HR@50",
    "hr@100": "HR@100",
    "coverage@20": "Cov@20",
}


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def results_table(
    ours: Mapping[str, Mapping[str, float]], dataset: str, *, title: str = "", show_published: bool = True
) -> Table:
    """Our pipelines (metrics dicts by name) above the published rows for the same test set."""
    table = Table(title=title or f"{dataset}: test split", header_style="bold")
    table.add_column("model")
    table.add_column("source")
    for column in COLUMNS:
        table.add_column(HEADERS[column], justify="right")
    for name, metrics in ours.items():
        table.add_row(name, "SemSR", *(_cell(metrics.get(column)) for column in COLUMNS))
    if show_published:
        for name, metrics in published_metrics(dataset).items():
            table.add_row(name, "published", *(_cell(metrics.get(column)) for column in COLUMNS), style="dim")
    return table


def results_markdown(ours: Mapping[str, Mapping[str, float]], dataset: str) -> str:
    """The same table as :func:`results_table`, in markdown."""
    lines = ["| model | source | " + " | ".join(HEADERS[c] for c in COLUMNS) + " |"]
    lines.append("|---|---|" + "---:|" * len(COLUMNS))
    for name, metrics in ours.items():
        lines.append(f"| {name} | SemSR | " + " | ".join(_cell(metrics.get(c)) for c in COLUMNS) + " |")
    for name, metrics in published_metrics(dataset).items():
        lines.append(f"| {name} | published | " + " | ".join(_cell(metrics.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
