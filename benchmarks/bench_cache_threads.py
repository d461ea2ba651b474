#!/usr/bin/env python3
"""Do the caches scale past one core when many Python threads share them?

Throughput (lookups/s) of one shared cache with 1, 2 and 4 Python threads: semantic lookups
(10,000 entries, flat scope, 95% gets / 5% puts) and exact lookups. Every call releases the GIL
and lookups share a reader lock, so on an N-core machine throughput should grow with threads up
to N. Medians of 3 runs of 2 s each.

    .venv/bin/python benchmarks/bench_cache_threads.py
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402

DURATION = 2.0


def throughput(work, threads: int) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def run(i):
        n = 0
        while not stop.is_set():
            work(i, n)
            n += 1
        counts[i] = n

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in pool:
        t.join()
    return sum(counts) / DURATION


def main() -> int:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((10_000, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    semantic = thrifty.SemanticCache(dim=256, threshold=0.9, index="flat")
    semantic.put_vectors(vectors, [str(i) for i in range(len(vectors))], [""] * len(vectors))
    queries = vectors[rng.integers(0, len(vectors), 4096)]

    def semantic_work(i, n):
        q = queries[(n * 7 + i * 131) % len(queries)]
        if n % 20 == 0:
            semantic.put_vector(q, f"t{i}-{n % 50}", "x")
        else:
            semantic.get_vector(q)

    exact = thrifty.ExactCache()
    keys = [thrifty.request_key({"q": i}) for i in range(10_000)]
    for k in keys:
        exact.put(k, "x" * 1024)

    def exact_work(i, n):
        exact.get(keys[(n * 7 + i * 131) % len(keys)])

    rows, result = [], {}
    for name, work in (
        ("semantic get_vector (10k, flat)", semantic_work),
        ("exact get", exact_work),
    ):
        base = None
        for threads in (1, 2, 4):
            ops = statistics.median(throughput(work, threads) for _ in range(3))
            base = base or ops
            rows.append([name, threads, ops, ops / base])
            result[f"{name}/{threads}"] = {"ops_per_s": ops, "speedup": ops / base}
    print_table(
        f"shared cache throughput by Python threads ({os.cpu_count()} cores)",
        ["workload", "threads", "ops/s", "vs 1 thread"],
        rows,
    )
    print(f"wrote {write_json('cache_threads', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
