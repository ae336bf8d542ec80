"""The report's "Ranking stage" section, for runs whose fusion is a fitted ranker: what its fit measured on
the validation fold (stored in the fusion's ``fitted_on``, :mod:`evals.ranker_eval`): candidate recall by
N per source and for the union, feature importances (a plot beside the report), weighted / RRF /
logistic / LambdaMART on the same candidates, and the leave-one-source-out ablation when
:mod:`evals.ranker_ablation` has been run for this very ranker. Nothing here reads the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.plots import importance_bars
from evals.ranker_ablation import ABLATION_FILE, ranker_identity

if TYPE_CHECKING:
    from evals.report import Run

SAME_CANDIDATES = (("weighted", "weighted z-scores"), ("rrf", "reciprocal rank"), ("learned", "logistic"))
METRICS = ("hr@20", "ndcg@20", "mrr@20")


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _cells(metrics: dict[str, float] | None) -> list[str]:
    return [f"{metrics[m]:.4f}" if metrics and m in metrics else "—" for m in METRICS]


def recall_lines(fitted: dict[str, Any], sources: list[str]) -> list[str]:
    recall = fitted.get("recall_by_n")
    if not recall:  # a ranker fitted before the table existed: its recall at what each source proposes
        at = fitted.get("candidate_recall", {})
        rows = [[name, f"{at[name]:.4f}"] for name in [*sources, "union"] if name in at]
        return ["Candidate recall (holdout, at each source's candidates):", "", *_table(rows, ["source", "recall"])]
    table = recall["by_n"]
    ns = list(table["union"])
    rows = [[f"`{name}`" if name != "union" else "**union**", *(f"{table[name][n]:.4f}" for n in ns)] for name in table]
    scope = f"{recall['scope']}, {recall['n_queries']} queries"
    intro = f"Candidate recall by N ({scope}; the union: every source's top N together):"
    return [intro, "", *_table(rows, ["source", *(f"N={n}" for n in ns)]), *choice_lines(fitted)]


def choice_lines(fitted: dict[str, Any]) -> list[str]:
    """Each source's list length as chosen on validation (:mod:`evals.candidate_choice`), when it was."""
    choice = fitted.get("candidate_choice")
    if not choice:
        return []
    chosen, at = choice["chosen"], choice["recall_at_chosen"]
    rows = [[f"`{s}`", str(n), f"{at[s]:.4f}"] for s, n in chosen.items()]
    rows.append(["**union**", str(sum(chosen.values())), f"{choice['union_recall']:.4f}"])
    grid = "/".join(str(n) for n in choice["grid"])
    intro = (
        f"List lengths chosen on validation ({choice['scope']}, {choice['n_queries']} queries; grid {grid}, "
        f"budget {choice['budget']} candidates; {choice['rule']}), what serving proposes:"
    )
    return ["", intro, "", *_table(rows, ["source", "chosen N", "recall at N"])]


def ablation_lines(run: Run, root: Path, fusion: dict[str, Any]) -> list[str]:
    path = root / ABLATION_FILE.format(profile=run.name)
    dataset = run.card["dataset"].get("spec") or run.card["dataset"]["name"]
    command = f"`python -m evals.ranker_ablation --profile {run.name} --dataset {dataset}`"
    if not path.exists():
        return [f"No leave-one-source-out ablation for this ranker yet: {command} writes it."]
    ablation = json.loads(path.read_text())
    if ablation.get("ranker") != ranker_identity(fusion):
        return [f"`{path.name}` ablated another ranker than this run's (stale): rerun {command}."]
    full = ablation["full"]["valid"]
    rows = [["all sources", *_cells(full), "—", f"{ablation['full'].get('union_recall') or 0:.4f}", "—"]]
    for source, result in ablation["without"].items():
        delta = result["valid"]["ndcg@20"] - full["ndcg@20"]
        cells = [f"{delta:+.4f}", f"{result['union_recall']:.4f}", f"{result['seconds']:.0f}"]
        rows.append([f"without `{source}`", *_cells(result["valid"]), *cells])
    header = ["ranker", *METRICS, "ΔNDCG@20", "union recall (slice)", "refit s"]
    intro = f"Leave-one-source-out ablation (each refit on the same queries, scored on the same slice; {command},"
    intro += f" {ablation['seconds']:.0f} s in all):"
    return [intro, "", *_table(rows, header)]


def ranking_section(runs: list[Run], root: Path, out: Path) -> tuple[list[str], list[Path]]:
    """Markdown lines and plot paths for every ranker run (none when no run's fusion is a ranker)."""
    lines: list[str] = []
    figures: list[Path] = []
    for run in runs:
        fusion = (run.card.get("params") or {}).get("fusion") or {}
        if fusion.get("strategy") != "ranker":
            continue
        fitted, sources = fusion.get("fitted_on", {}), list(fusion.get("sources", []))
        queries = fitted.get("queries", {})
        lines += ["", f"## Ranking stage: `{run.name}` (validation fold, never test)", ""]
        lines += [
            f"LambdaMART over {', '.join(f'`{s}`' for s in sources)}, trained on {queries.get('train', '?')} "
            f"validation queries (every prefix); early stopping and the fusion scores below on the slice of "
            f"{queries.get('holdout', '?')} {fitted.get('valid_scope', 'last-item queries of the latest sessions')}.",
            "",
            *recall_lines(fitted, sources),
            "",
            "The same candidates, fused four ways (fitted on the earlier validation sessions, scored on the slice):",
            "",
        ]
        rows = [[label, *_cells(fitted.get("same_candidates", {}).get(key))] for key, label in SAME_CANDIDATES]
        rows.append(["**LambdaMART (this ranker)**", *_cells(fitted.get("valid"))])
        lines += [*_table(rows, ["fusion", *METRICS]), "", *ablation_lines(run, root, fusion)]
        gains = fitted.get("importance_gain")
        if gains:
            path = out / f"importance-{run.name}.png"
            figure = importance_bars(f"{run.name}: feature importance (gain)", gains, path)
            figures.append(figure)
            lines += ["", f"![feature importance of {run.name}]({figure.name})"]
    return lines, figures
