"""How SemSR's cost grows with the catalogue and the log: synthetic Amazon-M2-shaped data at three sizes.

Run: ``python -m benchmarks.scale --size small --size medium [--size large] [--stage NAME ...]``
(or ``python -m benchmarks scale`` for the small size). Each size's data is generated first when missing
(:mod:`benchmarks.synthetic`, under ``SEMSR_HOME/synthetic``); artefacts go to ``SEMSR_HOME`` as usual.
Per size, each stage (:mod:`benchmarks.scale_stages`) runs in its own process, so its peak RSS is its own:

* ``load``: ``load_dataset("csv:DIR")`` and the protocol's split;
* ``vectors``: the real MiniLM's titles/s on a sample (the whole catalogue's time extrapolated) and the title
  vectors the benchmark serves (MiniLM word vectors averaged per title: the same 384-d serving cost);
* ``index``: Chroma add throughput on a fresh collection (a sample at the larger sizes, extrapolated);
* ``fit:vsknn``, ``fit:sr``, ``fit:title-knn``: each source of the ``fused`` serving profile fitted on the
  test fold's training sessions and saved;
* ``prepare``: the whole ``fused`` profile (both folds, Chroma index, LambdaMART ranker on a capped number of
  validation queries), what serving reads;
* ``latency``: one request through ``recommend`` without the LLM (p50/p95, per node) and the replay's cases/s
  through the compiled graph (:class:`evals.graph_pipelines.GraphPipeline`);
* ``neural``: GRU4Rec seconds per CPU epoch with full and with sampled softmax (a subsample, extrapolated).

Results merge into ``benchmarks/results/scale.json`` (a rerun replaces only the stages it ran) and are
rendered to ``scale.md`` and ``scale.png`` (cost against size, log-log), with the issue's bars judged at
the largest size measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.synthetic import SIZES, default_dir

RESULTS = Path(__file__).parent / "results"
STAGES = ("load", "vectors", "index", "fit:vsknn", "fit:sr", "fit:title-knn", "prepare", "latency", "neural")
BARS = {"p50_ms": 50.0, "fit_s": 600.0, "peak_rss_mb": 12 * 1024.0}


def run_stage(stage: str, data: Path, timeout: float | None) -> dict[str, Any]:
    """One stage in a fresh process; its RESULT line, or the error and the tail of its output."""
    name, _, model = stage.partition(":")
    command = [sys.executable, "-m", "benchmarks.scale_stages", name, str(data), *([model] if model else [])]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout)[-600:], "wall_s": time.perf_counter() - started}
    return {**json.loads(lines[-1][len("RESULT ") :]), "load_avg": round(os.getloadavg()[0], 2)}


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"sizes": {}}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def fit_seconds(stages: dict[str, Any], model: str) -> float | None:
    """A source's test-fold fit: its own ``fit`` stage, else the slower of the two folds ``prepare`` timed
    (the large size, where separate stages would each load the data again; the first fold also fits the
    catalogue's whitening, which the second reuses)."""
    own = stages.get(f"fit:{model}", {}).get("fit_s")
    if own is not None:
        return own
    fits = stages.get("prepare", {}).get("fit_s") or {}
    folds = [fits[key] for key in (f"{model}[valid]", f"{model}[test]") if key in fits]
    return max(folds) if folds else None


def rows(sizes: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The table: one row per figure, one column per size (missing or failed: a dash or the error)."""
    order = [name for name in SIZES if name in sizes]

    def get(stage: str, key: str, digits: int = 1) -> list[str]:
        cells = []
        for size in order:
            entry = sizes[size].get(stage, {})
            cells.append("error" if "error" in entry else _fmt(entry.get(key), digits))
        return cells

    table = [
        ("items", get("load", "n_items")),
        ("sessions", get("load", "n_sessions")),
        ("events", get("load", "n_events")),
        ("load csv:DIR (s)", get("load", "load_s")),
        ("protocol split (s)", get("load", "protocol_s")),
        ("load peak RSS (MB)", get("load", "peak_rss_mb", 0)),
    ]
    for model in ("vsknn", "sr", "title-knn"):
        fits = [_fmt(fit_seconds(sizes[size], model)) for size in order]
        table.append((f"fit {model} on the test fold's train + save (s)", fits))
        table.append((f"  fit {model} stage CPU seconds (load included)", get(f"fit:{model}", "stage_cpu_s")))
        table.append((f"fit {model} peak RSS (MB, load included)", get(f"fit:{model}", "peak_rss_mb", 0)))
    index = [sizes[size].get("fit:title-knn", {}).get("index") for size in order]
    cells = [f"{i['lists']:,} / {i['probe']} / {i['recall']:.3f}" if i else "exact" for i in index]
    table.append(("title-knn search: IVF lists / probe / recall@100 of exact (training prefixes)", cells))
    table += [
        ("prepare `fused`: valid-fold models, stats, ranker; no Chroma index (s)", get("prepare", "prepare_s")),
        ("  of which ranker fit (s)", get("prepare", "ranker_fit_s")),
        ("prepare peak RSS (MB)", get("prepare", "peak_rss_mb", 0)),
        ("load average after the latency stage (2 cores)", get("latency", "load_avg", 2)),
        ("one request p50 (ms, no LLM)", get("latency", "p50_ms", 2)),
        ("one request p95 (ms, no LLM)", get("latency", "p95_ms", 2)),
        ("replay through the graph (cases/s)", get("latency", "replay_cases_per_s")),
        ("replay HR@20 (first 500 test cases; 250 at large)", get("latency", "replay_hr@20", 4)),
        ("serving peak RSS (MB)", get("latency", "peak_rss_mb", 0)),
        ("MiniLM titles/s (sample of 2,000; 500 at large)", get("vectors", "minilm_titles_per_s")),
        ("MiniLM whole catalogue (s, extrapolated)", get("vectors", "minilm_catalogue_s_extrapolated")),
        ("Chroma add items/s", get("index", "chroma_items_per_s")),
        (
            "Chroma add whole catalogue (s; extrapolated above 20k items)",
            get("index", "chroma_catalogue_s_extrapolated"),
        ),
        ("GRU4Rec CPU epoch, full softmax (s, extrapolated)", get("neural", "ce_epoch_s_extrapolated")),
        ("GRU4Rec CPU epoch, sampled softmax (s, extrapolated)", get("neural", "sampled_epoch_s_extrapolated")),
        ("neural stage peak RSS (MB)", get("neural", "peak_rss_mb", 0)),
    ]
    return [(label, cells) for label, cells in table if any(cell != "–" for cell in cells)]


def bars(sizes: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's bars at the largest size measured."""
    measured = [name for name in SIZES if name in sizes]
    if not measured:
        return []
    size = measured[-1]
    stages = sizes[size]
    lines = [f"Bars at `{size}` (the largest size measured):", ""]
    p50 = stages.get("latency", {}).get("p50_ms")
    if p50 is not None:
        lines.append(f"- one request p50 {p50:.1f} ms (bar <= 50): {'holds' if p50 <= BARS['p50_ms'] else 'FAILS'}")
    for model in ("vsknn", "sr", "title-knn"):
        fit = fit_seconds(stages, model)
        if fit is not None:
            verdict = "holds" if fit <= BARS["fit_s"] else "FAILS"
            lines.append(f"- fit {model} {fit:.0f} s (bar <= 600 s): {verdict}")
    peaks = {stage: entry["peak_rss_mb"] for stage, entry in stages.items() if "peak_rss_mb" in entry}
    if peaks:
        stage, peak = max(peaks.items(), key=lambda kv: kv[1])
        verdict = "holds" if peak <= BARS["peak_rss_mb"] else "FAILS"
        lines.append(f"- peak RSS {peak / 1024:.2f} GiB, in stage `{stage}` (bar <= 12 GiB): {verdict}")
    return lines


FINDINGS = """What limits the large size (measured 2026-12-02, this machine at load average 8-12):

- **Latency.** The p50 is dominated by `session_semantics` (title kNN: p50 189 ms at 500k items) and
  `session_models` (V-SKNN + rules: 74 ms). The title kNN scores the whole catalogue by a dense product with a
  500k x 384 float32 matrix, 768 MB read per request: the bare product alone measured 245-285 ms here and is
  memory-bound (about 100 ms on two idle cores), so a 50 ms p50 needs an approximate index (the Chroma HNSW
  index exists) or fewer/smaller dimensions for that source, not a local fix. `top_k` over 500k scores costs
  about 38 ms per source here (several full-length passes: copy, isnan, count, partition).
- **The ranker fit over every validation prefix does not scale**: at M2 size that is about 580k queries
  (187k validation cases); 1,000 took 194 s here, and the per-query candidate lists are all held at once
  (small size: 7,588 queries peaked at 1.1 GB against 0.13 GB without the fit). The benchmark caps it
  (`prepare_profile(..., ranker_queries=N)`); the main job's prepare does not.
- **Fixed on the way**: whitening fitted by an SVD of the whole centred catalogue (three n x 384 float64
  copies; medium title-kNN fit 209 s / 2.3 GB before, 9.4 s / 1.1 GB after, from the 384 x 384 scatter
  matrix in chunks), and the dataset fingerprint / training digest rehashed for every artefact.
- **Embedding and indexing the real catalogue** are the slow one-off steps: MiniLM at 13-36 titles/s on this
  loaded machine (hours for 500k titles) and Chroma add at 220-340 items/s (about 25 min for 500k).
- **Neural training**: a full-softmax GRU4Rec epoch grows with events x items (a CPU day per epoch at 500k
  items); sampled softmax with logQ correction is 15x cheaper there (and about 1.3x at 12k items).
"""


def markdown(payload: dict[str, Any]) -> str:
    sizes = payload["sizes"]
    order = [name for name in SIZES if name in sizes]
    lines = [
        "# Scale: SemSR's cost against catalogue and log size (synthetic Amazon-M2-shaped data)",
        "",
        "Command: `python -m benchmarks.scale --size small --size medium --size large` (module docstrings of "
        "`benchmarks/scale.py`, `scale_stages.py` and `synthetic.py` say what each figure is). Machine: "
        f"{payload.get('machine', '?')}, shared with other jobs (each stage's load average is in `scale.json`).",
        "Title vectors served are MiniLM word vectors averaged per title (same 384-d cost as MiniLM titles); the "
        "MiniLM and Chroma rows give what embedding and indexing the real catalogue costs. Session models use "
        "Beauty's tuned hyper-parameters; the ranker learns from at most 4,000 validation prefix queries (1,000 "
        "above 200k items). Seconds are wall time on a machine other jobs kept at load average 8-25 (2 cores): "
        "read them as upper bounds; `stage_cpu_s` in `scale.json` is the CPU each stage got. Where a size has no "
        "`fit:` stage, its fit times are the slower fold `prepare` timed (one data load instead of four).",
        "",
        "| figure | " + " | ".join(order) + " |",
        "|---|" + "---:|" * len(order),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows(sizes)]
    errors = [(s, st, e["error"]) for s in order for st, e in sizes[s].items() if "error" in e]
    if errors:
        lines += ["", "Failed stages:", ""]
        lines += [f"- `{s}` `{st}`: {error.strip().splitlines()[-1][:300]}" for s, st, error in errors]
    lines += ["", *bars(sizes), "", FINDINGS, "![cost against size](scale.png)"]
    return "\n".join(lines) + "\n"


def plot(payload: dict[str, Any], path: Path) -> None:
    """Cost against sessions, log-log: seconds of each stage (left), latency and memory (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = payload["sizes"]
    order = [name for name in SIZES if name in sizes and "n_sessions" in sizes[name].get("load", {})]
    x = [sizes[name]["load"]["n_sessions"] for name in order]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    series = [
        ("load", "load_s", left),
        ("prepare", "prepare_s", left),
        ("vectors", "minilm_catalogue_s_extrapolated", left),
        ("index", "chroma_catalogue_s_extrapolated", left),
        ("neural", "ce_epoch_s_extrapolated", left),
        ("neural", "sampled_epoch_s_extrapolated", left),
        ("latency", "p50_ms", right),
        ("latency", "p95_ms", right),
    ]
    for stage, key, axis in series:
        points = [(xi, sizes[n].get(stage, {}).get(key)) for xi, n in zip(x, order, strict=True)]
        points = [(xi, y) for xi, y in points if isinstance(y, int | float)]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=f"{stage} {key}")
    for model in ("vsknn", "sr", "title-knn"):
        points = [(xi, fit_seconds(sizes[n], model)) for xi, n in zip(x, order, strict=True)]
        points = [(xi, y) for xi, y in points if y is not None]
        if points:
            left.plot(*zip(*points, strict=True), marker="o", label=f"fit {model}")
    peaks = [max((e.get("peak_rss_mb", 0) for e in sizes[n].values()), default=0) for n in order]
    right.plot(x, peaks, marker="s", linestyle="--", label="peak RSS of any stage (MB)")
    right.axhline(BARS["p50_ms"], color="grey", linewidth=0.8, linestyle=":", label="p50 bar 50 ms")
    left.axhline(BARS["fit_s"], color="grey", linewidth=0.8, linestyle=":", label="fit bar 600 s")
    for axis, title in ((left, "seconds"), (right, "ms per request / MB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("sessions")
        axis.set_title(title)
        axis.legend(fontsize=7)
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", choices=sorted(SIZES), help="Repeat; default: small.")
    parser.add_argument("--stage", action="append", choices=STAGES, help="Repeat; default: every stage in order.")
    parser.add_argument("--timeout", type=float, default=None, help="Seconds per stage before it is killed.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="Only rewrite scale.md and scale.png from scale.json.")
    args = parser.parse_args()
    path = args.out / "scale.json"
    if args.render:
        (args.out / "scale.md").write_text(markdown(_read(path)))
        plot(_read(path), args.out / "scale.png")
        return
    for size in args.size or ["small"]:
        data = default_dir(size)
        if not (data / "interactions.csv").exists():
            subprocess.run(
                [sys.executable, "-m", "benchmarks.synthetic", "--size", size, "--out", str(data)], check=True
            )
        for stage in args.stage or STAGES:
            print(f"== {size} {stage}", flush=True)
            result = run_stage(stage, data, args.timeout)
            print(json.dumps(result, default=str)[:2000], flush=True)
            payload = _read(path)  # re-read: another size may have been written meanwhile
            payload["machine"] = f"{os.cpu_count()} CPU cores"
            payload["sizes"].setdefault(size, {})[stage] = result
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
            (args.out / "scale.md").write_text(markdown(payload))
            plot(payload, args.out / "scale.png")
    print(markdown(_read(path)))


if __name__ == "__main__":
    main()
