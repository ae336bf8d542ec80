"""Semantic index benchmark on the full Beauty catalogue (12,101 titles, MiniLM, embedded Chroma).

Measures, and writes to ``benchmarks/results/semantic_index.{json,md}``:

* index build time, cold (embedding every title into an empty cache + adding to an empty collection) and
  cached (vectors read from the embedding cache + adding to an empty collection);
* query latency p50/p95, by vector (HNSW search only) and by text (embedding a never-seen query + search);
* HNSW recall@20 of Chroma against exact cosine (numpy over the same unit vectors);
* MiniLM truncation: titles/s and vector change at ``max_seq_length`` 128 vs 256 on a title sample.

Everything runs in temporary directories, so the user's caches are untouched and "cold" is really cold.
Run: ``python -m benchmarks.semantic_index [--queries N] [--threads T]`` (or ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "n": len(seconds),
    }


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _truncation(titles: list[str], threads: int, sample: int, rng: np.random.Generator) -> dict[str, object]:
    from embeddings.minilm import MiniLMProvider

    chosen = [titles[i] for i in rng.choice(len(titles), size=min(sample, len(titles)), replace=False)]
    longest = sorted(titles, key=len, reverse=True)[:64]
    out: dict[str, object] = {"sample_titles": len(chosen)}
    vectors = {}
    for length in (128, 256):
        provider = MiniLMProvider(max_seq_length=length, threads=threads)
        provider.embed(["warm up"])
        started = time.perf_counter()
        provider.embed(chosen)
        seconds = time.perf_counter() - started
        vectors[length] = provider.embed(longest)
        out[f"seq{length}_titles_per_s"] = round(len(chosen) / seconds, 1)
    cosine = np.sum(vectors[128] * vectors[256], axis=1)
    out["longest_64_titles_min_cosine_128_vs_256"] = round(float(cosine.min()), 4)
    out["longest_64_titles_mean_cosine_128_vs_256"] = round(float(cosine.mean()), 4)
    return out


def run(queries: int, threads: int, seed: int) -> dict[str, object]:
    import torch
    from threadpoolctl import threadpool_limits

    from embeddings.catalog import catalog_texts, clear_memory, embed_catalog
    from embeddings.config import EmbedderConfig, build_provider
    from sessiondata.loaders.beauty import load_amazon_beauty
    from tools.chroma_index import CatalogIndex
    from tools.config import ChromaConfig

    threadpool_limits(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    dataset = load_amazon_beauty()
    catalog = dataset.catalog
    tag = dataset.fingerprint().short
    chroma = ChromaConfig()
    result: dict[str, object] = {
        "dataset": dataset.fingerprint().as_dict(),
        "machine": {"cpus": os.cpu_count(), "threads": threads, "python": platform.python_version()},
        "chroma_hnsw": {"ef_construction": chroma.ef_construction, "ef_search": chroma.ef_search, "M": 16},
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory(prefix="semsr-bench-") as tmp:
        home = Path(tmp)
        provider = build_provider(EmbedderConfig(), threads=threads)
        started = time.perf_counter()
        provider.embed(["model load"])
        load_seconds = time.perf_counter() - started

        builds = {}
        for label in ("cold", "cached"):
            clear_memory()
            load_before = _load()
            started = time.perf_counter()
            vectors = embed_catalog(catalog, provider, cache_dir=home / "embeddings")
            embed_seconds = time.perf_counter() - started
            index = CatalogIndex(
                catalog, tag, provider=provider, chroma=ChromaConfig(path=home / f"chroma-{label}"), home=home
            )
            report = index.build(vectors=vectors)
            builds[label] = {
                "embed_s": round(embed_seconds, 2),
                "add_s": round(report.add_seconds, 2),
                "total_s": round(embed_seconds + report.add_seconds, 2),
                "titles_per_s_embed": round(len(catalog) / embed_seconds, 1),
                "items_per_s_add": round(len(catalog) / report.add_seconds, 1),
                "load_average_1min_before": load_before,
            }
            print(label, builds[label], flush=True)
        builds["model_load_s"] = round(load_seconds, 2)
        result["build"] = builds

        picks = rng.choice(len(catalog), size=queries, replace=False)
        by_vector, overlaps = [], []
        for row in picks:
            started = time.perf_counter()
            hits = index.query_vectors(vectors[row], 20)[0]
            by_vector.append(time.perf_counter() - started)
            exact = np.argpartition(-(vectors @ vectors[row]), 20)[:20]
            overlaps.append(len({h.index for h in hits} & {int(i) for i in exact}) / 20)
        by_text = []
        for n, row in enumerate(picks[: max(1, queries // 2)]):
            words = catalog.titles[row].split()[:6] or ["item"]
            text = f"{' '.join(words)} gift {n}"  # never seen before: the query is embedded for real
            started = time.perf_counter()
            index.query_text(text, 20)
            by_text.append(time.perf_counter() - started)
        result["query_latency"] = {"by_vector_k20": _percentiles(by_vector), "by_text_k20": _percentiles(by_text)}
        result["hnsw_recall_at_20"] = {
            "mean": round(float(np.mean(overlaps)), 4),
            "min": round(float(np.min(overlaps)), 4),
            "queries": len(overlaps),
            "reference": "exact cosine top-20 (numpy), query = an item's own title vector",
        }
    print("queries", result["query_latency"], result["hnsw_recall_at_20"], flush=True)
    result["truncation"] = _truncation(catalog_texts(catalog), threads, 1000, rng)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def markdown(result: dict) -> str:
    build, latency, recall, trunc = (
        result["build"],
        result["query_latency"],
        result["hnsw_recall_at_20"],
        result["truncation"],
    )
    lines = [
        "# Semantic index benchmark (Beauty, 12,101 titles, MiniLM-L6-v2, embedded Chroma)",
        "",
        f"Run {result['started_at']} on {result['machine']['cpus']} CPUs, {result['machine']['threads']} threads; "
        "machine shared with other jobs (1-min load average before each build is recorded).",
        "Command: `python -m benchmarks.semantic_index`.",
        "",
        "| build | embed s | add s | total s | titles/s (embed) | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("cold", "cached"):
        b = build[label]
        lines.append(
            f"| {label} | {b['embed_s']} | {b['add_s']} | {b['total_s']} | {b['titles_per_s_embed']} | "
            f"{b['load_average_1min_before']} |"
        )
    lines += [
        "",
        f"Model load: {build['model_load_s']} s (not in the build times).",
        "",
        "| query (k=20) | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
        *(f"| {name} | {v['p50_ms']} | {v['p95_ms']} | {v['n']} |" for name, v in latency.items()),
        "",
        f"HNSW recall@20 vs exact cosine: mean {recall['mean']}, min {recall['min']} over {recall['queries']} "
        f"queries (ef_search {result['chroma_hnsw']['ef_search']}).",
        "",
        f"MiniLM truncation on {trunc['sample_titles']} random titles: {trunc['seq128_titles_per_s']} titles/s at "
        f"128 word pieces, {trunc['seq256_titles_per_s']} at 256; on the 64 longest titles the two vectors have "
        f"cosine {trunc['longest_64_titles_mean_cosine_128_vs_256']} on average "
        f"(min {trunc['longest_64_titles_min_cosine_128_vs_256']}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.semantic_index", description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=400, help="Queries per latency / recall measurement.")
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(args.queries, args.threads, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "semantic_index.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "semantic_index.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
