#!/usr/bin/env python3
"""thrifty.SemanticCache against GPTCache on the same queries, embedder and threshold.

GPTCache 0.1.44 runs as its README sets it up (sqlite scalar store + FAISS vector store,
SearchDistanceEvaluation) through gptcache.adapter.api.put/get, with thrifty's embedder as its
embedding function, so both sides spend the same time embedding. Its FAISS store ranks by
squared L2 distance and scores 4 - d; for unit vectors d = 2 - 2 cos, so a cosine threshold c
is GPTCache's similarity_threshold (1 + c) / 2. The same threshold, the same stored questions
(QQP text_a) and the same queries (text_b) go to both.

    pip install 'thrifty[bench]'    # gptcache, faiss-cpu, sqlalchemy
    .venv/bin/python benchmarks/bench_vs_gptcache.py [--stored 5000] [--threshold 0.9]

Skips cleanly without ../shared/data or without gptcache.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402

QQP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"


def load_pairs(n: int):
    with gzip.open(QQP, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    random.Random(1).shuffle(rows)
    seen, out = set(), []
    for row in rows:  # one pair per stored question, so an id names one text
        if row["text_a"] not in seen:
            seen.add(row["text_a"])
            out.append(row)
        if len(out) == n:
            break
    return out


def score(answers, rows):
    correct = wrong = 0
    for answer, (i, row) in zip(answers, enumerate(rows)):
        if answer is None:
            continue
        ok = row["label"] == 1 and answer == str(i)
        ok |= rows[int(answer)]["text_a"] == row["text_b"]  # the same question verbatim
        correct += ok
        wrong += not ok
    return correct, wrong


def run_thrifty(embedder, rows, threshold):
    cache = thrifty.SemanticCache(embedder, threshold=threshold)
    for i, row in enumerate(rows):
        cache.put(row["text_a"], str(i))
    answers, latencies = [], []
    for row in rows:
        t0 = time.perf_counter()
        hit = cache.get(row["text_b"])
        latencies.append(time.perf_counter() - t0)
        answers.append(None if hit is None else hit.response)
    return answers, latencies


def run_gptcache(embedder, rows, threshold, workdir):
    from gptcache import Cache, Config
    from gptcache.adapter.api import get, put
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    cache = Cache()
    manager = get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{workdir}/gptcache.db"),
        VectorBase("faiss", dimension=embedder.dim, index_path=f"{workdir}/faiss.index"),
    )
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: embedder.embed(text),
        data_manager=manager,
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=(1 + threshold) / 2),
    )
    for i, row in enumerate(rows):
        put(row["text_a"], str(i), cache_obj=cache)
    answers, latencies = [], []
    for row in rows:
        t0 = time.perf_counter()
        answer = get(row["text_b"], cache_obj=cache)
        latencies.append(time.perf_counter() - t0)
        answers.append(answer)
    return answers, latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    if not QQP.exists():
        print(f"{QQP} is absent; skipping")
        return 0
    try:
        import gptcache  # noqa: F401
    except ImportError:
        print("gptcache is not installed (pip install 'thrifty[bench]'); skipping")
        return 0
    rows = load_pairs(args.stored)
    embedders = [thrifty.HashingEmbedder(dim=256)]
    try:
        embedders.append(thrifty.StaticEmbedder())
    except (thrifty.Error, AttributeError) as e:
        print(f"(StaticEmbedder unavailable: {e})")
    table, result = [], {}
    for embedder in embedders:
        thrifty_answers, thrifty_lat = run_thrifty(embedder, rows, args.threshold)
        # GPTCache saves its FAISS index from an atexit hook, so its directory outlives main().
        workdir = tempfile.mkdtemp(prefix="thrifty-vs-gptcache-")
        gpt_answers, gpt_lat = run_gptcache(embedder, rows, args.threshold, workdir)
        for name, answers, lat in (
            ("thrifty", thrifty_answers, thrifty_lat),
            ("GPTCache", gpt_answers, gpt_lat),
        ):
            correct, wrong = score(answers, rows)
            p50, p99 = np.percentile(lat, 50) * 1e6, np.percentile(lat, 99) * 1e6
            table.append([f"{name} / {embedder.name}", p50, p99, correct, wrong])
            result[f"{name}/{embedder.name}"] = {
                "p50_us": p50,
                "p99_us": p99,
                "correct_hits": correct,
                "false_hits": wrong,
            }
        ratio = np.median(gpt_lat) / np.median(thrifty_lat)
        result[f"speedup/{embedder.name}"] = ratio
        table.append([f"  -> thrifty is {ratio:.1f}x faster per lookup", "", "", "", ""])
    print_table(
        f"{len(rows):,} stored questions, {len(rows):,} lookups (QQP), cosine threshold "
        f"{args.threshold}; latency includes embedding on both sides",
        ["cache / embedder", "p50 us", "p99 us", "correct hits", "false hits"],
        table,
    )
    print(f"wrote {write_json('vs_gptcache', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
