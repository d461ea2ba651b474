#!/usr/bin/env python3
"""SemanticCache lookup speed and recall at 10k, 100k and 1M entries (embedding excluded).

Vectors: embeddings of real questions from ../shared/data (QQP) by the best offline embedder
(StaticEmbedder, WordLlama 256-d; HashingEmbedder with --embedder hashing); past
the number of distinct real texts, further entries are real vectors plus Gaussian noise
(sigma 0.05 per dimension before normalization), so the store keeps the clustered structure of
real embeddings. Without ../shared, synthetic clustered vectors stand in (said in the output).
Queries: held-out real questions (not stored). Recall@1: the fraction of lookups whose best
match (SemanticCache.search, k=1) is the exact best match (FAISS brute force over the store).

    .venv/bin/python benchmarks/bench_semantic_cache.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, qqp_texts, write_json  # noqa: E402
from thrifty import _core  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DIM = 256


EMBEDDER = "static"


def make_embedder():
    if EMBEDDER == "static":
        try:
            return thrifty.StaticEmbedder()
        except thrifty.Error as e:
            print(f"(StaticEmbedder unavailable: {e}; using HashingEmbedder)")
    return thrifty.HashingEmbedder(dim=DIM)


def base_vectors(n_store: int, n_query: int, rng):
    texts = qqp_texts(DATA)
    embedder = make_embedder()
    if texts is None:
        print(f"note: {DATA} is absent; using synthetic clustered vectors\n")
        centers = rng.standard_normal((2000, DIM)).astype(np.float32)
        pick = rng.integers(0, len(centers), n_store + n_query)
        vectors = centers[pick] + 0.3 * rng.standard_normal((n_store + n_query, DIM)).astype(
            np.float32
        )
        return vectors[:n_store], vectors[n_store:], "synthetic"
    rng.shuffle(texts)
    queries = embedder.embed_batch(texts[:n_query])
    real = embedder.embed_batch(texts[n_query:])
    if n_store <= len(real):
        return real[:n_store], queries, f"{embedder.name}: real"
    extra = n_store - len(real)
    noisy = real[rng.integers(0, len(real), extra)] + 0.05 * rng.standard_normal(
        (extra, DIM)
    ).astype(np.float32)
    return (
        np.vstack([real, noisy]).astype(np.float32),
        queries,
        f"{embedder.name}: real ({len(real):,}) + noisy copies",
    )


def current_rss() -> int:
    """Resident bytes now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def percentile_us(samples, q):
    return float(np.percentile(samples, q) * 1e6)


def measure(size: int, rng, n_query: int = 2000):
    store, queries, kind = base_vectors(size, n_query, rng)
    store = np.ascontiguousarray(store, dtype=np.float32)
    norms = np.linalg.norm(store, axis=1, keepdims=True)
    store = np.ascontiguousarray(store[norms[:, 0] > 0] / norms[norms[:, 0] > 0])[:size]
    if len(store) < size:  # a few texts embed to zero (no features): top up with noisy copies
        extra = store[rng.integers(0, len(store), size - len(store))]
        extra = extra + 0.05 * rng.standard_normal(extra.shape).astype(np.float32)
        store = np.vstack([store, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    store = np.ascontiguousarray(store, dtype=np.float32)
    queries = np.ascontiguousarray(queries[np.linalg.norm(queries, axis=1) > 0], dtype=np.float32)
    cache = thrifty.SemanticCache(dim=DIM, threshold=0.5, index="auto")
    rss_before = current_rss()
    start = time.perf_counter()
    chunk = 100_000
    for i in range(0, size, chunk):
        cache.put_vectors(
            store[i : i + chunk],
            [str(j) for j in range(i, min(size, i + chunk))],
            [""] * min(chunk, size - i),
        )
    build_s = time.perf_counter() - start
    rss_after = current_rss()
    latencies = []
    for q in queries[:200]:  # warm-up
        cache.get_vector(q)
    for q in queries:
        t0 = time.perf_counter()
        cache.get_vector(q)
        latencies.append(time.perf_counter() - t0)
    exact = _core._best_matches(queries, store, 1)[1][:, 0]
    got = [cache.search(q, k=1) for q in queries]
    recall = float(np.mean([bool(g) and int(g[0][1]) == int(e) for g, e in zip(got, exact)]))
    stats = cache.stats()
    return {
        "entries": size,
        "vectors": kind,
        "index": "hnsw" if stats["ann_scopes"] else "flat",
        "build_s": build_s,
        "p50_us": percentile_us(latencies, 50),
        "p99_us": percentile_us(latencies, 99),
        "recall_at_1": recall,
        "bytes_per_entry_accounted": stats["bytes"] / size,
        "rss_growth_bytes_per_entry": (rss_after - rss_before) / size,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--embedder", choices=["static", "hashing"], default="static")
    args = parser.parse_args()
    global EMBEDDER
    EMBEDDER = args.embedder
    rng = np.random.default_rng(0)
    results = [measure(int(s), rng) for s in args.sizes.split(",")]
    print_table(
        "SemanticCache lookup, embedding excluded (2,000 held-out queries; one scope)",
        ["entries", "index", "build s", "p50 us", "p99 us", "recall@1", "B/entry", "RSS B/entry"],
        [
            [
                f"{r['entries']:,}",
                r["index"],
                r["build_s"],
                r["p50_us"],
                r["p99_us"],
                r["recall_at_1"],
                r["bytes_per_entry_accounted"],
                r["rss_growth_bytes_per_entry"],
            ]
            for r in results
        ],
    )
    print(f"vectors: {results[-1]['vectors']}; targets: p50 <= 200 us at 1M with recall@1 >= 0.95")
    print(f"wrote {write_json('semantic_cache_speed', {'results': results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
