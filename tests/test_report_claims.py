"""The report's "do the paper's claims hold" section judges recall at every cut-off 20, 50 and 100."""

from __future__ import annotations

from pathlib import Path

from evals.report import HEADLINE, Run, claims
from sessiondata.protocol import ProtocolConfig


def _run(name: str, metrics: dict[str, float]) -> Run:
    return Run(name, Path(name), {}, {"metrics": metrics}, {}, {}, {})


def test_recall_claim_is_judged_at_each_cut_off_and_fusion_on_all_of_them() -> None:
    assert ProtocolConfig().k_values == (5, 10, 20, 50, 100)
    assert {"hr@50", "hr@100"} <= set(HEADLINE)
    base = {"ndcg@20": 0.05, "mrr@20": 0.03}
    runs = [
        _run("semantic", base | {"hr@20": 0.09, "hr@50": 0.15, "hr@100": 0.20}),
        _run("vsknn", base | {"hr@20": 0.10, "hr@50": 0.14, "hr@100": 0.17, "mrr@20": 0.04}),
        _run("fused", {"ndcg@20": 0.07, "mrr@20": 0.05, "hr@20": 0.12, "hr@50": 0.16, "hr@100": 0.18}),
    ]
    lines = claims(runs)
    recall = [line for line in lines if "lead on recall" in line]
    assert [line.split("(")[1].split(")")[0] for line in recall] == ["HR@20", "HR@50", "HR@100"]
    assert "does not hold" in recall[0] and "**holds**" in recall[1] and "**holds**" in recall[2]
    fusion = next(line for line in lines if "Fusion beats both" in line)
    # fused is best at 20 and 50 but not at 100 (semantic 0.20 > 0.18): judged there too, so it fails
    assert "does not hold" in fusion and "HR@100" in fusion and "beats 1 of 2" in fusion
    # runs scored only at 20 (older cards) are judged at 20 alone
    old = [_run(r.name, {k: v for k, v in r.metrics["metrics"].items() if k not in ("hr@50", "hr@100")}) for r in runs]
    assert len([line for line in claims(old) if "lead on recall" in line]) == 1
