"""Where the replay runs: in this process, in worker processes of this machine, or across a Ray cluster.

All yield (cases, results) batches to the harness, which writes them to cases.jsonl as they arrive, so
resume-after-kill works the same way whichever executor ran. Process and Ray workers rebuild the pipeline
from its :class:`PipelineSpec` (name, dataset, fold, overrides, settings): nothing but plain data crosses.

A replay through the graph is Python-bound (LangGraph's step loop, the nodes' glue, explanations): threads
share one interpreter lock, so a long graph replay runs in :class:`ProcessExecutor`'s processes, one per
core (``settings.replay_workers``), each running ``graph.batch`` over its batches of the cases through the
same compiled graph. :func:`replay_executor` picks it for graph pipelines with enough cases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from evals.pipelines import RankingPipeline
from sessiondata.errors import ConfigError
from sessiondata.protocol import EvalCase
from sr_models.base import Recommendation

Batch = tuple[Sequence[EvalCase], list[Recommendation]]


@dataclass(frozen=True)
class PipelineSpec:
    """Enough to rebuild a pipeline anywhere: its name, the dataset, the fold and the overrides."""

    name: str
    dataset: str
    fold: str = "test"
    overrides: dict[str, Any] = field(default_factory=dict)
    loader: str | None = None


class Executor(Protocol):
    def run(
        self, pipeline: RankingPipeline, spec: PipelineSpec, cases: Sequence[EvalCase], k: int, exclude_seen: bool
    ) -> Iterator[Batch]: ...


class LocalExecutor:
    """Batches in this process (the graph itself runs a batch's cases concurrently in threads)."""

    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size

    def run(
        self, pipeline: RankingPipeline, spec: PipelineSpec, cases: Sequence[EvalCase], k: int, exclude_seen: bool
    ) -> Iterator[Batch]:
        for start in range(0, len(cases), self.batch_size):
            batch = cases[start : start + self.batch_size]
            yield batch, pipeline.rank(batch, k, exclude_seen=exclude_seen)


_WORKER: dict[str, Any] = {}  # the pipeline and cases a ProcessExecutor worker built once


def _start_worker(spec: dict[str, Any], settings: dict[str, Any]) -> None:
    """Process-pool initializer: build this worker's pipeline and index its fold's cases by id, once."""
    from evals.pipelines import build_pipeline
    from semsr.settings import Settings, apply_threads
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    project = Settings.model_validate(settings)
    apply_threads(project)
    protocol = build_protocol(load_dataset(spec["dataset"], spec.get("loader")), project.protocol)
    _WORKER["pipeline"] = build_pipeline(spec["name"], protocol, spec["fold"], settings=project, **spec["overrides"])
    _WORKER["cases"] = {case.case_id: case for case in protocol.fold(spec["fold"]).cases}


def _rank_batch(
    case_ids: list[str], k: int, exclude_seen: bool
) -> list[tuple[str, list[int], list[float], dict[str, Any] | None]]:
    cases = [_WORKER["cases"][case_id] for case_id in case_ids]
    results = _WORKER["pipeline"].rank(cases, k, exclude_seen=exclude_seen)
    return [(c.case_id, r.items, r.scores, r.extras) for c, r in zip(cases, results, strict=True)]


class ProcessExecutor:
    """Batches of cases over ``workers`` processes of this machine, each with its own copy of the pipeline
    (built once per process from the :class:`PipelineSpec`; a graph pipeline only loads its prepared
    profile). Batches come back as each finishes; BLAS threads are split between the workers."""

    def __init__(self, settings: Any, *, workers: int, batch_size: int = 256) -> None:
        self.settings = settings
        self.workers = workers
        self.batch_size = batch_size

    def run(
        self, pipeline: RankingPipeline, spec: PipelineSpec, cases: Sequence[EvalCase], k: int, exclude_seen: bool
    ) -> Iterator[Batch]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        by_id = {case.case_id: case for case in cases}
        threads = max(1, self.settings.threads // self.workers)
        settings = self.settings.model_copy(update={"threads": threads, "progress": False}).model_dump(mode="json")
        batches = [[c.case_id for c in cases[i : i + self.batch_size]] for i in range(0, len(cases), self.batch_size)]
        context = multiprocessing.get_context("spawn")  # no fork of a process holding OpenMP/BLAS threads
        pool = ProcessPoolExecutor(self.workers, context, _start_worker, (asdict(spec), settings))
        try:
            pending = {pool.submit(_rank_batch, batch, k, exclude_seen) for batch in batches}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    rows = future.result()
                    batch = [by_id[case_id] for case_id, *_ in rows]
                    yield batch, [Recommendation(items, scores, extras) for _, items, scores, extras in rows]
        finally:  # a failed or abandoned replay does not wait for the batches nobody will read
            pool.shutdown(wait=True, cancel_futures=True)


MIN_CASES_PER_WORKER = 500  # below this a worker's start (loading data and profile, ~5 s) costs more than it saves


def replay_executor(pipeline: RankingPipeline, settings: Any, n_cases: int) -> Executor:
    """Processes for a graph pipeline with enough cases (``settings.replay_workers`` > 1), else this process."""
    from evals.graph_pipelines import GraphPipeline

    workers = min(settings.replay_workers, n_cases // MIN_CASES_PER_WORKER)
    if isinstance(pipeline, GraphPipeline) and workers > 1:
        return ProcessExecutor(settings, workers=workers, batch_size=settings.batch_size)
    return LocalExecutor(settings.batch_size)


def _rank_shard(
    spec: dict[str, Any], settings: dict[str, Any], case_ids: list[str], k: int, exclude_seen: bool
) -> list[tuple[str, list[int], list[float], dict[str, Any] | None]]:
    """Ray task body: rebuild settings, protocol and pipeline, rank this shard's cases."""
    from evals.pipelines import build_pipeline
    from semsr.settings import Settings, apply_threads
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    project = Settings.model_validate(settings)  # the driver's settings, shipped as plain data
    apply_threads(project)
    protocol = build_protocol(load_dataset(spec["dataset"], spec.get("loader")), project.protocol)
    pipeline = build_pipeline(spec["name"], protocol, spec["fold"], settings=project, **spec["overrides"])
    by_id = {case.case_id: case for case in protocol.fold(spec["fold"]).cases}
    cases = [by_id[case_id] for case_id in case_ids]
    results = pipeline.rank(cases, k, exclude_seen=exclude_seen)
    return [(c.case_id, r.items, r.scores, r.extras) for c, r in zip(cases, results, strict=True)]


class RayExecutor:
    """Shards the cases over Ray tasks and hands back each shard as it completes (any order).

    ``address=None`` starts (or joins) a local Ray instance; ``"auto"`` or ``ray://host:10001`` joins a
    cluster whose nodes can import this project and see the same ``SEMSR_HOME`` (shared disk), so
    trained artefacts and the embedding cache are reused rather than rebuilt per node.
    """

    def __init__(self, settings: Any, *, address: str | None = None, workers: int = 2, shard_size: int = 500) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("executor", "ray", "needs the 'ray' package: pip install 'semsr[ray]'") from None
        self.settings = settings
        self.address = address
        self.workers = workers
        self.shard_size = shard_size

    def run(
        self, pipeline: RankingPipeline, spec: PipelineSpec, cases: Sequence[EvalCase], k: int, exclude_seen: bool
    ) -> Iterator[Batch]:
        import ray

        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.workers,
                include_dashboard=False,
                ignore_reinit_error=True,
                log_to_driver=False,
            )
        task = ray.remote(num_cpus=1)(_rank_shard)
        by_id = {case.case_id: case for case in cases}
        size = max(1, min(self.shard_size, -(-len(cases) // self.workers)))
        shards = [[c.case_id for c in cases[i : i + size]] for i in range(0, len(cases), size)]
        settings = self.settings.model_dump(mode="json")
        pending = [task.remote(asdict(spec), settings, shard, k, exclude_seen) for shard in shards]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            rows = ray.get(done[0])
            batch = [by_id[case_id] for case_id, *_ in rows]
            yield batch, [Recommendation(items, scores, extras) for _, items, scores, extras in rows]
