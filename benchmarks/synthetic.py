"""Synthetic session data at Amazon-M2 shape, written in the ``csv:DIR`` format, for measuring how SemSR scales.

Run: ``python -m benchmarks.synthetic --size medium --out DIR`` (sizes: ``tiny`` 2,000 items / 3,000 sessions for
tests, ``small`` 12k / 20k, ``medium`` 100k / 300k, ``large`` 500k / 1.2M, the size of Amazon-M2 UK: 499,611
items, 1,172,181 training sessions). Writes ``DIR/items.csv`` (item_id, title), ``DIR/interactions.csv``
(session_id, item_id, timestamp) and ``DIR/generator.json`` (the parameters and summary statistics); load it
with ``load_dataset("csv:DIR")``. Deterministic for a given ``--seed``; vectorised, so ``large`` takes about a
minute.

What it models, and why (each so the benchmark exercises what real data would, not an easy or a random case):

* **Popularity**: item weights follow a power law in a random rank (Zipf exponent ``ZIPF``), so a few items
  hold most events and most of the catalogue is rarely seen, as in M2.
* **Session lengths**: 2 plus a negative binomial (mean ``MEAN_LENGTH - 2``, dispersion ``LENGTH_SHAPE``), capped
  at ``MAX_LENGTH``: the mean matches M2's published 4.12 items per session; the long tail's exact shape is our
  assumption, not M2's histogram.
* **Learnable co-purchase structure**: every item belongs to one latent topic (topic sizes skewed); a session
  starts in a topic drawn by popularity and each next item is the current item's fixed *successor* (a
  sequential pattern rules and session-kNN can learn), another item of the same topic, an item of a
  neighbouring topic, or a jump to any topic (``STEP_PROBS``).
* **Titles from a word model per topic**: each topic has a product noun, a brand and a few descriptors (real
  English words and topic-specific pseudo-words); an item's title draws from its topic's words, so a text
  embedder places items of a topic together and title kNN has something to find.
* **Timestamps**: session starts uniform over ``DAYS`` days, events log-normally spaced (median about a
  minute), so the protocol's temporal split by end time works as on real logs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sessiondata.errors import ConfigError

ZIPF = 0.9
MEAN_LENGTH, LENGTH_SHAPE, MAX_LENGTH = 4.12, 1.5, 200
STEP_PROBS = {"successor": 0.35, "same_topic": 0.4, "near_topic": 0.1, "jump": 0.15}
DAYS = 28
START = 1_672_531_200  # 2023-01-01 00:00 UTC
ITEMS_PER_TOPIC = 200


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NOUNS = _words(
    "shampoo conditioner serum moisturiser cleanser toner lotion mask scrub balm lipstick mascara eyeliner "
    "foundation concealer primer blush bronzer highlighter perfume cologne deodorant sunscreen gel mousse spray "
    "oil cream polish remover brush sponge razor trimmer dryer straightener curler comb mirror palette powder "
    "soap wash exfoliator patch kit set headphones charger cable case keyboard mouse lamp kettle blender mug "
    "bottle backpack wallet watch sock scarf glove notebook pen candle pillow towel blanket"
)
DESCRIPTORS = _words(
    "gentle hydrating matte glossy organic vegan natural fragrance-free sensitive daily intensive repair "
    "volumising smoothing nourishing brightening firming soothing refreshing long-lasting waterproof lightweight "
    "rich sheer radiant anti-ageing clarifying purifying vitamin argan coconut rose lavender charcoal aloe "
    "collagen keratin herbal mineral tea-tree citrus vanilla almond honey shea oat wireless portable compact "
    "stainless ceramic cotton wool leather classic premium travel mini deluxe ultra soft extra-strong"
)
VARIANTS = ("50 ml", "100 ml", "250 ml", "500 ml", "30 g", "pack of 2", "pack of 3", "travel size", "refill", "")
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


@dataclass(frozen=True)
class Size:
    n_items: int
    n_sessions: int


SIZES = {
    "tiny": Size(2_000, 3_000),
    "small": Size(12_000, 20_000),
    "medium": Size(100_000, 300_000),
    "large": Size(500_000, 1_200_000),
}


@dataclass(frozen=True)
class Synthetic:
    """A generated dataset in arrays: titles per item, and events (session, item index, time) in session order."""

    item_ids: list[str]
    titles: list[str]
    sessions: np.ndarray  # (n_events,) session id per event
    items: np.ndarray  # (n_events,) item index per event
    times: np.ndarray  # (n_events,) unix seconds
    topics: np.ndarray  # (n_items,) latent topic per item (not written: it is the ground truth)


class _TopicSampler:
    """Draw items of given topics by popularity with one ``searchsorted`` (items sorted by topic, cumulative
    weights), so a million draws cost one vectorised call."""

    def __init__(self, topics: np.ndarray, weights: np.ndarray, n_topics: int) -> None:
        self.order = np.argsort(topics, kind="stable")
        self.cumulative = np.cumsum(weights[self.order])
        starts = np.searchsorted(topics[self.order], np.arange(n_topics))
        ends = np.append(starts[1:], len(topics))
        self.low = np.where(starts > 0, self.cumulative[np.maximum(starts - 1, 0)], 0.0)
        self.total = self.cumulative[ends - 1] - self.low
        self.ends = ends

    def draw(self, topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.low[topics] + rng.random(topics.size) * self.total[topics]
        position = np.minimum(np.searchsorted(self.cumulative, target, side="right"), self.ends[topics] - 1)
        return self.order[position]


def _pseudo_words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct pronounceable words of three syllables (topic-specific vocabulary)."""
    n = len(SYLLABLES)
    codes = rng.choice(n**3, size=count, replace=False)
    return [SYLLABLES[c // (n * n)] + SYLLABLES[(c // n) % n] + SYLLABLES[c % n] for c in codes.tolist()]


def _titles(topics: np.ndarray, n_topics: int, rng: np.random.Generator) -> list[str]:
    """Per topic: a noun, a brand and six descriptors (four real, two pseudo); each title picks two."""
    nouns = rng.integers(len(NOUNS), size=n_topics)
    words = _pseudo_words(3 * n_topics, rng)
    brands = [w.capitalize() for w in words[:n_topics]]
    real = rng.integers(len(DESCRIPTORS), size=(n_topics, 4))
    vocab = [
        [DESCRIPTORS[j] for j in real[t]] + words[n_topics + 2 * t : n_topics + 2 * t + 2] for t in range(n_topics)
    ]
    n = topics.size
    picks = rng.integers(6, size=(n, 2))
    variant = rng.integers(len(VARIANTS), size=n)
    model_no = rng.integers(1, 1000, size=n)
    titles = []
    for i, t in enumerate(topics.tolist()):
        a, b = picks[i]
        words_i = [brands[t], vocab[t][a], vocab[t][b] if b != a else "", NOUNS[nouns[t]], VARIANTS[variant[i]]]
        titles.append(" ".join(w for w in words_i if w) + f" {model_no[i]}")
    return titles


def _lengths(n_sessions: int, rng: np.random.Generator) -> np.ndarray:
    mean_extra = MEAN_LENGTH - 2
    p = LENGTH_SHAPE / (LENGTH_SHAPE + mean_extra)
    return np.minimum(2 + rng.negative_binomial(LENGTH_SHAPE, p, size=n_sessions), MAX_LENGTH)


def generate(n_items: int, n_sessions: int, *, seed: int = 0) -> Synthetic:
    """Generate a dataset (see the module docstring); the same seed gives the same arrays."""
    if n_items < 50 or n_sessions < 100:
        raise ConfigError("size", (n_items, n_sessions), "needs at least 50 items and 100 sessions")
    rng = np.random.default_rng(seed)
    n_topics = max(5, n_items // ITEMS_PER_TOPIC)
    topic_weight = (np.arange(n_topics) + 1.0) ** -0.5
    topics = np.concatenate(
        [np.arange(n_topics), rng.choice(n_topics, n_items - n_topics, p=topic_weight / topic_weight.sum())]
    )
    rng.shuffle(topics)
    weights = (rng.permutation(n_items) + 1.0) ** -ZIPF
    sampler = _TopicSampler(topics, weights, n_topics)
    topic_popularity = np.bincount(topics, weights=weights, minlength=n_topics)
    topic_popularity /= topic_popularity.sum()
    successor = sampler.draw(topics, rng)

    lengths = _lengths(n_sessions, rng)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    items = np.empty(int(offsets[-1]), dtype=np.int64)
    current = sampler.draw(rng.choice(n_topics, n_sessions, p=topic_popularity), rng)
    items[offsets[:-1]] = current
    kinds = np.cumsum(list(STEP_PROBS.values()))
    for step in range(1, int(lengths.max())):
        alive = np.flatnonzero(lengths > step)
        previous = current[alive]
        roll = rng.random(alive.size)
        topic = topics[previous]
        near = (topic + rng.choice([-1, 1], alive.size)) % n_topics
        jump = rng.choice(n_topics, alive.size, p=topic_popularity)
        topic = np.where(roll < kinds[1], topic, np.where(roll < kinds[2], near, jump))
        drawn = sampler.draw(topic, rng)
        chosen = np.where(roll < kinds[0], successor[previous], drawn)
        items[offsets[alive] + step] = chosen
        current = current.copy()
        current[alive] = chosen

    starts = np.sort(rng.integers(0, DAYS * 86_400, size=n_sessions))
    gaps = np.rint(np.exp(rng.normal(4.0, 1.0, size=items.size))).astype(np.int64)
    gaps[offsets[:-1]] = 0
    session_of = np.repeat(np.arange(n_sessions), lengths)
    cumulative = np.cumsum(gaps)
    times = START + starts[session_of] + cumulative - cumulative[offsets[:-1]][session_of]
    item_ids = [f"B0{code:08X}" for code in rng.choice(16**8, size=n_items, replace=False).tolist()]
    return Synthetic(item_ids, _titles(topics, n_topics, rng), session_of, items, times, topics)


def summary(data: Synthetic) -> dict[str, float]:
    """The shape the module promises: lengths, popularity skew, catalogue coverage."""
    counts = np.bincount(data.items, minlength=len(data.item_ids))
    top = np.sort(counts)[::-1]
    lengths = np.bincount(data.sessions)
    return {
        "n_items": len(data.item_ids),
        "n_sessions": int(lengths.size),
        "n_events": int(data.items.size),
        "mean_length": round(float(lengths.mean()), 3),
        "share_of_events_top_1pct_items": round(float(top[: max(1, top.size // 100)].sum() / top.sum()), 3),
        "share_of_items_never_seen": round(float((counts == 0).mean()), 3),
    }


def write(data: Synthetic, out: Path, params: dict[str, object]) -> None:
    """``items.csv``, ``interactions.csv`` and ``generator.json`` in ``out`` (the ``csv:DIR`` format)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "items.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "title"])
        writer.writerows(zip(data.item_ids, data.titles, strict=True))
    ids = np.asarray(data.item_ids)[data.items]
    with (out / "interactions.csv").open("w", encoding="utf-8") as handle:
        handle.write("session_id,item_id,timestamp\n")
        chunk = 500_000
        for start in range(0, ids.size, chunk):
            stop = start + chunk
            rows = zip(
                data.sessions[start:stop].tolist(),
                ids[start:stop].tolist(),
                data.times[start:stop].tolist(),
                strict=True,
            )
            handle.write("".join(f"{s},{i},{t}\n" for s, i, t in rows))
    (out / "generator.json").write_text(json.dumps({**params, **summary(data)}, indent=2) + "\n")


def default_dir(size: str) -> Path:
    """Where a size is written when no ``--out`` is given: under the user's SEMSR_HOME, never the repository."""
    return Path(os.environ.get("SEMSR_HOME", ".semsr")) / "synthetic" / f"synthetic-{size}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", type=Path, help="Directory to write (default: SEMSR_HOME/synthetic/synthetic-SIZE).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    size = SIZES[args.size]
    out = args.out or default_dir(args.size)
    started = time.perf_counter()
    data = generate(size.n_items, size.n_sessions, seed=args.seed)
    generated = time.perf_counter() - started
    params = {"size": args.size, **asdict(size), "seed": args.seed, "zipf": ZIPF, "step_probs": STEP_PROBS}
    write(data, out, params)
    total = time.perf_counter() - started
    print(json.dumps({"out": str(out), **summary(data), "generate_s": round(generated, 1), "total_s": round(total, 1)}))


if __name__ == "__main__":
    main()
