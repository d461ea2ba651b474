#!/usr/bin/env python3
"""SemanticCache's HNSW scope against FAISS's IndexHNSWFlat: lookup, insert and recall@1.

Same vectors, same parameters (M=32, ef_search=64, ef_construction=160), inner product, one
thread for the timed calls, both called from Python one vector at a time (embedding excluded).

- support 12k (replay): the final user message of every `support` request of the synthetic
  trace (thrifty.synth, 200k requests, seed 1), deduplicated, HashingEmbedder. Each query in
  order is looked up; on a miss (similarity < 0.9) it is inserted, as the replay engine and the
  wrapper's miss path do. About 12k entries at the end. Lookup and insert are timed along the
  way (after the first 4,000 queries).
- support 12k static: the first 12,000 of those texts by StaticEmbedder, loaded in bulk; the
  last 2,000 inserted one at a time (timed).
- qqp 50k: 50,000 real questions from ../shared/data (QQP) by StaticEmbedder (skipped when
  ../shared is absent), loaded as above; clustered 50k: 50,000 synthetic clustered vectors.

Lookups after loading: 2,000 held-out queries (support: texts of another synthetic trace, seed
2, not stored), three rounds, median. Recall@1: the fraction whose best match
(SemanticCache.search, k=1) is as similar as the exact best (brute force).

    .venv/bin/python benchmarks/bench_hnsw.py [--quick] [--baseline DIR]

--baseline DIR runs the thrifty side again with another build first on PYTHONPATH (DIR holds
its `thrifty` package, e.g. a copy of main's site-packages/thrifty) and prints before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, qqp_texts, write_json  # noqa: E402
from thrifty import _core, synth  # noqa: E402

try:
    import faiss
except ImportError:  # the peer is optional: thrifty's figures still print
    faiss = None

# ../shared/data beside the checkout (or beside the worktrees' folder).
_HERE = Path(__file__).resolve()
DATA = next(
    (p / "shared" / "data" for p in _HERE.parents[2:4] if (p / "shared" / "data").exists()),
    _HERE.parents[2] / "shared" / "data",
)
DIM = 256
M, EF_SEARCH, EF_CONSTRUCTION = 32, 64, 160
THRESHOLD = 0.9
clock = time.perf_counter_ns


def support_texts(n: int, seed: int) -> list:
    texts = []
    for record in synth.records(n=n, seed=seed):
        if record.get("namespace") != "support":
            continue
        users = [m for m in record["request"]["messages"] if m["role"] == "user"]
        if users and isinstance(users[-1]["content"], str):
            texts.append(users[-1]["content"])
    return list(dict.fromkeys(texts))


def normalized(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    keep = norms[:, 0] > 0
    return np.ascontiguousarray(x[keep] / norms[keep])


class Thrifty:
    name = "thrifty"

    def __init__(self) -> None:
        self.cache = thrifty.SemanticCache(dim=DIM, threshold=THRESHOLD, hnsw_m=M, ef_search=64)
        self.count = 0

    def lookup(self, v: np.ndarray) -> bool:
        return self.cache.get_vector(v) is not None

    def best(self, v: np.ndarray) -> float:
        found = self.cache.search(v, k=1)
        return found[0][0] if found else -2.0

    def insert(self, v: np.ndarray) -> None:
        self.cache.put_vector(v, str(self.count), "")
        self.count += 1

    def bulk(self, x: np.ndarray) -> None:
        for i in range(0, len(x), 10_000):
            chunk = x[i : i + 10_000]
            keys = [str(self.count + j) for j in range(len(chunk))]
            self.cache.put_vectors(chunk, keys, [""] * len(chunk))
            self.count += len(chunk)


class Faiss:
    name = "faiss"

    def __init__(self) -> None:
        self.index = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.hnsw.efSearch = EF_SEARCH

    def best(self, v: np.ndarray) -> float:
        if self.index.ntotal == 0:
            return -2.0
        similarities, _ = self.index.search(v[None, :], 1)
        return float(similarities[0, 0])

    def lookup(self, v: np.ndarray) -> bool:
        return self.best(v) >= THRESHOLD

    def insert(self, v: np.ndarray) -> None:
        self.index.add(v[None, :])

    def bulk(self, x: np.ndarray) -> None:
        faiss.omp_set_num_threads(2)
        self.index.add(x)
        faiss.omp_set_num_threads(1)


def held_out(index, stored: np.ndarray, queries: np.ndarray) -> dict:
    for q in queries[:200]:
        index.lookup(q)
    times = []
    for _ in range(3):
        for q in queries:
            t0 = clock()
            index.lookup(q)
            times.append(clock() - t0)
    exact = _core._best_matches(queries, stored, 1)[0][:, 0]
    found = np.array([index.best(q) for q in queries])
    return {
        "lookup_p50_us": float(np.median(times)) / 1e3,
        "recall_at_1": float(np.mean(found >= exact - 1e-5)),
    }


def replay(make, vectors: np.ndarray, queries: np.ndarray) -> dict:
    index = make()
    stored, lookups, inserts, hits = [], [], [], 0
    for i, v in enumerate(vectors):
        t0 = clock()
        hit = index.lookup(v)
        t1 = clock()
        if i >= 4000:
            lookups.append(t1 - t0)
        if hit:
            hits += 1
            continue
        t0 = clock()
        index.insert(v)
        t1 = clock()
        if i >= 4000:
            inserts.append(t1 - t0)
        stored.append(v)
    result = {
        "entries": len(stored),
        "hits": hits,
        "replay_lookup_p50_us": float(np.median(lookups)) / 1e3,
        "insert_mean_us": float(np.mean(inserts)) / 1e3,
    }
    result.update(held_out(index, np.array(stored), queries))
    return result


def loaded(make, vectors: np.ndarray, queries: np.ndarray) -> dict:
    index = make()
    start = time.perf_counter()
    index.bulk(vectors[:-2000])
    build_s = time.perf_counter() - start
    inserts = []
    for v in vectors[-2000:]:
        t0 = clock()
        index.insert(v)
        inserts.append(clock() - t0)
    result = {
        "entries": len(vectors),
        "bulk_s": build_s,
        "insert_mean_us": float(np.mean(inserts)) / 1e3,
    }
    result.update(held_out(index, vectors, queries))
    return result


def datasets(quick: bool):
    hashing = thrifty.HashingEmbedder(dim=DIM)
    try:
        static = thrifty.StaticEmbedder()
    except thrifty.Error as e:
        print(f"(StaticEmbedder unavailable: {e}; using HashingEmbedder)")
        static = hashing
    n_trace = 50_000 if quick else 200_000
    texts = support_texts(n_trace, seed=1)
    seen = set(texts)
    held = [t for t in support_texts(60_000, seed=2) if t not in seen][:2000]
    yield (
        "support 12k (replay)",
        replay,
        normalized(hashing.embed_batch(texts)),
        normalized(hashing.embed_batch(held)),
    )
    yield (
        "support 12k static",
        loaded,
        normalized(static.embed_batch(texts[:12_000])),
        normalized(static.embed_batch(held)),
    )
    size = 20_000 if quick else 50_000
    qqp = qqp_texts(DATA)
    if qqp is not None:
        np.random.default_rng(0).shuffle(qqp)
        x = normalized(static.embed_batch(qqp[: size + 2200]))
        yield f"qqp {size // 1000}k static", loaded, x[:size], x[size : size + 2000]
    else:
        print(f"note: {DATA} is absent; skipping the QQP set")
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((1000, DIM)).astype(np.float32)
    x = centers[rng.integers(0, 1000, size + 2000)]
    x = normalized(x + 0.35 * rng.standard_normal(x.shape).astype(np.float32))
    yield f"clustered {size // 1000}k", loaded, x[:size], x[size:]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sets (20k, short trace)")
    parser.add_argument("--baseline", help="another build's package dir: print before/after")
    parser.add_argument("--thrifty-only", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if faiss is not None:
        faiss.omp_set_num_threads(1)
    makers = [Thrifty] + ([Faiss] if faiss is not None and not args.thrifty_only else [])
    results = []
    for name, run, vectors, queries in datasets(args.quick):
        for make in makers:
            result = {"set": name, "index": make.name, **run(make, vectors, queries)}
            results.append(result)
            print(f"  {name:24s} {make.name:8s} {json.dumps(result)}", flush=True)
    if args.thrifty_only:
        Path(args.thrifty_only).write_text(json.dumps(results))
        return 0
    before = baseline_results(args) if args.baseline else None
    rows = []
    for name in dict.fromkeys(r["set"] for r in results):
        ours = next(r for r in results if r["set"] == name and r["index"] == "thrifty")
        peer = next((r for r in results if r["set"] == name and r["index"] == "faiss"), None)
        rows.append(
            [
                name,
                f"{ours['entries']:,}",
                ours["lookup_p50_us"],
                peer["lookup_p50_us"] if peer else "-",
                peer["lookup_p50_us"] / ours["lookup_p50_us"] if peer else "-",
                ours["insert_mean_us"],
                peer["insert_mean_us"] if peer else "-",
                peer["insert_mean_us"] / ours["insert_mean_us"] if peer else "-",
                ours["recall_at_1"],
                peer["recall_at_1"] if peer else "-",
            ]
        )
    print()
    print_table(
        f"HNSW scope: thrifty SemanticCache vs faiss.IndexHNSWFlat (M={M}, ef_search={EF_SEARCH},"
        f" ef_construction={EF_CONSTRUCTION}; us per call from Python, one thread)",
        [
            "set",
            "entries",
            "lookup p50",
            "faiss",
            "x",
            "insert mean",
            "faiss",
            "x",
            "recall@1",
            "faiss",
        ],
        rows,
    )
    if before:
        print_before_after(before, results)
    print(f"wrote {write_json('hnsw', {'results': results, 'baseline': before})}")
    return 0


def baseline_results(args) -> list:
    """The thrifty rows measured with the --baseline build, in a child process."""
    print(f"\nbaseline: {args.baseline}", flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.baseline, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baseline.json"
        command = [sys.executable, __file__, "--thrifty-only", str(out)]
        subprocess.run(command + (["--quick"] if args.quick else []), env=env, check=True)
        return json.loads(out.read_text())


def print_before_after(before: list, after: list) -> None:
    rows = []
    for new in (r for r in after if r["index"] == "thrifty"):
        old = next((r for r in before if r["set"] == new["set"]), None)
        if old is None:
            continue
        rows.append(
            [
                new["set"],
                f"{old['entries']:,} / {new['entries']:,}",
                old["lookup_p50_us"],
                new["lookup_p50_us"],
                old["lookup_p50_us"] / new["lookup_p50_us"],
                old["insert_mean_us"],
                new["insert_mean_us"],
                old["insert_mean_us"] / new["insert_mean_us"],
                old["recall_at_1"],
                new["recall_at_1"],
            ]
        )
    print()
    print_table(
        "thrifty before (--baseline build) / after (this build)",
        [
            "set",
            "entries",
            "lookup before",
            "after",
            "x",
            "insert before",
            "after",
            "x",
            "recall before",
            "after",
        ],
        rows,
    )


if __name__ == "__main__":
    sys.exit(main())
