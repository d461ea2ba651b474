"""Evaluation protocol: fit on some rows, sweep the router's threshold on the others, baselines.

Protocol (the same for every dataset):
- Outer split: the dataset's train/test split (RouterBench, MMLU) or leave-one-group-out
  (MT-Bench: one question at a time). A scorer (a router) is fitted on the outer fitting rows
  only and scores the held-out rows. Evaluation rows are never seen by the fit they are scored by.
- Threshold sweep: the router's rule (cheapest expected cost among models whose predicted
  quality >= threshold; if none, the highest predicted quality) is applied at every threshold
  where a decision can change, giving the router's cost-quality curve on the held-out rows.
  Costs are REALIZED costs of the chosen model on that row (RouterBench: the real per-prompt
  cost), never the router's estimate.
- Calibration: the threshold the user would deploy is chosen on the fitting rows alone, from
  out-of-fold predictions (K inner folds): the least-cost threshold whose out-of-fold quality is
  at least `retained` x the best single model's on those rows. The held-out figures at that
  threshold are the honest "what you get" numbers; the curve-based figures (APGR, CPT, AIQ,
  saving at 95%) read the held-out curve as RouteLLM and RouterBench do.
- Baselines on the same held-out rows: each single model, always-cheapest, random (seeded mix of
  the cheapest and the best single model, averaged over seeds), and the oracle (per-prompt
  labels known: its frontier by a Lagrangian sweep, and the classic point "cheapest model with
  the best quality on each prompt").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from thrifty.routing_eval.data import RoutingTable

MAX_THRESHOLDS = 400
MODES = ("absolute", "relative", "utility")
RANDOM_SEEDS = 10
RANDOM_SHARES = np.linspace(0.0, 1.0, 11)


class Scorer(Protocol):
    """What the harness needs from a router: fit on labeled rows, then per-model scores."""

    def fit(self, table: RoutingTable) -> None: ...

    def score(self, prompts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """(predicted quality [n, m], expected cost USD [n, m]) in ``table.models`` order."""
        ...


ScorerFactory = Callable[[RoutingTable], Scorer]


def decide(q: np.ndarray, ec: np.ndarray, threshold: float, mode: str = "absolute") -> np.ndarray:
    """The router's rule, vectorized: the chosen column per row.

    absolute: candidates have predicted quality >= threshold; relative: >= threshold x the
    row's best predicted quality. The cheapest expected cost among candidates wins (ties: the
    higher predicted quality, then the first column); with no candidate, the highest predicted
    quality (ties: the cheaper expected cost).
    """
    if mode == "absolute":
        ok = q >= threshold
    elif mode == "relative":
        ok = q >= threshold * q.max(axis=1, keepdims=True)
    elif mode == "utility":
        return decide_utility(q, ec, threshold)
    else:
        raise ValueError(f"threshold mode {mode!r}; accepted: {', '.join(MODES)}")
    # Rank by (expected cost, -quality, column) among candidates.
    key_cost = np.where(ok, ec, np.inf)
    best_cost = key_cost.min(axis=1, keepdims=True)
    tie = ok & (key_cost == best_cost)
    choice = np.argmax(np.where(tie, q, -np.inf), axis=1)
    none = ~ok.any(axis=1)
    if none.any():
        qn, en = q[none], ec[none]
        top = qn == qn.max(axis=1, keepdims=True)
        choice[none] = np.argmin(np.where(top, en, np.inf), axis=1)
    return choice


def decide_utility(q: np.ndarray, ec: np.ndarray, lam: float) -> np.ndarray:
    """NOT the router's rule: per row the model with the most predicted quality - lam x
    expected cost (ties: the cheaper). A cost-aware alternative evaluated on the router's own
    predictions, to show what a quality-per-dollar setting would buy (docs/eval_router.md)."""
    score = q - lam * ec
    top = score >= score.max(axis=1, keepdims=True) - 1e-15
    return np.argmin(np.where(top, ec, np.inf), axis=1)


def _exchange_rates(q: np.ndarray, ec: np.ndarray) -> np.ndarray:
    """Per row, quality gained per extra dollar between every pair of models (> 0 only)."""
    dq = q[:, :, None] - q[:, None, :]
    dc = ec[:, :, None] - ec[:, None, :]
    keep = (dq > 0) & (dc > 0)
    return dq[keep] / dc[keep]


def candidate_thresholds(q: np.ndarray, mode: str, ec: Optional[np.ndarray] = None) -> np.ndarray:
    """Every threshold at which some decision can change (thinned to MAX_THRESHOLDS)."""
    if mode == "utility":
        rates = np.unique(_exchange_rates(q, ec))
        if len(rates) > MAX_THRESHOLDS:
            rates = np.unique(np.quantile(rates, np.linspace(0, 1, MAX_THRESHOLDS)))
        top = float(rates.max()) * 10 if len(rates) else 1.0
        return np.unique(np.concatenate([[0.0], rates * (1 - 1e-9), rates * (1 + 1e-9), [top]]))
    vals = (
        q.ravel()
        if mode == "absolute"
        else (q / np.maximum(q.max(axis=1, keepdims=True), 1e-12)).ravel()
    )
    vals = np.unique(np.clip(vals, 0.0, 1.0))
    if len(vals) > MAX_THRESHOLDS:
        vals = np.unique(np.quantile(vals, np.linspace(0, 1, MAX_THRESHOLDS)))
    return np.unique(np.concatenate([[0.0], vals, [np.nextafter(1.0, 2.0)]]))


@dataclass
class Point:
    cost: float  # mean realized USD per prompt
    quality: float  # mean quality
    strong_share: float  # share of rows sent to the strong (best single) model
    threshold: Optional[float] = None
    shares: Optional[List[float]] = None  # share of rows per model

    def as_dict(self) -> Dict[str, Any]:
        d = {"cost": self.cost, "quality": self.quality, "strong_share": self.strong_share}
        if self.threshold is not None:
            d["threshold"] = self.threshold
        if self.shares is not None:
            d["shares"] = self.shares
        return d


def point_of(choice: np.ndarray, quality: np.ndarray, cost: np.ndarray, strong: int, **kw) -> Point:
    rows = np.arange(len(choice))
    m = quality.shape[1]
    shares = np.bincount(choice, minlength=m) / max(len(choice), 1)
    return Point(
        cost=float(cost[rows, choice].mean()),
        quality=float(quality[rows, choice].mean()),
        strong_share=float(shares[strong]),
        shares=[float(s) for s in shares],
        **kw,
    )


def sweep(q, ec, quality, cost, strong: int, mode: str) -> List[Point]:
    return [
        point_of(decide(q, ec, t, mode), quality, cost, strong, threshold=float(t))
        for t in candidate_thresholds(q, mode, ec)
    ]


def choose_threshold(
    q, ec, quality, cost, retained: float, mode: str
) -> Tuple[float, Point, float]:
    """(threshold, point, target): the least-cost threshold whose quality >= retained x best."""
    best = float(quality.mean(axis=0).max())
    target = retained * best
    pts = sweep(q, ec, quality, cost, strong=int(np.argmax(quality.mean(axis=0))), mode=mode)
    ok = [p for p in pts if p.quality >= target - 1e-12]
    if ok:
        chosen = min(ok, key=lambda p: (p.cost, -p.quality))
    else:
        chosen = max(pts, key=lambda p: (p.quality, -p.cost))
    return float(chosen.threshold), chosen, target


def oracle_frontier(
    quality: np.ndarray, cost: np.ndarray, strong: int, n_lambdas: int = 600
) -> List[Point]:
    """Points of max sum(quality - lambda * cost) per row over a sweep of lambda >= 0.

    Each lambda gives a point on the upper convex hull of what any router with perfect
    knowledge of the labels could reach; the sweep spans from "cheapest model on every row" to
    "best quality, cheapest among ties". An inner approximation of the exact frontier (the
    lambdas are quantiles of the per-row exchange rates).
    """
    dq = quality[:, :, None] - quality[:, None, :]
    dc = cost[:, :, None] - cost[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = dq / dc
    rates = rates[(dq > 0) & (dc > 0) & np.isfinite(rates)]
    lambdas = (
        np.unique(np.quantile(rates, np.linspace(0, 1, n_lambdas))) if rates.size else np.array([])
    )
    lambdas = np.concatenate([[0.0], lambdas * (1 - 1e-9), lambdas * (1 + 1e-9), [np.inf]])
    pts = []
    for lam in lambdas:
        if np.isinf(lam):
            choice = _cheapest(quality, cost)
        else:
            score = quality - lam * cost
            top = score >= score.max(axis=1, keepdims=True) - 1e-15
            choice = np.argmin(np.where(top, cost, np.inf), axis=1)
        pts.append(point_of(choice, quality, cost, strong))
    return pts


def _cheapest(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    low = cost <= cost.min(axis=1, keepdims=True)
    return np.argmax(np.where(low, quality, -np.inf), axis=1)


def oracle_point(quality: np.ndarray, cost: np.ndarray, strong: int) -> Point:
    """The classic oracle: on each row the cheapest model among those with the top quality."""
    top = quality >= quality.max(axis=1, keepdims=True)
    return point_of(np.argmin(np.where(top, cost, np.inf), axis=1), quality, cost, strong)


def random_points(
    quality: np.ndarray, cost: np.ndarray, weak: int, strong: int, seed: int
) -> List[Point]:
    """RouteLLM's random router: each row goes to the strong model with probability p."""
    n = len(quality)
    pts = []
    for p in RANDOM_SHARES:
        runs = []
        for r in range(RANDOM_SEEDS):
            rng = np.random.default_rng([seed, r, int(round(p * 1000))])
            choice = np.where(rng.random(n) < p, strong, weak)
            runs.append(point_of(choice, quality, cost, strong))
        pts.append(
            Point(
                cost=float(np.mean([x.cost for x in runs])),
                quality=float(np.mean([x.quality for x in runs])),
                strong_share=float(np.mean([x.strong_share for x in runs])),
                threshold=float(p),
            )
        )
    return pts


# ------------------------------------------------------------------------------ folds --


def _stable_fold(key: str, k: int, seed: int) -> int:
    h = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") % k


def outer_folds(table: RoutingTable) -> List[Tuple[np.ndarray, np.ndarray]]:
    idx = np.arange(len(table))
    if table.split is not None:
        train, test = idx[table.split == "train"], idx[table.split == "test"]
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"{table.name}: the split needs both train and test rows")
        return [(train, test)]
    if table.groups is not None:
        return [(idx[table.groups != g], idx[table.groups == g]) for g in np.unique(table.groups)]
    raise ValueError(f"{table.name}: needs a train/test split or groups for cross-validation")


def inner_folds(table: RoutingTable, idx: np.ndarray, k: int, seed: int) -> List[np.ndarray]:
    """K disjoint folds of `idx`, by group when the table has groups, else by prompt hash."""
    keys = [str(table.groups[i]) if table.groups is not None else table.prompts[i] for i in idx]
    fold = np.asarray([_stable_fold(key, k, seed) for key in keys])
    return [idx[fold == f] for f in range(k) if np.any(fold == f)]


def out_of_fold(
    table: RoutingTable, idx: np.ndarray, factory: ScorerFactory, k: int, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    m = len(table.models)
    q = np.zeros((len(idx), m))
    ec = np.zeros((len(idx), m))
    pos = {int(r): i for i, r in enumerate(idx)}
    folds = inner_folds(table, idx, k, seed)
    for held in folds:
        fit = np.setdiff1d(idx, held)
        scorer = factory(table)
        scorer.fit(table.subset(fit))
        qh, eh = scorer.score([table.prompts[i] for i in held])
        rows = [pos[int(r)] for r in held]
        q[rows], ec[rows] = qh, eh
    return q, ec


# --------------------------------------------------------------------------- evaluate --


@dataclass
class RouterRun:
    """A router's held-out predictions (pooled over outer folds) and calibrated thresholds."""

    name: str
    q: np.ndarray
    ec: np.ndarray
    thresholds: Dict[str, np.ndarray]  # mode -> calibrated threshold per held-out row
    modes: List[str] = field(default_factory=lambda: ["absolute"])
    info: Dict[str, Any] = field(default_factory=dict)


def run_router(
    table: RoutingTable,
    name: str,
    factory: ScorerFactory,
    *,
    modes: Sequence[str] = ("absolute",),
    retained: float = 0.95,
    inner_k: int = 5,
    seed: int = 0,
    calibrate: bool = True,
) -> Tuple[np.ndarray, RouterRun]:
    """Fits and scores over the outer folds; returns (held-out row indices, run)."""
    held_all, q_all, ec_all = [], [], []
    th_all: Dict[str, List[np.ndarray]] = {mode: [] for mode in modes}
    for fit_idx, eval_idx in outer_folds(table):
        scorer = factory(table)
        scorer.fit(table.subset(fit_idx))
        q, ec = scorer.score([table.prompts[i] for i in eval_idx])
        held_all.append(eval_idx)
        q_all.append(q)
        ec_all.append(ec)
        if calibrate:
            qo, eo = out_of_fold(table, fit_idx, factory, inner_k, seed)
            for mode in modes:
                t, _, _ = choose_threshold(
                    qo, eo, table.quality[fit_idx], table.cost[fit_idx], retained, mode
                )
                th_all[mode].append(np.full(len(eval_idx), t))
    held = np.concatenate(held_all)
    run = RouterRun(
        name=name,
        q=np.concatenate(q_all),
        ec=np.concatenate(ec_all),
        thresholds={mode: np.concatenate(v) for mode, v in th_all.items() if v},
        modes=list(modes),
    )
    return held, run


def decide_rowwise(q, ec, thresholds: np.ndarray, mode: str) -> np.ndarray:
    choice = np.empty(len(q), dtype=np.int64)
    for t in np.unique(thresholds):
        rows = thresholds == t
        choice[rows] = decide(q[rows], ec[rows], float(t), mode)
    return choice
