"""Routing metrics as RouteLLM (arXiv 2406.18665) and RouterBench (arXiv 2403.12031) define them.

A router evaluated at several settings (thresholds) gives operating points: the share of calls
sent to the strong model (RouteLLM's cost axis), the mean realized cost and the mean quality on
the evaluation rows. Any two operating points can be mixed at random, so the line between them is
achievable; that is why both papers interpolate linearly between points.

RouteLLM (two models, "strong" and "weak"):
  PGR(x)   = (q(x) - q_weak) / (q_strong - q_weak)   performance gap recovered at x, the share of
             calls to the strong model.
  APGR     = integral of PGR over x in [0, 1], by the trapezoid rule over the operating points
             (RouteLLM evaluates 10 bins; here every point of the sweep is used).
  CPT(p)   = the least share of strong calls at which the piecewise-linear curve reaches
             PGR = p ("call-performance threshold"; CPT(50%), CPT(80%)).

RouterBench (any number of models):
  non-decreasing convex hull (NDCH) of the (cost, quality) points: the upper concave envelope
  of the points (every mix of two points is achievable), made non-decreasing in cost (a router
  may always fall back to a cheaper setting that did better).
  AIQ      = 1 / (c_max - c_min) * integral over [c_min, c_max] of the NDCH, with cost
             normalized over the range [c_min, c_max] shared by every method compared on the
             dataset; the hull is 0 left of the method's cheapest point and flat right of its
             dearest point (as RouterBench's reference code extends each hull to the common
             maximum cost).

Pure functions on numpy arrays; thread-safe.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

Points = np.ndarray  # [k, 2] of (x, quality)
_EPS = 1e-12


def as_points(x: Sequence[float], q: Sequence[float]) -> Points:
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if x.shape != q.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"operating points: x and quality must be 1-d arrays of the same non-zero length, "
            f"got shapes {x.shape} and {q.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(q))):
        raise ValueError("operating points: x and quality must be finite numbers")
    return np.stack([x, q], axis=1)


def _sorted_unique_max(points: Points) -> Points:
    """Sorted by x; where several points share an x, the best quality is kept."""
    order = np.lexsort((-points[:, 1], points[:, 0]))
    pts = points[order]
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = pts[1:, 0] != pts[:-1, 0]
    return pts[keep]


def upper_hull(points: Points) -> Points:
    """The upper concave envelope of the points, left to right (monotone chain)."""
    pts = _sorted_unique_max(np.asarray(points, dtype=np.float64))
    hull: list = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or below the chord from hull[-2] to p.
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append((float(p[0]), float(p[1])))
    return np.asarray(hull, dtype=np.float64)


def nondecreasing_convex_hull(points: Points) -> Points:
    """RouterBench's NDCH: the upper hull cut where it starts to decrease.

    Right of the best-quality point, spending more cannot buy quality (the method may stay at
    that point), so the hull stops there and is extended flat by :func:`aiq`.
    """
    hull = upper_hull(points)
    best = int(np.argmax(hull[:, 1]))  # the first point with the top quality
    return hull[: best + 1]


def aiq(points: Points, c_min: float, c_max: float) -> float:
    """RouterBench's AIQ of one method's points over the shared cost range [c_min, c_max]."""
    if not c_max > c_min:
        raise ValueError(f"aiq: need c_max > c_min, got [{c_min}, {c_max}]")
    points = np.asarray(points, dtype=np.float64)
    lo, hi = float(points[:, 0].min()), float(points[:, 0].max())
    if lo < c_min - _EPS or hi > c_max + _EPS:
        raise ValueError(
            f"aiq: the points' costs [{lo}, {hi}] fall outside the range "
            f"[{c_min}, {c_max}]; take the range over every method compared"
        )
    hull = nondecreasing_convex_hull(points)
    xs = np.append(hull[:, 0], c_max)
    ys = np.append(hull[:, 1], hull[-1, 1])
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (c_max - c_min)


def cost_to_reach(points: Points, target: float, *, hull: bool = False) -> Optional[float]:
    """The least x at which the piecewise-linear curve through the points reaches `target`.

    The curve joins the points in order of x (mixing neighbouring operating points); with
    ``hull=True`` it is the NDCH instead (mixing any two points). None when no point reaches
    the target.
    """
    pts = nondecreasing_convex_hull(points) if hull else _sorted_unique_max(points)
    target -= _EPS  # a mean of equal floats may differ from the value in its last bits
    for i, (x, q) in enumerate(pts):
        if q >= target:
            if i == 0:
                return float(x)
            x0, q0 = pts[i - 1]  # below the target: the crossing lies on this segment
            return float(x0 + (target - q0) * (x - x0) / (q - q0))
    return None


def pgr_curve(points: Points, q_weak: float, q_strong: float) -> Points:
    """Points with quality turned into the performance gap recovered."""
    gap = q_strong - q_weak
    if gap == 0:
        raise ValueError("PGR is undefined when the strong and weak models score the same")
    pts = np.asarray(points, dtype=np.float64).copy()
    pts[:, 1] = (pts[:, 1] - q_weak) / gap
    return pts


def apgr(points: Points, q_weak: float, q_strong: float) -> float:
    """RouteLLM's APGR: trapezoid integral of PGR over the share of strong calls in [0, 1].

    `points` are (strong-call share, quality); the share must span [0, 1] (add the all-weak and
    all-strong points, which any router can be set to, when a sweep does not reach them).
    """
    pts = _sorted_unique_max(pgr_curve(points, q_weak, q_strong))
    if pts[0, 0] > 1e-9 or pts[-1, 0] < 1 - 1e-9:
        raise ValueError(
            f"apgr: the strong-call shares must span [0, 1], got [{pts[0, 0]}, {pts[-1, 0]}]"
        )
    return float(np.sum((pts[1:, 0] - pts[:-1, 0]) * (pts[1:, 1] + pts[:-1, 1]) / 2.0))


def cpt(points: Points, q_weak: float, q_strong: float, pgr: float) -> Optional[float]:
    """RouteLLM's CPT(pgr): the least strong-call share whose curve reaches PGR = `pgr`."""
    return cost_to_reach(pgr_curve(points, q_weak, q_strong), pgr)


def saving(cost: Optional[float], reference_cost: float) -> Optional[float]:
    """1 - cost / reference_cost, or None when the cost was not reached."""
    if cost is None:
        return None
    return 1.0 - cost / reference_cost


def strong_weak(
    quality: np.ndarray, cost: np.ndarray, model_names: Sequence[str]
) -> Tuple[int, int]:
    """(strong, weak) column indices: the best mean quality and the least mean cost."""
    q = np.asarray(quality).mean(axis=0)
    c = np.asarray(cost).mean(axis=0)
    strong = int(np.lexsort((c, -q))[0])
    weak = int(np.lexsort((-q, c))[0])
    if strong == weak:
        raise ValueError(
            f"the cheapest model {model_names[weak]} is also the best; there is nothing to route"
        )
    return strong, weak


def auc(scores: np.ndarray, labels: np.ndarray) -> Optional[float]:
    """ROC-AUC of `scores` for binary `labels` (Mann-Whitney, ties counted half); None when
    the labels are not binary or only one class occurs. A diagnostic: how well predicted
    quality ranks the prompts a model gets right above those it gets wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if not np.all((labels == 0) | (labels == 1)):
        return None
    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
