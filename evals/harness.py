"""Replay held-out cases through a pipeline and write ``cases.jsonl``, ``protocol.json``, ``metrics.json``.

The output contract (relied on by outside scorers): one JSON object per case in ``cases.jsonl`` with
``session_id``, ``target`` and ``recommendations`` (ranked external item ids), plus extra fields. Lines
are flushed batch by batch, so a killed run loses at most the batch in flight, and a rerun into the same
directory resumes where it stopped (a torn last line is dropped and redone). Metrics are recomputed from
the file, exactly as an independent scorer would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from tqdm import tqdm

from evals.degraded import count_degraded
from evals.executors import Executor, LocalExecutor, PipelineSpec
from evals.metrics import rank_of, summarize
from evals.pipelines import RankingPipeline
from sessiondata.errors import ConfigError
from sessiondata.protocol import EvalCase, FoldName, Protocol
from sessiondata.schema import Catalog, ItemId, SessionId
from sr_models.base import Recommendation
from sr_models.popularity import item_counts

CASES_FILE = "cases.jsonl"
PROTOCOL_FILE = "protocol.json"
METRICS_FILE = "metrics.json"
# protocol-card fields that must match for a rerun to resume into an existing directory
IDENTITY_KEYS = ("dataset", "fold", "split", "filters", "target", "k", "ties", "exclude_seen", "pipeline", "params")


class CaseRecord(BaseModel):
    """One line of cases.jsonl (extra diagnostic fields, such as node timings, are kept as they come)."""

    model_config = ConfigDict(extra="allow")

    case_id: str
    session_id: SessionId
    target: ItemId
    recommendations: list[ItemId]
    scores: list[float]
    prompt_length: int
    rank: int | None


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    n_new_cases: int
    seconds: float


def _canonical(value: Any) -> str:
    """``value`` as canonical JSON text: what a value compares as once written and read back (tuples become
    lists, keys sorted, odd objects their ``str``), so a card in memory equals the same card read from disk."""
    return json.dumps(json.loads(json.dumps(value, default=str)), sort_keys=True)


def _identity(card: dict[str, Any]) -> dict[str, str]:
    """The card's identity fields, each as canonical JSON (see :func:`_canonical`)."""
    identity = {key: card.get(key) for key in IDENTITY_KEYS}
    split = dict(identity.get("split") or {})
    split.pop("n_cases", None)
    identity["split"] = split
    return {key: _canonical(value) for key, value in identity.items()}


def prepare_out_dir(out_dir: Path, card: dict[str, Any], *, replace_stale: bool = False) -> None:
    """Create ``out_dir`` or check that what it holds comes from the same run; write protocol.json.

    A directory holding another run is refused, unless ``replace_stale`` (the main job's own runs
    directory, where a changed model or fusion means the old results are stale): then it is emptied.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    protocol_path = out_dir / PROTOCOL_FILE
    if protocol_path.exists():
        previous = json.loads(protocol_path.read_text())
        before, now = _identity(previous), _identity(card)
        if before != now:
            differing = sorted(key for key in IDENTITY_KEYS if before[key] != now[key])
            if replace_stale:
                for name in (CASES_FILE, PROTOCOL_FILE, METRICS_FILE):
                    (out_dir / name).unlink(missing_ok=True)
                _write_json_atomic(protocol_path, card)
                return
            raise ConfigError(
                "out",
                str(out_dir),
                f"holds results of a different run (differs in {differing}); choose another --out or delete it",
            )
    elif (out_dir / CASES_FILE).exists():
        raise ConfigError("out", str(out_dir), f"has {CASES_FILE} but no {PROTOCOL_FILE}; cannot tell what it holds")
    _write_json_atomic(protocol_path, card)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(temporary, path)


def read_records(path: Path) -> dict[str, CaseRecord]:
    """Completed records by case id; a torn final line (killed mid-write) is cut off the file."""
    records: dict[str, CaseRecord] = {}
    if not path.exists():
        return records
    raw = path.read_bytes()
    good_end = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            record = CaseRecord.model_validate_json(line)
        except ValueError:
            break
        records[record.case_id] = record
        good_end += len(line)
    if good_end != len(raw):
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return records


def to_record(case: EvalCase, result: Recommendation, catalog: Catalog) -> CaseRecord:
    recommendations = [catalog.ids[i] for i in result.items]
    target = catalog.ids[case.target]
    return CaseRecord(
        case_id=case.case_id,
        session_id=case.session_id,
        target=target,
        recommendations=recommendations,
        scores=[round(float(s), 6) for s in result.scores],
        prompt_length=len(case.prompt),
        rank=rank_of(target, recommendations),
        **(result.extras or {}),
    )


def evaluate(
    pipeline: RankingPipeline,
    protocol: Protocol,
    out_dir: Path,
    *,
    fold: FoldName = "test",
    limit: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
    extra_card: dict[str, Any] | None = None,
    executor: Executor | None = None,
    spec: PipelineSpec | None = None,
    replace_stale: bool = False,
) -> EvalResult:
    """Replay ``fold``'s cases (the first ``limit`` if given) through ``pipeline`` into ``out_dir``.

    ``executor`` chooses where ranking runs (default: this process); a remote executor rebuilds the
    pipeline from ``spec``. Records are appended as batches come back, in whatever order they come.
    """
    if limit is not None and limit <= 0:
        raise ConfigError("limit", limit, "must be a positive number of cases")
    started = time.perf_counter()
    chosen = protocol.fold(fold)
    cases = chosen.cases[:limit] if limit is not None else chosen.cases
    card = protocol.card(fold, pipeline=pipeline.name, params=pipeline.params(), limit=limit, **(extra_card or {}))
    prepare_out_dir(out_dir, card, replace_stale=replace_stale)

    cases_path = out_dir / CASES_FILE
    done = read_records(cases_path)
    todo = [case for case in cases if case.case_id not in done]
    k = protocol.config.max_k
    catalog = protocol.dataset.catalog
    executor = executor or LocalExecutor(batch_size)
    spec = spec or PipelineSpec(pipeline.name, protocol.dataset.name, fold)
    with (
        cases_path.open("a", encoding="utf-8") as sink,
        tqdm(
            total=len(cases),
            initial=len(cases) - len(todo),
            desc=f"{pipeline.name} [{fold}]",
            unit="case",
            disable=not progress,
        ) as bar,
    ):
        for batch, ranked in executor.run(pipeline, spec, todo, k, protocol.config.exclude_seen):
            lines = [
                to_record(case, result, catalog).model_dump_json() for case, result in zip(batch, ranked, strict=True)
            ]
            sink.write("\n".join(lines) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            bar.update(len(batch))

    metrics = score_directory(out_dir, protocol, [case.case_id for case in cases], fold=fold)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    usage = getattr(pipeline, "usage", None)
    if callable(usage) and usage():
        metrics["llm_usage"] = usage()
    _write_json_atomic(out_dir / METRICS_FILE, metrics)
    return EvalResult(out_dir, metrics, len(todo), metrics["seconds"])


def session_shares(protocol: Protocol, fold: FoldName) -> np.ndarray:
    """Per item, the share of training sessions holding it (for novelty and popularity measures)."""
    train = protocol.fold(fold).train
    return item_counts(train, len(protocol.dataset.catalog), unit="session") / max(len(train), 1)


def score_directory(
    out_dir: Path, protocol: Protocol, case_ids: Sequence[str], *, fold: FoldName = "test"
) -> dict[str, Any]:
    """Metrics recomputed from cases.jsonl for exactly ``case_ids`` (missing or duplicate ids are errors)."""
    records = read_records(out_dir / CASES_FILE)
    missing = [case_id for case_id in case_ids if case_id not in records]
    if missing:
        raise ConfigError("cases", f"{len(missing)} missing", f"{out_dir / CASES_FILE} lacks e.g. case {missing[0]}")
    chosen = [records[case_id] for case_id in case_ids]
    catalog = protocol.dataset.catalog
    summary = summarize(
        [rank_of(record.target, record.recommendations) for record in chosen],
        [[catalog.index_of(item) for item in record.recommendations] for record in chosen],
        [record.prompt_length for record in chosen],
        protocol.config.k_values,
        n_items=len(catalog),
        session_share=session_shares(protocol, fold),
        seed=protocol.config.seed,
    )
    # a fault that lowered the numbers is said beside them (graph pipelines record each case's notes)
    summary["degraded"] = count_degraded((record.model_extra or {}).get("degraded") for record in chosen)
    return summary
