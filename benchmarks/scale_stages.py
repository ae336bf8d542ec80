"""The stages of the scale benchmark (:mod:`benchmarks.scale`), each run in its own process so its peak RSS
is its own: ``python -m benchmarks.scale_stages STAGE DATA_DIR [MODEL]`` prints one JSON line.

Every stage goes through the project's real paths: ``load_dataset("csv:DIR")`` and the protocol's split,
:func:`evals.prepare.prepare_source` / :func:`~evals.prepare.prepare_profile` for the models and the serving
profile, :func:`benchmarks.graph_latency.measure` and :class:`evals.graph_pipelines.GraphPipeline` for the
graph. Two substitutions, stated in the results: title vectors are MiniLM word vectors averaged per title
(``vectors``; the real MiniLM's titles/s is measured on a sample and extrapolated, since embedding 500k
titles takes longer than the rest of the benchmark), served through the ``file`` embedder (same 384-d
catalogue matrix, so the same serving cost); and the session models use the hyper-parameters tuned on
Beauty (copied as this dataset's tuning records), since tuning is not what is measured.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

VECTORS_FILE = "title_vectors.npz"
PROFILE = "fused"
SAMPLE_TITLES = 2_000  # titles embedded with the real MiniLM to measure its throughput
INDEX_SAMPLE = 20_000  # items added to a fresh Chroma collection to measure its throughput
RANKER_QUERIES = 4_000  # validation prefix queries the ranker learns from (a quarter above LARGE_ITEMS items)
LATENCY_REQUESTS, REPLAY_CASES = 200, 500  # halved above LARGE_ITEMS items, where a request costs more
LARGE_ITEMS = 200_000
NEURAL_MODEL = "gru4rec"
NEURAL_EVENTS_X_ITEMS = 16_000 * 12_000  # subsample so full-softmax work per stage stays alike at every size
TUNED_MODELS = ("vsknn", "sr", "title-knn")


def _settings(data: Path) -> Any:
    from embeddings.config import EmbedderConfig
    from semsr.settings import apply_threads, load_settings

    embedder = EmbedderConfig(kind="file", path=data / VECTORS_FILE)
    settings = load_settings(dataset=f"csv:{data}", profile=PROFILE, progress=False, embedder=embedder)
    apply_threads(settings)
    return settings


def _protocol(data: Path, settings: Any) -> tuple[Any, dict[str, float]]:
    from sessiondata.loaders import load_dataset
    from sessiondata.protocol import build_protocol

    started = time.perf_counter()
    dataset = load_dataset(f"csv:{data}")
    loaded = time.perf_counter()
    protocol = build_protocol(dataset, settings.protocol)
    return protocol, {"load_s": loaded - started, "protocol_s": time.perf_counter() - loaded}


def ensure_tuned(settings: Any, dataset: str) -> None:
    """This dataset's tuning records for the fused sources: Beauty's validation-tuned parameters, marked as
    copied, so ``semsr prepare`` does not run a random search the benchmark does not measure."""
    from sr_models.registry import SHIPPED_TUNED_DIR, tuned_path

    for model in TUNED_MODELS:
        path = tuned_path(settings.paths.tuned, dataset, model)
        if path.exists():
            continue
        record = json.loads(tuned_path(SHIPPED_TUNED_DIR, "amazon-beauty", model).read_text())
        record["selected_on"] = "copied from amazon-beauty's validation tuning (scale benchmark: cost, not accuracy)"
        record["dataset"] = {"name": dataset}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")


def stage_load(data: Path) -> dict[str, Any]:
    protocol, seconds = _protocol(data, _settings(data))
    fingerprint = protocol.dataset.fingerprint()
    return {
        **seconds,
        "n_items": fingerprint.n_items,
        "n_sessions": fingerprint.n_sessions,
        "n_events": fingerprint.n_events,
        "train_sessions": len(protocol.test.train),
        "test_cases": len(protocol.test.cases),
        "valid_cases": len(protocol.valid.cases),
    }


def stage_vectors(data: Path) -> dict[str, Any]:
    """Write the title vectors the ``file`` embedder serves, and measure the real MiniLM on a sample."""
    from scipy import sparse

    from embeddings.base import l2_normalise
    from embeddings.catalog import catalog_texts
    from embeddings.minilm import MiniLMProvider
    from sessiondata.loaders.csvpair import read_catalog

    settings = _settings(data)
    catalog = read_catalog(data / "items.csv", id_column="item_id", title_column="title")
    texts = catalog_texts(catalog)
    provider = MiniLMProvider(threads=settings.threads)
    provider.embed(["warm up"])
    n_sample = SAMPLE_TITLES // (4 if len(texts) > LARGE_ITEMS else 1)  # a throughput: a quarter does at large
    sample = np.random.default_rng(0).choice(len(texts), min(n_sample, len(texts)), replace=False)
    started = time.perf_counter()
    provider.embed([texts[i] for i in sample])
    per_second = len(sample) / (time.perf_counter() - started)
    started = time.perf_counter()
    split = [text.lower().split() for text in texts]
    vocabulary = {word: i for i, word in enumerate(sorted({w for words in split for w in words}))}
    word_vectors = provider.embed(list(vocabulary))
    columns = np.fromiter((vocabulary[w] for words in split for w in words), dtype=np.int64)
    pointers = np.concatenate([[0], np.cumsum([len(words) for words in split])])
    counts = sparse.csr_matrix((np.ones(columns.size, np.float32), columns, pointers), (len(texts), len(vocabulary)))
    vectors = l2_normalise(np.asarray(counts @ word_vectors, dtype=np.float32))
    np.savez(data / VECTORS_FILE, ids=np.asarray([str(i) for i in catalog.ids]), vectors=vectors)
    return {
        "minilm_titles_per_s": per_second,
        "minilm_sample_titles": int(sample.size),
        "minilm_catalogue_s_extrapolated": len(texts) / per_second,
        "word_vectors_s": time.perf_counter() - started,
        "vocabulary": len(vocabulary),
    }


def stage_index(data: Path) -> dict[str, Any]:
    """Chroma add throughput: the first ``INDEX_SAMPLE`` items into a fresh collection (vectors given)."""
    from embeddings.precomputed import FileEmbeddingProvider
    from sessiondata.loaders.csvpair import read_catalog
    from sessiondata.schema import Catalog
    from tools.chroma_index import CatalogIndex

    settings = _settings(data)
    catalog = read_catalog(data / "items.csv", id_column="item_id", title_column="title")
    n = min(INDEX_SAMPLE, len(catalog))
    sub = Catalog(ids=catalog.ids[:n], titles=catalog.titles[:n])
    provider = FileEmbeddingProvider(data / VECTORS_FILE)
    vectors = provider.embed_ids(list(sub.ids))
    with tempfile.TemporaryDirectory() as store:
        index = CatalogIndex(sub, "scale", provider=provider, chroma=settings.chroma, store_path=Path(store))
        report = index.build(vectors=vectors)
    per_second = n / report.add_seconds
    return {
        "chroma_items_added": n,
        "chroma_add_s": report.add_seconds,
        "chroma_items_per_s": per_second,
        "chroma_catalogue_s_extrapolated": len(catalog) / per_second,
        "extrapolated": n < len(catalog),
    }


def stage_fit(data: Path, model: str) -> dict[str, Any]:
    """One fused source fitted on the test fold's training sessions and saved (what ``prepare`` reuses)."""
    import shutil

    from evals.prepare import prepare_source, source_model
    from graphs.profiles import profile_spec

    settings = _settings(data)
    protocol, seconds = _protocol(data, settings)
    ensure_tuned(settings, protocol.dataset.name)
    source = profile_spec(PROFILE).source(model)
    fresh, directory = source_model(settings, protocol, protocol.dataset.spec, "test", source, progress=False)
    shutil.rmtree(directory, ignore_errors=True)  # a rerun times a real fit, not the reuse of a saved one
    if model == "title-knn":  # and fits its whitening again instead of reading the saved transform
        from embeddings.catalog import catalog_digest
        from embeddings.config import default_provider
        from embeddings.postprocess import transform_path

        provider_id = default_provider(settings.embedder).id
        digest = catalog_digest(protocol.dataset.catalog)
        transform_path(settings.paths.embeddings, provider_id, digest, fresh.config.postprocess).unlink(missing_ok=True)
    started = time.perf_counter()
    artifact = prepare_source(settings, protocol, protocol.dataset.spec, "test", source, progress=False)
    fit_s = time.perf_counter() - started
    index = artifact.params.get("index")  # the title kNN's IVF index on a large catalogue (sr_models/ivf.py)
    return {**seconds, "model": model, "fit_s": fit_s, **({"index": index} if index else {})}


def stage_prepare(data: Path) -> dict[str, Any]:
    """The whole serving profile (both folds, ranker on ``RANKER_QUERIES`` validation queries) without the
    Chroma index: requests without a text query never open it, and ``stage_index`` times it alone. The
    test fold's models are the ``fit`` stages' when they ran (reused, as prepare does); the rest is built
    afresh, each source's fit timed per fold (the fit times at a size whose ``fit`` stages were skipped)."""
    import shutil

    from evals.prepare import fold_directory, models_root, prepare_profile, prepare_source
    from graphs.profiles import manifest_path, profile_spec

    settings = _settings(data)
    protocol, seconds = _protocol(data, settings)
    ensure_tuned(settings, protocol.dataset.name)
    spec = protocol.dataset.spec  # a rerun times a real preparation: the manifest, valid-fold models and ranker go
    manifest_path(settings.paths.profiles, spec, PROFILE).unlink(missing_ok=True)
    shutil.rmtree(fold_directory(settings, protocol, spec, "valid"), ignore_errors=True)
    shutil.rmtree(models_root(settings, spec) / "fusion", ignore_errors=True)
    fits = {}  # each source per fold, timed here; prepare_profile then reuses them as it would its own
    for fold in ("valid", "test"):
        for source in profile_spec(PROFILE).sources:
            if source.model is not None:
                started = time.perf_counter()
                prepare_source(settings, protocol, spec, fold, source, progress=False)
                fits[f"{source.model}[{fold}]"] = time.perf_counter() - started
    queries = RANKER_QUERIES // (4 if len(protocol.dataset.catalog) > LARGE_ITEMS else 1)
    started = time.perf_counter()
    manifest = prepare_profile(PROFILE, protocol, settings, progress=False, ranker_queries=queries, index=False)
    fitted = (manifest.fusion or {}).get("fitted_on", {})
    return {
        **seconds,
        "fit_s": fits,
        "prepare_s": time.perf_counter() - started + sum(fits.values()),
        "ranker_fit_s": fitted.get("seconds"),
        "ranker_queries": fitted.get("queries"),
        "ranker_valid": fitted.get("valid"),
    }


def stage_latency(data: Path) -> dict[str, Any]:
    """One-request latency through ``recommend`` (no LLM) and the replay's cases/s through the graph."""
    from benchmarks.graph_latency import measure
    from evals.graph_pipelines import GraphPipeline
    from graphs.api import SemSR

    settings = _settings(data)
    protocol, seconds = _protocol(data, settings)
    share = 2 if len(protocol.dataset.catalog) > LARGE_ITEMS else 1
    latency = measure(SemSR(settings), LATENCY_REQUESTS // share, profile=PROFILE, protocol=protocol)
    pipeline = GraphPipeline(PROFILE, settings, dataset=protocol.dataset.spec)
    cases = protocol.test.cases[: REPLAY_CASES // share]
    pipeline.rank(cases[:8], 20, exclude_seen=True)  # warm
    started = time.perf_counter()
    ranked = pipeline.rank(cases, 20, exclude_seen=True)
    replay_s = time.perf_counter() - started
    hits = [case.target in rec.items[:20] for case, rec in zip(cases, ranked, strict=True)]
    return {
        **seconds,
        "requests": latency["requests"],
        "p50_ms": latency["end_to_end"]["p50_ms"],
        "p95_ms": latency["end_to_end"]["p95_ms"],
        "nodes": latency["nodes"],
        "replay_cases": len(cases),
        "replay_cases_per_s": len(cases) / replay_s,
        "replay_hr@20": float(np.mean(hits)),
    }


def stage_neural(data: Path) -> dict[str, Any]:
    """Seconds per epoch of one torch model on the CPU, full vs sampled softmax, on the latest training
    sessions (about ``NEURAL_EVENTS_X_ITEMS / n_items`` events: a full softmax costs events x items),
    extrapolated to the whole training split by its events."""
    import dataclasses

    import torch

    from sr_models.base import train_data
    from sr_models.neural.trainer import train
    from sr_models.registry import build_model

    settings = _settings(data)
    protocol, _ = _protocol(data, settings)
    torch.set_num_threads(settings.threads)
    full = train_data(protocol, "test")
    n_sessions = max(300, round(NEURAL_EVENTS_X_ITEMS / full.n_items / 4.1))
    sub = dataclasses.replace(full, sessions=full.sessions[-n_sessions:])
    events = sum(len(s) for s in full.sessions) / sum(len(s) for s in sub.sessions)
    out: dict[str, Any] = {"model": NEURAL_MODEL, "sessions": len(sub.sessions), "scale_factor": events}
    for loss in ("ce", "sampled"):
        model = build_model(NEURAL_MODEL, protocol.dataset.name, env=settings.model_env(progress=False))
        encoder = model.build_encoder(full.n_items, None)
        config = dataclasses.replace(model.train_config(1, None), loss=loss, device="cpu", progress=False)
        if loss == "sampled" and not config.n_negatives:
            config = dataclasses.replace(config, n_negatives=2048, sample_alpha=0.5)
        result = train(encoder, model.examples(sub), config)
        seconds = result.history[-1]["epoch_seconds"]
        out[f"{loss}_subsample_epoch_s"] = seconds
        out[f"{loss}_epoch_s_extrapolated"] = seconds * events
    return out


STAGES = {
    "load": stage_load,
    "vectors": stage_vectors,
    "index": stage_index,
    "fit": stage_fit,
    "prepare": stage_prepare,
    "latency": stage_latency,
    "neural": stage_neural,
}


def run_stage() -> None:
    stage, data, *rest = sys.argv[1:]
    started = time.perf_counter()
    result = STAGES[stage](Path(data), *rest)
    result["stage_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["stage_cpu_s"] = usage.ru_utime + usage.ru_stime  # CPU the stage got: wall time is the shared machine's
    print("RESULT " + json.dumps(result, default=float))


if __name__ == "__main__":
    run_stage()
