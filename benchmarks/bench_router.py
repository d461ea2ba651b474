#!/usr/bin/env python3
"""Router.route() latency (embedding excluded) with 10k and 100k labeled examples.

The router holds N labeled prompts (real Quora questions from ../shared/data/cache when present,
else random sentences over a 20k-word vocabulary; embedded by HashingEmbedder; random labels
for 11 models of the shipped catalog, as RouterBench has 11); each timed call
routes a held-out prompt with its embedding precomputed (``route(prompt, embedding=v)``), so
the time covers the binding, feature extraction (category, token estimates), the kNN search
(exact below 4096 examples, FAISS HNSW above), the per-model votes and the cost model for all
catalog models. The peer, in the same run: a NumPy brute-force kNN router doing the same math
(inner products with all N vectors, top-k, similarity-weighted votes shrunk to the prior,
expected cost, cheapest model over the threshold) with its features precomputed (it does less).
Also reports recall@k of the HNSW neighbours against exact search.

    .venv/bin/python benchmarks/bench_router.py [--sizes 10000,100000] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, qqp_texts, write_json  # noqa: E402

DATA = Path(
    os.environ.get("THRIFTY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def sentences(rng, n, vocab):
    lengths = rng.integers(6, 30, n)
    words = rng.integers(0, len(vocab), lengths.sum())
    out, pos = [], 0
    for length in lengths:
        out.append(" ".join(vocab[w] for w in words[pos : pos + length]) + "?")
        pos += length
    return out


def percentiles(samples_ns):
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


class NumpyKnnRouter:
    """The same routing math as thrifty's KnnPredictor + Router, brute force in NumPy."""

    def __init__(self, vectors, quality, tokens, prior_q, prior_t, prices, k=32, power=4.0):
        self.x = vectors
        self.q = np.nan_to_num(quality)
        self.qmask = ~np.isnan(quality)
        self.t = np.nan_to_num(tokens)
        self.tmask = ~np.isnan(tokens)
        self.prior_q, self.prior_t = prior_q, prior_t
        self.in_price, self.out_price = prices
        self.k, self.power = k, power

    def route(self, v, input_tokens, threshold):
        sims = self.x @ v
        idx = np.argpartition(-sims, self.k)[: self.k]
        w = np.maximum(sims[idx], 0.0) ** self.power
        wq = w[:, None] * self.qmask[idx]
        q = (self.prior_q + (wq * self.q[idx]).sum(0)) / (1.0 + wq.sum(0))
        wt = w[:, None] * self.tmask[idx]
        t = (self.prior_t + (wt * self.t[idx]).sum(0)) / (1.0 + wt.sum(0))
        cost = (input_tokens * self.in_price + t * self.out_price) / 1e6
        meets = q >= threshold
        if meets.any():
            return int(np.argmin(np.where(meets, cost, np.inf)))
        return int(np.argmax(q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    vocab = [f"w{i}x{rng.integers(1000)}" for i in range(20000)]
    catalog = thrifty.Catalog.default()
    embedder = thrifty.HashingEmbedder()
    models = [s.name for s in catalog.models()]
    m = len(models)
    labeled = models[:: max(1, m // 11)][:11]
    texts = qqp_texts(DATA)
    source = "Quora questions" if texts else "synthetic sentences"
    if texts:
        rng.shuffle(texts)
        queries = texts[: args.calls]
        pool = texts[args.calls :]
    else:
        queries = sentences(rng, args.calls, vocab)
    qvecs = np.asarray(embedder.embed_batch(queries), dtype=np.float32)
    rows, results = [], {}
    for n in sizes:
        if texts and n <= len(pool):
            prompts = pool[:n]
        elif texts:  # more examples than real texts: repeat them with a suffix
            prompts = [f"{pool[i % len(pool)]} ({i // len(pool)})" for i in range(n)]
        else:
            prompts = sentences(rng, n, vocab)
        columns = [models.index(x) for x in labeled]
        quality = np.full((n, m), np.nan)
        tokens = np.full((n, m), np.nan)
        quality[:, columns] = (rng.random((n, len(columns))) < 0.7).astype(np.float64)
        tokens[:, columns] = rng.integers(20, 800, (n, len(columns))).astype(np.float64)
        examples = [
            (
                p,
                dict(zip(labeled, quality[i, columns])),
                dict(zip(labeled, tokens[i, columns])),
            )
            for i, p in enumerate(prompts)
        ]
        router = thrifty.Router(catalog, predictor="knn", embedder=embedder)
        start = time.perf_counter()
        router.fit(examples)
        fit_s = time.perf_counter() - start
        del examples
        threshold = 0.8
        samples, cpu_samples = [], []
        for i, (text, v) in enumerate(zip(queries, qvecs)):
            if i < 200:  # warm-up
                router.route(text, threshold, embedding=v)
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            router.route(text, threshold, embedding=v)
            t1 = time.perf_counter_ns()
            cpu_samples.append(time.thread_time_ns() - c0)
            samples.append(t1 - t0)
        p50, p99 = percentiles(samples)
        # CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): what one call costs when
        # the machine is shared and wall time includes waiting for a core.
        cpu_p50, cpu_p99 = percentiles(cpu_samples)

        # The NumPy peer over the same vectors, labels and priors.
        vectors = np.asarray(embedder.embed_batch(prompts), dtype=np.float32)
        prior_router = thrifty.Router(catalog, predictor="prior", embedder=embedder)
        prior_router.fit(
            [(p, dict(zip(labeled, quality[i, columns]))) for i, p in enumerate(prompts)]
        )
        prior_q = prior_router.predict(queries[:1])[0][0]
        counts = (~np.isnan(tokens)).sum(0)
        prior_t = np.where(counts > 0, np.nansum(tokens, 0) / np.maximum(counts, 1), 256.0)
        prices = (
            np.array([s.input_per_mtok for s in catalog.models()]),
            np.array([s.output_per_mtok for s in catalog.models()]),
        )
        peer = NumpyKnnRouter(vectors, quality, tokens, prior_q, prior_t, prices)
        peer_samples, peer_cpu = [], []
        for v in qvecs[: max(200, args.calls // 4)]:
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            peer.route(v, 30, threshold)
            t1 = time.perf_counter_ns()
            peer_cpu.append(time.thread_time_ns() - c0)
            peer_samples.append(t1 - t0)
        peer_p50, peer_p99 = percentiles(peer_samples)
        peer_cpu_p50, _ = percentiles(peer_cpu)

        # Recall@10 of the neighbours the router votes with (HNSW above 4096 examples).
        k = 10
        exact = np.argsort(-(qvecs[:200] @ vectors.T), axis=1)[:, :k]
        recall = _recall(router, qvecs[:200], vectors, exact, k)
        rows.append(
            [
                n,
                f"{fit_s:.1f}",
                p50,
                p99,
                cpu_p50,
                cpu_p99,
                peer_p50,
                peer_cpu_p50,
                peer_p50 / p50,
                f"{recall:.3f}",
            ]
        )
        results[str(n)] = {
            "examples": n,
            "models": m,
            "fit_s": fit_s,
            "route_p50_us": p50,
            "route_p99_us": p99,
            "route_cpu_p50_us": cpu_p50,
            "route_cpu_p99_us": cpu_p99,
            "numpy_cpu_p50_us": peer_cpu_p50,
            "numpy_p50_us": peer_p50,
            "numpy_p99_us": peer_p99,
            "speedup_p50": peer_p50 / p50,
            "hnsw_recall_at_10": recall,
            "texts": source,
            "load_average": os.getloadavg()[0],
        }
        del router, vectors
    print_table(
        f"Router.route() excluding embedding ({m} catalog models, kNN k=32, 256-d hashing "
        f"embeddings of {source}, {args.calls} calls) vs a NumPy brute-force kNN router "
        f"(same math); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        [
            "examples",
            "fit s",
            "p50 us",
            "p99 us",
            "cpu p50",
            "cpu p99",
            "numpy p50",
            "numpy cpu p50",
            "x faster",
            "recall@10",
        ],
        rows,
    )
    print(
        "target: route() p50 <= 100 us with 100k labeled examples (p50/p99 us: wall time; "
        "cpu: CPU time of the calling thread per call, which excludes waiting for a core)"
    )
    path = write_json("bench_router", results)
    print(f"wrote {path}")


def _recall(router, queries, vectors, exact, k):
    """Fraction of the exact top-k the router's index returns (via the C++ neighbour search)."""
    core = router._core
    if not hasattr(core, "_neighbours"):
        return float("nan")
    hits = 0
    for q, want in zip(queries, exact):
        got = [i for _, i in core._neighbours(q, k)]
        hits += len(set(got) & set(want.tolist()))
    return hits / (len(queries) * k)


if __name__ == "__main__":
    main()
