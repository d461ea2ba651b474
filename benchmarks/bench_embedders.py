#!/usr/bin/env python3
"""How well and how fast do thrifty's embedders tell paraphrases from different questions?

Quality: Quora Question Pairs (../shared/data/cache/qqp_pairs.jsonl.gz, 80,854 labelled pairs).
Each pair is scored by the cosine of its two questions' vectors; the score is judged against the
label by ROC-AUC and by the threshold with the best F1 (the semantic cache's hit threshold).
The pairs are split at random (fixed seed) into two halves. The HashingEmbedder's weights are
searched on the tuning half (coordinate ascent from the defaults, the search that chose them;
cpp/include/thrifty/embed/hashing_embedder.h says why the bigrams keep a small weight); every
figure in the table is measured on the other, held-out half.

Speed: the median time to embed one query (embed(text), cycling through 1,000 questions), and
the time per text of embed_batch over 1,000 questions.

Peers in the same run, when the `embeddings` extra is installed: the `wordllama` package itself
(the reference thrifty.StaticEmbedder must reproduce), and a CallableEmbedder around it (the cost
of calling back into Python).

    .venv/bin/python benchmarks/bench_embedders.py

Skipped with a message when ../shared/data is absent.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import ROOT, per_call_us, print_table, write_json  # noqa: E402

SHARED_DATA = Path(os.environ.get("THRIFTY_SHARED_DATA", ROOT.parent / "shared" / "data"))
QQP = SHARED_DATA / "cache" / "qqp_pairs.jsonl.gz"
SEED = 20261122

# Coordinate ascent over these values, starting from the defaults.
SEARCH = {
    "char_weight": [0.75, 1.0, 1.25, 1.5, 2.0],
    "bigram_weight": [0.0, 0.25, 0.5, 1.0],
    "stopword_weight": [0.1, 0.25, 0.5, 1.0],
    "char_ngrams": [(2, 4), (3, 4), (3, 5), (3, 6)],
}

Pairs = Tuple[List[str], List[str], np.ndarray]
EmbedBatch = Callable[[List[str]], np.ndarray]


def load_pairs() -> Tuple[Pairs, Pairs]:
    with gzip.open(QQP, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    order = np.random.default_rng(SEED).permutation(len(rows))
    half = len(rows) // 2

    def take(indices) -> Pairs:
        picked = [rows[i] for i in indices]
        return (
            [r["text_a"] for r in picked],
            [r["text_b"] for r in picked],
            np.array([int(r["label"]) for r in picked]),
        )

    return take(order[:half]), take(order[half:])


def cosines(embed_batch: EmbedBatch, pairs: Pairs) -> np.ndarray:
    a, b, _ = pairs
    va, vb = embed_batch(a), embed_batch(b)
    norms = np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1)
    return (va * vb).sum(axis=1) / np.where(norms > 0, norms, 1.0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), ties counted as half."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average 1-based ranks
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_f1(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """The threshold t maximizing F1 of `score >= t`, with its F1, precision and recall."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # cut only between distinct scores
    tp, fp, s = tp[last_of_tie], fp[last_of_tie], s[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / max(int(y.sum()), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    i = int(np.argmax(f1))
    return {
        "threshold": float(s[i]),
        "f1": float(f1[i]),
        "precision": float(precision[i]),
        "recall": float(recall[i]),
    }


def hashing_options(point: Dict[str, object]) -> Dict[str, object]:
    options = {k: v for k, v in point.items() if k != "char_ngrams"}
    options["char_ngram_min"], options["char_ngram_max"] = point["char_ngrams"]
    return options


def tune_hashing(tuning: Pairs) -> Tuple[Dict[str, object], List[dict]]:
    """Coordinate ascent on the tuning half; returns the best point and every trial."""
    default = thrifty.HashingEmbedder()
    point: Dict[str, object] = {
        "char_weight": 1.25,
        "bigram_weight": 0.25,
        "stopword_weight": 0.25,
        "char_ngrams": (3, 4),
    }
    assert thrifty.HashingEmbedder(**hashing_options(point)).name == default.name, (
        "SEARCH's starting point must be the defaults"
    )
    trials: List[dict] = []
    cache: Dict[str, float] = {}

    def score(candidate: Dict[str, object]) -> float:
        embedder = thrifty.HashingEmbedder(**hashing_options(candidate))
        if embedder.name not in cache:
            cache[embedder.name] = roc_auc(cosines(embedder.embed_batch, tuning), tuning[2])
            trials.append({"name": embedder.name, "auc": cache[embedder.name]})
        return cache[embedder.name]

    best = score(point)
    for key, values in SEARCH.items():
        for value in values:
            candidate = dict(point, **{key: value})
            auc = score(candidate)
            if auc > best + 1e-3:  # gains below 0.001 AUC are noise at this size
                best, point = auc, candidate
    return point, trials


def wordllama_reference():
    """wordllama's own inference object, loaded offline; None when the package is absent."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None:
        return None
    from wordllama import WordLlama

    # wordllama 0.4.0 looks for its tokenizer in `tokenizer/` but ships it in `tokenizers/`;
    # hand it the shipped file through a temporary cache so that it does not download.
    package = Path(next(iter(spec.submodule_search_locations)))
    cache = Path(tempfile.mkdtemp(prefix="thrifty-bench-wordllama-"))
    (cache / "tokenizers").mkdir()
    shutil.copy(package / "tokenizers" / "l2_supercat_tokenizer_config.json", cache / "tokenizers")
    try:
        return WordLlama.load(cache_dir=cache, disable_download=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def timings(embed_one: Callable[[str], object], embed_batch: EmbedBatch, queries: Sequence[str]):
    cycle = itertools.cycle(queries)
    per_query = per_call_us(lambda: embed_one(next(cycle)), calls=1000, rounds=11)
    batch = list(queries)
    embed_batch(batch)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        embed_batch(batch)
        runs.append((time.perf_counter() - start) / len(batch) * 1e6)
    return per_query["median_us"], statistics.median(runs)


def main() -> int:
    if not QQP.is_file():
        print(f"{QQP} is absent (../shared/data is not on this machine); skipping")
        return 0
    tuning, held_out = load_pairs()
    print(
        f"QQP: {len(tuning[2]):,} tuning pairs, {len(held_out[2]):,} held-out pairs "
        f"({held_out[2].mean():.1%} paraphrases), seed {SEED}\n"
    )

    start = time.perf_counter()
    tuned, trials = tune_hashing(tuning)
    print(
        f"HashingEmbedder search on the tuning half: {len(trials)} settings in "
        f"{time.perf_counter() - start:.0f} s; best {thrifty.HashingEmbedder(**hashing_options(tuned)).name}"
        f" (AUC {max(t['auc'] for t in trials):.4f})\n"
    )

    candidates: List[Tuple[str, thrifty.Embedder | None, EmbedBatch, Callable]] = []
    default = thrifty.HashingEmbedder()
    candidates.append(("thrifty.HashingEmbedder()", default, default.embed_batch, default.embed))
    best = thrifty.HashingEmbedder(**hashing_options(tuned))
    if best.name != default.name:
        candidates.append((f"thrifty.{best.name}", best, best.embed_batch, best.embed))
    for dim in (64, 1024):
        other = thrifty.HashingEmbedder(dim)
        candidates.append(
            (f"thrifty.HashingEmbedder({dim})", other, other.embed_batch, other.embed)
        )

    notes = []
    try:
        static = thrifty.StaticEmbedder()
    except thrifty.FailedPreconditionError as error:
        static = None
        notes.append(f"StaticEmbedder skipped: {error}")
    if static is not None:
        candidates.append(("thrifty.StaticEmbedder()", static, static.embed_batch, static.embed))
    reference = wordllama_reference() if static is not None else None
    if reference is not None:

        def wl_batch(texts):
            return reference.embed(texts, norm=True)

        candidates.append(
            ("wordllama package (peer)", None, wl_batch, lambda text: reference.embed(text))
        )
        callable_embedder = thrifty.CallableEmbedder(wl_batch, 256, name="wordllama-callback")
        candidates.append(
            (
                "CallableEmbedder(wordllama)",
                callable_embedder,
                callable_embedder.embed_batch,
                callable_embedder.embed,
            )
        )

    queries = held_out[0][:1000]
    rows = []
    results: Dict[str, object] = {
        "dataset": {
            "file": "cache/qqp_pairs.jsonl.gz",
            "seed": SEED,
            "tuning_pairs": len(tuning[2]),
            "held_out_pairs": len(held_out[2]),
        },
        "hashing_search": {"start": "defaults", "best": hashing_options(tuned), "trials": trials},
        "embedders": {},
        "notes": notes,
    }
    for label, embedder, embed_batch, embed_one in candidates:
        scores = cosines(embed_batch, held_out)
        auc = roc_auc(scores, held_out[2])
        f1 = best_f1(scores, held_out[2])
        tuned_threshold = best_f1(cosines(embed_batch, tuning), tuning[2])["threshold"]
        predicted = scores >= tuned_threshold
        positives = held_out[2] == 1
        tp = int((predicted & positives).sum())
        f1_at_tuned = 2 * tp / max(int(predicted.sum()) + int(positives.sum()), 1)
        query_us, batch_us = timings(embed_one, embed_batch, queries)
        rows.append(
            [
                label,
                auc,
                f1["threshold"],
                f1["f1"],
                f1["precision"],
                f1["recall"],
                f1_at_tuned,
                query_us,
                batch_us,
            ]
        )
        results["embedders"][label] = {
            "name": embedder.name if embedder is not None else "wordllama.embed(norm=True)",
            "dim": embedder.dim if embedder is not None else 256,
            "roc_auc": auc,
            "best_f1": f1,
            "threshold_from_tuning_half": tuned_threshold,
            "f1_at_tuning_threshold": f1_at_tuned,
            "embed_median_us": query_us,
            "embed_batch_us_per_text": batch_us,
        }

    print_table(
        "Held-out QQP pairs: cosine(text_a, text_b) vs label; time per query",
        [
            "embedder",
            "ROC-AUC",
            "best-F1 thr",
            "F1",
            "precision",
            "recall",
            "F1 @ tuning thr",
            "embed us",
            "batch us/text",
        ],
        rows,
    )
    by_label = results["embedders"]
    if "wordllama package (peer)" in by_label and "thrifty.StaticEmbedder()" in by_label:
        ours = by_label["thrifty.StaticEmbedder()"]["embed_median_us"]
        peer = by_label["wordllama package (peer)"]["embed_median_us"]
        results["static_vs_wordllama_speedup"] = peer / ours
        print(f"\nthrifty.StaticEmbedder embeds one query {peer / ours:.1f}x faster than wordllama")
    for note in notes:
        print(f"\nnote: {note}")
    print(f"\nwrote {write_json('embedders', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
