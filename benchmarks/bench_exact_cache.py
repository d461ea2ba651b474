#!/usr/bin/env python3
"""ExactCache get latency, hits and misses, p50/p99: C++ (bench_exact_cache) and through Python,
with a plain Python dict lookup in the same run as the floor any Python cache pays.

    make bench   (builds the C++ program)  or  .venv/bin/python benchmarks/bench_exact_cache.py

Target (issue #3): an exact hit through Python <= 5 us p50.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import ROOT, print_table, write_json  # noqa: E402

N, CALLS = 10_000, 200_000


def timed(fn, keys):
    samples = np.empty(len(keys))
    clock = time.perf_counter_ns
    for i, key in enumerate(keys):
        start = clock()
        fn(key)
        samples[i] = clock() - start
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def main() -> int:
    keys = [
        thrifty.request_key({"model": "m", "messages": [{"role": "user", "content": str(i)}]})
        for i in range(N)
    ]
    missing = [k[::-1] for k in keys]
    value = "x" * 2048
    cache = thrifty.ExactCache()
    plain = {}
    for key in keys:
        cache.put(key, value, namespace="tenant-a")
        plain[("tenant-a", key)] = value
    rng = random.Random(1)
    hits = [rng.choice(keys) for _ in range(CALLS)]
    misses = [rng.choice(missing) for _ in range(CALLS)]
    rows, result = [], {}
    for name, fn in (
        ("thrifty.ExactCache.get", lambda k: cache.get(k, namespace="tenant-a")),
        ("python dict.get (floor)", lambda k: plain.get(("tenant-a", k))),
    ):
        hit = timed(fn, hits)
        miss = timed(fn, misses)
        rows.append([name, hit[0] / 1e3, hit[1] / 1e3, miss[0] / 1e3, miss[1] / 1e3])
        result[name] = {
            "hit_p50_us": hit[0] / 1e3,
            "hit_p99_us": hit[1] / 1e3,
            "miss_p50_us": miss[0] / 1e3,
            "miss_p99_us": miss[1] / 1e3,
        }
    cpp = ROOT / "build" / "release" / "benchmarks" / "bench_exact_cache"
    if cpp.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.json"
            subprocess.run([str(cpp), "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
            c = json.loads(out.read_text())
        rows.insert(
            0,
            [
                "ExactCache::Get (C++)",
                c["hit_p50_ns"] / 1e3,
                c["hit_p99_ns"] / 1e3,
                c["miss_p50_ns"] / 1e3,
                c["miss_p99_ns"] / 1e3,
            ],
        )
        result["cpp"] = c
    else:
        print(f"(C++ row: build it with `make bench`; {cpp} is absent)")
    print_table(
        f"exact cache get, {N:,} entries of 2 KB, {CALLS:,} lookups each (per-call timer included)",
        ["implementation", "hit p50 us", "hit p99 us", "miss p50 us", "miss p99 us"],
        rows,
    )
    print("target: hit through Python <= 5 us p50")
    print(f"wrote {write_json('exact_cache', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
