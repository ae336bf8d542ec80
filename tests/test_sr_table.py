"""The torch results table: mean ± sd over seeds, tuning runs (validation only) left out, the doc's table
block rewritten only by ``report``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from evals.sr_table import COLUMNS, END, START, report


def write_summary(out: Path, model: str, seed: int, hr: float, *, test: bool = True, device: str | None = None) -> None:
    metrics = {column: hr / 2 for column in COLUMNS} | {"hr@20": hr}
    fold = {"metrics": metrics, "fit_seconds": 1.0, "epochs_run": 3, "best_epoch": 3, "seconds_per_epoch": 2.0}
    summary = {"model": model, "seed": seed, "valid": fold if seed == 0 else None, "test": fold if test else None}
    if device:
        summary["device"] = device
    path = out / model / f"seed{seed}" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary))


def row_of(table: str, model: str) -> list[str]:
    rows = [line for line in table.splitlines() if line.startswith(f"| {model} |")]
    assert len(rows) == 1, table
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_report_averages_seeds_and_skips_tuning_runs(tmp_path):
    out = tmp_path / "runs"
    hrs = [0.11, 0.12, 0.125]
    for seed, hr in enumerate(hrs):
        write_summary(out, "msgat-semf", seed, hr, device="cuda")
    write_summary(out, "niser+lr1e-3", 0, 0.2, test=False)  # a --valid-only run
    write_summary(out, "niser", 0, 0.09)  # an older summary without the device field
    table = report(out, None)
    cells = row_of(table, "msgat-semf")
    assert cells[1] == "3"
    assert cells[2] == f"{statistics.mean(hrs):.4f} ± {statistics.stdev(hrs):.4f}"
    assert cells[-1] == "cuda"
    assert row_of(table, "niser")[-1] == "cpu"
    assert "niser+lr1e-3" not in table


def test_only_report_rewrites_the_doc_block(tmp_path):
    out = tmp_path / "runs"
    write_summary(out, "sasrec", 0, 0.08)
    doc = tmp_path / "doc.md"
    original = f"intro\n{START}\nold table\n{END}\noutro\n"
    doc.write_text(original)
    report(out, None)
    assert doc.read_text() == original
    table = report(out, doc)
    assert doc.read_text() == f"intro\n{START}\n{table}{END}\noutro\n"
