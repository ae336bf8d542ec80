"""Where the replay runs: in this process, or sharded across a Ray cluster.

Both yield (cases, results) batches to the harness, which writes them to cases.jsonl as they arrive, so
resume-after-kill works the same way whichever executor ran. Ray workers rebuild the pipeline from its
:class:`PipelineSpec` (name, dataset, fold, overrides, settings): nothing but plain data crosses the wire.
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
