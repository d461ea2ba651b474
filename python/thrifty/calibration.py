"""Choosing a semantic-cache threshold by the error you accept.

`calibrate_threshold` replays labeled pairs the way the cache will see them: every first text is
stored, and every second text is answered by its best match among *all* stored texts (retrieval,
not pairwise scoring; with many stored entries, retrieval finds wrong near-duplicates that a
pairwise score never sees). A hit is correct when it returns the pair's own first text and the
pair is labeled a paraphrase, or when the stored text it returns is the query itself, verbatim
(the same question, which an exact cache would answer too; paraphrase corpora such as QQP repeat
questions across pairs). Every other hit is a false hit. strict=True drops the verbatim rule
(GPTCache's benchmark protocol).

    false_hit_rate = false hits / queries       (the chance a query gets a wrong answer)
    recall         = correct hits on positive pairs / positive pairs
    precision      = correct hits / hits

The returned threshold is the lowest whose one-sided upper confidence bound (Wilson score) on the
false-hit rate stays within the target, so a small calibration set errs toward caution. Calibrate
with about as many stored entries as the cache will hold: false hits grow with the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from thrifty import _core

_Z = {0.9: 1.2816, 0.95: 1.6449, 0.99: 2.3263}  # one-sided normal quantiles


@dataclass(frozen=True)
class Calibration:
    """A threshold and what it achieved on the calibration pairs."""

    threshold: float
    target_false_hit_rate: float
    false_hit_rate: float
    false_hit_rate_upper: float  # one-sided upper confidence bound
    confidence: float
    precision: float
    recall: float
    hit_rate: float
    queries: int
    positives: int
    stored: int
    curve: List[Dict[str, float]] = field(repr=False, default_factory=list)


@dataclass(frozen=True)
class ThresholdResult:
    """What a threshold does on a set of pairs (see calibrate_threshold for the definitions)."""

    threshold: float
    false_hit_rate: float
    false_hit_rate_on_negatives: float
    precision: float
    recall: float
    hit_rate: float
    correct_hits: int
    false_hits: int
    queries: int


def wilson_upper(failures: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Wilson score upper bound for a binomial proportion."""
    if n == 0:
        return 1.0
    z = _Z.get(confidence)
    if z is None:
        raise _core.InvalidArgumentError(
            f"confidence must be one of {sorted(_Z)}, got {confidence}"
        )
    p = failures / n
    denominator = 1 + z * z / n
    center = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (center + margin) / denominator)


def _check(
    pairs: Sequence[Tuple[str, str]], labels: Sequence[Any]
) -> Tuple[List[str], List[str], np.ndarray]:
    if len(pairs) != len(labels):
        raise _core.InvalidArgumentError(
            f"pairs and labels must have the same length, got {len(pairs)} and {len(labels)}"
        )
    if not pairs:
        raise _core.InvalidArgumentError("calibration needs at least one pair")
    first, second = [], []
    for i, pair in enumerate(pairs):
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, str) for t in pair)
        ):
            raise _core.InvalidArgumentError(
                f"pairs[{i}] must be a (str, str) pair, got {pair!r:.80}"
            )
        first.append(pair[0])
        second.append(pair[1])
    label_array = np.asarray(labels)
    if not np.isin(label_array, (0, 1)).all():
        raise _core.InvalidArgumentError("labels must be 0 (different meaning) or 1 (same meaning)")
    return first, second, label_array.astype(bool)


def _embed(embedder: Any, texts: List[str], batch: int = 4096) -> np.ndarray:
    chunks = [
        np.asarray(embedder.embed_batch(texts[i : i + batch]), dtype=np.float32)
        for i in range(0, len(texts), batch)
    ]
    return np.ascontiguousarray(np.vstack(chunks))


def _retrieve(embedder: Any, pairs, labels, strict: bool = False):
    """(best similarity, correct) for each query, and the number of stored texts."""
    first, second, positive = _check(pairs, labels)
    stored_texts = list(dict.fromkeys(first))
    index = {text: i for i, text in enumerate(stored_texts)}
    stored = _embed(embedder, stored_texts)
    queries = _embed(embedder, second)
    sims, best = _core._best_matches(queries, stored, 1)
    partner = np.array([index[t] for t in first])
    correct = positive & (best[:, 0] == partner)
    if not strict:
        correct |= np.array([stored_texts[j] == q for j, q in zip(best[:, 0], second)])
    return sims[:, 0].astype(np.float64), correct, positive, len(stored_texts)


def _metrics(sims, correct, positive, threshold: float) -> ThresholdResult:
    hits = sims >= threshold
    correct_hits = int((hits & correct).sum())
    false_hits = int((hits & ~correct).sum())
    n = len(sims)
    negatives = int((~positive).sum())
    return ThresholdResult(
        threshold=float(threshold),
        false_hit_rate=false_hits / n,
        false_hit_rate_on_negatives=int((hits & ~positive).sum()) / negatives if negatives else 0.0,
        precision=correct_hits / max(1, correct_hits + false_hits),
        recall=int((hits & correct & positive).sum()) / max(1, int(positive.sum())),
        hit_rate=(correct_hits + false_hits) / n,
        correct_hits=correct_hits,
        false_hits=false_hits,
        queries=n,
    )


def evaluate_threshold(
    embedder: Any,
    pairs: Sequence[Tuple[str, str]],
    labels: Sequence[int],
    threshold: float,
    strict: bool = False,
) -> ThresholdResult:
    """What `threshold` does on labeled pairs, replayed as cache traffic (see module doc)."""
    sims, correct, positive, _ = _retrieve(embedder, pairs, labels, strict)
    return _metrics(sims, correct, positive, threshold)


def calibrate_threshold(
    embedder: Any,
    pairs: Sequence[Tuple[str, str]],
    labels: Sequence[int],
    target_false_hit_rate: float = 0.01,
    confidence: float = 0.95,
    curve_points: int = 41,
    strict: bool = False,
) -> Calibration:
    """The lowest threshold whose false-hit rate, with `confidence`, is at most the target.

    pairs: (stored text, query text); labels: 1 when they mean the same, else 0.
    """
    if not 0 < target_false_hit_rate < 1:
        raise _core.InvalidArgumentError(
            f"target_false_hit_rate must be in (0, 1), got {target_false_hit_rate}"
        )
    sims, correct, positive, stored = _retrieve(embedder, pairs, labels, strict)
    n = len(sims)
    order = np.argsort(-sims, kind="stable")
    wrong_cumulative = np.cumsum(~correct[order])
    chosen: Optional[int] = None
    for i in range(n):  # wrong_cumulative only grows, so the first failure ends the scan
        # A threshold at sims[order[i]] admits every query at least that similar (ties included).
        if i + 1 < n and sims[order[i + 1]] == sims[order[i]]:
            continue
        if wilson_upper(int(wrong_cumulative[i]), n, confidence) <= target_false_hit_rate:
            chosen = i
        else:
            break
    # No query admitted: the threshold sits just above the best similarity seen.
    threshold = (
        float(sims[order[chosen]]) if chosen is not None else float(min(1.0, sims.max() + 1e-6))
    )
    at = _metrics(sims, correct, positive, threshold)
    grid = np.linspace(max(0.0, float(np.percentile(sims, 1))), 1.0, curve_points)
    curve = [vars(_metrics(sims, correct, positive, float(t))) for t in grid]
    return Calibration(
        threshold=threshold,
        target_false_hit_rate=target_false_hit_rate,
        false_hit_rate=at.false_hit_rate,
        false_hit_rate_upper=wilson_upper(at.false_hits, n, confidence),
        confidence=confidence,
        precision=at.precision,
        recall=at.recall,
        hit_rate=at.hit_rate,
        queries=n,
        positives=int(positive.sum()),
        stored=stored,
        curve=curve,
    )
