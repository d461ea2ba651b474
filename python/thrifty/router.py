"""The router: the cheapest model predicted to meet a quality threshold.

``thrifty.Router`` wraps the C++ ``thrifty::route::Router`` (cpp/include/thrifty/route/
router.h); docs/router.md describes the predictors, the cost model, calibration and the file
format. Everything that touches a request runs in C++ with the GIL released; this module
resolves defaults from the catalog's policy and holds calibration, which is offline numpy work.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from thrifty import _core
from thrifty._core import Decision, InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]
PromptOrRequest = Union[str, Dict[str, Any]]

__all__ = [
    "Decision",
    "KnnPredictor",
    "LogisticPredictor",
    "PriorPredictor",
    "Router",
    "RouterCalibration",
]

_DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True)
class PriorPredictor:
    """Quality = the policy's prior per (model, request category), blended with the labels'
    per-category means once fitted. Ignores the prompt's content beyond its category."""

    kind = "prior"


@dataclass(frozen=True)
class KnnPredictor:
    """Similarity-weighted votes of the k nearest labeled prompts, shrunk toward the prior.

    Neighbour weight = similarity**power; the prior counts as ``shrinkage`` identical
    neighbours. Exact search below ``exact_below`` examples, FAISS HNSW above. At most
    ``max_examples`` examples are kept; the oldest are evicted first.
    """

    k: int = 32
    power: float = 4.0
    shrinkage: float = 1.0
    max_examples: int = 200_000
    exact_below: int = 4096
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    kind = "knn"


@dataclass(frozen=True)
class LogisticPredictor:
    """Per-model L2 logistic regression over the prompt embedding and its category, trained
    in C++ (Newton-CG). Feedback takes one SGD step per label."""

    l2: float = 1.0
    max_iterations: int = 30
    learning_rate: float = 0.5
    kind = "logistic"


_PREDICTORS = {"prior": PriorPredictor, "knn": KnnPredictor, "logistic": LogisticPredictor}
# predictor=None: the kNN predictor (it answers with the priors until it has examples).
_DEFAULT_PREDICTOR = "knn"


@dataclass(frozen=True)
class RouterCalibration:
    """A threshold chosen on validation data, and what it achieved there.

    ``retained`` is the routed quality divided by the best single model's; ``retained_lower``
    its one-sided lower confidence bound (normal approximation on the paired per-request
    differences, checked by a bootstrap: ``retained_bootstrap_lower``). ``promise_met`` is True
    when ``retained_lower >= quality_retained`` (or, with ``conservative=False``, when the
    point estimate meets it).
    """

    threshold: float
    quality_retained: float
    confidence: float
    retained: float
    retained_lower: float
    retained_bootstrap_lower: float
    promise_met: bool
    quality: float
    cost: float
    best_model: str
    best_model_quality: float
    best_model_cost: float
    cost_saving: float  # 1 - cost / best_model_cost
    requests: int
    models_used: List[str]
    statement: str
    curve: List[Dict[str, float]] = field(repr=False, default_factory=list)


class Router:
    """Routes each request to the cheapest catalog model predicted to meet a quality bar.

    ``Router(catalog=None, predictor=None, embedder=None, tracker=None)``:

    * ``catalog``: a ``thrifty.Catalog`` (default ``Catalog.default()``); ``models`` lists its
      names, the column order of ``predict()``.
    * ``predictor``: None (the kNN predictor, which answers with the priors until fitted),
      ``"prior"``, ``"knn"``, ``"logistic"``, or a ``PriorPredictor`` / ``KnnPredictor(...)`` /
      ``LogisticPredictor(...)`` with options.
    * ``embedder``: any thrifty Embedder (default ``HashingEmbedder()``).
    * ``tracker``: a ``thrifty.CachedTokensPredictor`` (the prefix tracker): input tokens it
      predicts cached are priced at the cached-input price.
    * ``quality_threshold`` (absolute, in [0, 1]) or ``relative_threshold`` (a share of the best
      model's predicted quality for the request): the default bar for ``route()``; default the
      policy's ``routing.quality_threshold``, else 0.8.

    Thread-safe: ``route``/``predict`` run concurrently; ``fit``/``feedback`` are serialized.
    """

    def __init__(
        self,
        catalog: Optional[Any] = None,
        predictor: Union[None, str, PriorPredictor, KnnPredictor, LogisticPredictor] = None,
        embedder: Optional[_core.Embedder] = None,
        tracker: Optional[_core.CachedTokensPredictor] = None,
        *,
        quality_threshold: Optional[float] = None,
        relative_threshold: Optional[float] = None,
        include_deprecated: bool = False,
        long_context_tokens: int = 8000,
        embed_head_chars: int = 256,
        embed_tail_chars: int = 1024,
    ):
        if catalog is None:
            from thrifty.catalog import Catalog

            catalog = Catalog.default()
        if embedder is None:
            embedder = _core.HashingEmbedder()
        config = _predictor_config(predictor)
        if quality_threshold is not None and relative_threshold is not None:
            raise InvalidArgumentError(
                "Router: give quality_threshold (absolute) or relative_threshold (a share of the "
                "best model's predicted quality), not both"
            )
        relative = relative_threshold is not None
        threshold = relative_threshold if relative else quality_threshold
        if threshold is None:
            threshold = _policy_threshold(catalog)
        name = "relative_threshold" if relative else "quality_threshold"
        _check_unit(threshold, name)
        options = {k: v for k, v in asdict(config).items()}
        self._core = _core.Router(
            catalog,
            embedder,
            predictor=config.kind,
            knn=options if config.kind == "knn" else {},
            logistic=options if config.kind == "logistic" else {},
            threshold=float(threshold),
            relative=relative,
            include_deprecated=include_deprecated,
            long_context_tokens=long_context_tokens,
            embed_head_chars=embed_head_chars,
            embed_tail_chars=embed_tail_chars,
        )
        self.catalog = catalog
        self.embedder = embedder
        self.tracker = None
        if tracker is not None:
            self.attach_tracker(tracker)

    # -- learning --------------------------------------------------------------------------

    def fit(self, examples: Iterable[Sequence[Any]]) -> Router:
        """Learns from labeled examples, replacing what was learned before.

        An example is ``(prompt_or_request, {model: quality in [0, 1]})`` or
        ``(prompt_or_request, {model: quality}, {model: output_tokens})``; a label may also be
        ``{"quality": q, "output_tokens": n}``. Models are catalog names or aliases.
        """
        self._core.fit(examples if isinstance(examples, (list, tuple)) else list(examples))
        return self

    def feedback(
        self,
        prompt_or_request: PromptOrRequest,
        model: str,
        quality: Optional[float] = None,
        output_tokens: Optional[float] = None,
    ) -> None:
        """Learns one observed outcome online (quality in [0, 1] and/or output tokens)."""
        self._core.feedback(prompt_or_request, model, quality, output_tokens)

    # -- routing ---------------------------------------------------------------------------

    @property
    def models(self) -> List[str]:
        """Catalog model names, in the column order of ``predict()``."""
        return self._core.models

    @property
    def predictor(self) -> str:
        return self._core.predictor

    @property
    def examples(self) -> int:
        """Labeled examples the predictor holds."""
        return self._core.examples

    def attach_tracker(self, tracker: Optional[_core.CachedTokensPredictor]) -> None:
        """Prices predicted prompt-cache hits at the cached-input price (None detaches)."""
        self._core._set_tracker(tracker)
        self.tracker = tracker

    def route(
        self,
        prompt_or_request: PromptOrRequest,
        quality_threshold: Optional[float] = None,
        *,
        relative_threshold: Optional[float] = None,
        embedding: Optional[np.ndarray] = None,
    ) -> Decision:
        """The cheapest model predicted to reach the threshold; if none does, the highest
        predicted quality. ``embedding`` skips the embedder (a float32 vector of its dim)."""
        return self._core.route(
            prompt_or_request,
            quality_threshold,
            relative_threshold=relative_threshold,
            embedding=embedding,
        )

    def predict(
        self, prompts_or_requests: Iterable[PromptOrRequest], *, with_cost: bool = False
    ) -> Tuple[np.ndarray, ...]:
        """``(quality, output_tokens)``: float64 arrays [n, len(models)]; ``with_cost=True``
        adds the expected cost in USD as a third array."""
        items = prompts_or_requests
        if not isinstance(items, (list, tuple)):
            items = list(items)
        return self._core.predict(items, with_cost=with_cost)

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Writes the router (options, model names, embedder name, learned state) atomically."""
        self._core.save(os.fspath(path))

    @classmethod
    def load(
        cls,
        path: PathLike,
        catalog: Optional[Any] = None,
        embedder: Optional[_core.Embedder] = None,
        tracker: Optional[_core.CachedTokensPredictor] = None,
    ) -> Router:
        """Reads a file written by ``save``. Pass the catalog and embedder it was saved with
        (defaults: ``Catalog.default()``, ``HashingEmbedder()``); errors say what differs."""
        if catalog is None:
            from thrifty.catalog import Catalog

            catalog = Catalog.default()
        if embedder is None:
            embedder = _core.HashingEmbedder()
        router = cls.__new__(cls)
        router._core = _core.Router._load(os.fspath(path), catalog, embedder)
        router.catalog = catalog
        router.embedder = embedder
        router.tracker = None
        if tracker is not None:
            router.attach_tracker(tracker)
        return router

    # -- calibration -----------------------------------------------------------------------

    def calibrate(
        self,
        validation_examples: Iterable[Sequence[Any]],
        quality_retained: float = 0.95,
        *,
        costs: Optional[Any] = None,
        confidence: float = 0.95,
        conservative: bool = True,
        bootstrap: int = 1000,
        seed: int = 0,
    ) -> RouterCalibration:
        """The absolute threshold that keeps at least ``quality_retained`` of the best single
        model's quality at the least cost on held-out examples (never ones used to fit).

        Each candidate threshold routes every validation request exactly as ``route()`` would
        (same predictions, same expected costs) and is scored with the request's real labels:
        realized quality = the chosen model's label, cost = ``costs[i][model]`` when given
        (USD per request: a [n, m] array in ``models`` order or a list of {model: usd}), else
        the router's expected cost. Only models labeled on every request take part.

        With ``conservative=True`` the threshold is the cheapest whose one-sided
        ``confidence`` lower bound on the retained share meets ``quality_retained``; when none
        does, the cheapest whose point estimate does (``promise_met=False``).
        """
        return _calibrate(
            self,
            list(validation_examples),
            quality_retained,
            costs=costs,
            confidence=confidence,
            conservative=conservative,
            bootstrap=bootstrap,
            seed=seed,
        )

    def __repr__(self) -> str:
        return (
            f"Router(models={len(self.models)}, predictor={self.predictor!r}, "
            f"examples={self.examples}, embedder={self.embedder.name!r})"
        )


def _check_unit(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__}")
    if not (0.0 <= float(value) <= 1.0):
        raise InvalidArgumentError(f"{name} must be in [0, 1], got {value}")


def _policy_threshold(catalog: Any) -> float:
    policy = getattr(catalog, "policy", None) or {}
    routing = policy.get("routing") if isinstance(policy, dict) else None
    if isinstance(routing, dict) and routing.get("quality_threshold") is not None:
        return float(routing["quality_threshold"])
    return _DEFAULT_THRESHOLD


def _predictor_config(predictor: Any):
    if predictor is None:
        return _PREDICTORS[_DEFAULT_PREDICTOR]()
    if isinstance(predictor, str):
        if predictor not in _PREDICTORS:
            raise InvalidArgumentError(
                f"predictor must be None, 'prior', 'knn', 'logistic' or a predictor object "
                f"(thrifty.KnnPredictor(...), ...), got {predictor!r}"
            )
        return _PREDICTORS[predictor]()
    if isinstance(predictor, (PriorPredictor, KnnPredictor, LogisticPredictor)):
        return predictor
    raise TypeError(
        "predictor must be None, 'prior', 'knn', 'logistic', thrifty.PriorPredictor(), "
        f"thrifty.KnnPredictor(...) or thrifty.LogisticPredictor(...), got "
        f"{type(predictor).__name__}"
    )


# -- calibration ---------------------------------------------------------------------------

_Z = {0.8: 0.8416, 0.9: 1.2816, 0.95: 1.6449, 0.975: 1.96, 0.99: 2.3263}


def _labels_matrix(router: Router, examples: List[Sequence[Any]]):
    models = router.models
    index = {name: j for j, name in enumerate(models)}
    y = np.full((len(examples), len(models)), np.nan)
    prompts = []
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) not in (2, 3):
            raise InvalidArgumentError(
                f"validation_examples[{i}]: expected (prompt_or_request, {{model: quality}}"
                f"[, {{model: output_tokens}}]), got {type(example).__name__}"
            )
        prompts.append(example[0])
        labels = example[1]
        if not isinstance(labels, dict) or not labels:
            raise InvalidArgumentError(
                f"validation_examples[{i}]: no labels; give {{model: quality in [0, 1]}}"
            )
        for model, value in labels.items():
            if isinstance(value, dict):
                value = value.get("quality")
            if value is None:
                continue
            j = index.get(model)
            if j is None:
                try:
                    j = index[router.catalog.get(model).name]
                except (KeyError, LookupError) as e:
                    raise InvalidArgumentError(
                        f"validation_examples[{i}]['{model}']: {e.args[0] if e.args else e}"
                    ) from None
            q = float(value)
            if not (0.0 <= q <= 1.0):
                raise InvalidArgumentError(
                    f"validation_examples[{i}]['{model}']: quality must be in [0, 1], got {q}"
                )
            y[i, j] = q
    return prompts, y


def _costs_matrix(router: Router, costs: Any, n: int) -> np.ndarray:
    models = router.models
    if isinstance(costs, np.ndarray) or (
        isinstance(costs, (list, tuple)) and costs and not isinstance(costs[0], dict)
    ):
        c = np.asarray(costs, dtype=np.float64)
        if c.shape != (n, len(models)):
            raise InvalidArgumentError(
                f"costs must have shape ({n}, {len(models)}) (requests x router.models), "
                f"got {c.shape}"
            )
        return c
    if len(costs) != n:
        raise InvalidArgumentError(f"costs must have one entry per example ({n}), got {len(costs)}")
    c = np.full((n, len(models)), np.nan)
    index = {name: j for j, name in enumerate(models)}
    for i, row in enumerate(costs):
        for model, usd in row.items():
            if model not in index:
                raise InvalidArgumentError(f"costs[{i}]: '{model}' is not a router model")
            c[i, index[model]] = float(usd)
    return c


def _route_choice(q: np.ndarray, c: np.ndarray, t: float) -> np.ndarray:
    """Per row, the model route() picks at absolute threshold t (same rule, same ties)."""
    meets = q >= t - 1e-12
    masked = np.where(meets, c, np.inf)
    choice = np.argmin(masked, axis=1)
    none = ~meets.any(axis=1)
    if none.any():
        qq = q[none]
        best = qq.max(axis=1, keepdims=True)
        choice[none] = np.argmin(np.where(qq == best, c[none], np.inf), axis=1)
    return choice


def _calibrate(
    router: Router,
    examples: List[Sequence[Any]],
    quality_retained: float,
    *,
    costs: Any,
    confidence: float,
    conservative: bool,
    bootstrap: int,
    seed: int,
) -> RouterCalibration:
    _check_unit(quality_retained, "quality_retained")
    if confidence not in _Z:
        raise InvalidArgumentError(f"confidence must be one of {sorted(_Z)}, got {confidence}")
    if not examples:
        raise InvalidArgumentError("calibrate: validation_examples is empty")
    prompts, y = _labels_matrix(router, examples)
    n = len(prompts)
    q_pred, _, c_pred = router.predict(prompts, with_cost=True)
    c_real = c_pred if costs is None else _costs_matrix(router, costs, n)
    complete = ~np.isnan(y).any(axis=0) & ~np.isnan(c_real).any(axis=0)
    eligible = np.array(
        [
            router._core.include_deprecated or not router.catalog.get(m).deprecated
            for m in router.models
        ]
    )
    cols = np.flatnonzero(complete & eligible)
    if cols.size == 0:
        raise InvalidArgumentError(
            "calibrate: no model is labeled (and costed) on every validation example"
        )
    models_used = [router.models[j] for j in cols]
    q = q_pred[:, cols]
    c_hat = c_pred[:, cols]
    yy = y[:, cols]
    cc = c_real[:, cols]
    means = yy.mean(axis=0)
    best = int(np.argmax(means))
    best_quality = float(means[best])
    best_cost = float(cc[:, best].mean())
    z = _Z[confidence]
    candidates = np.unique(np.concatenate([[0.0, 1.0], np.round(q.ravel(), 4)]))
    if candidates.size > 2000:
        candidates = np.unique(np.quantile(q.ravel(), np.linspace(0, 1, 2001)))
        candidates = np.unique(np.concatenate([[0.0, 1.0], candidates]))
    rows = np.arange(n)
    curve = []
    for t in candidates:
        choice = _route_choice(q, c_hat, float(t))
        realized = yy[rows, choice]
        diff = realized - quality_retained * yy[:, best]
        sd = float(diff.std(ddof=1)) if n > 1 else 0.0
        quality = float(realized.mean())
        ratio = quality / best_quality if best_quality > 0 else 1.0
        # Lower bound on the ratio from the bound on the paired difference.
        lower = (
            quality_retained + (float(diff.mean()) - z * sd / math.sqrt(n)) / best_quality
            if best_quality > 0
            else 1.0
        )
        curve.append(
            {
                "threshold": float(t),
                "quality": quality,
                "cost": float(cc[rows, choice].mean()),
                "retained": ratio,
                "retained_lower": lower,
            }
        )
    key = "retained_lower" if conservative else "retained"
    feasible = [p for p in curve if p[key] >= quality_retained - 1e-12]
    promise_met = bool(feasible)
    if not feasible:
        feasible = [p for p in curve if p["retained"] >= quality_retained - 1e-12]
    if not feasible:
        feasible = [max(curve, key=lambda p: (p["retained"], -p["cost"]))]
    chosen = min(feasible, key=lambda p: (p["cost"], -p["retained"], p["threshold"]))
    choice = _route_choice(q, c_hat, chosen["threshold"])
    realized = yy[rows, choice]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(max(0, bootstrap)):
        idx = rng.integers(0, n, n)
        denominator = yy[idx, best].mean()
        boot.append(realized[idx].mean() / denominator if denominator > 0 else 1.0)
    boot_lower = float(np.quantile(boot, 1 - confidence)) if boot else chosen["retained_lower"]
    saving = 1.0 - chosen["cost"] / best_cost if best_cost > 0 else 0.0
    statement = (
        f"On {n} validation requests, threshold {chosen['threshold']:.4g} kept "
        f"{chosen['retained']:.1%} of {models_used[best]}'s quality "
        f"(one-sided {confidence:.0%} lower bound {chosen['retained_lower']:.1%}; bootstrap "
        f"{boot_lower:.1%}) at {1 - saving:.1%} of its cost. "
        + (
            f"The promise of >= {quality_retained:.1%} holds at {confidence:.0%} confidence "
            "on traffic like this."
            if promise_met
            else f"No threshold meets >= {quality_retained:.1%} "
            + ("at that confidence" if conservative else "")
            + "; this is the best found (more validation data narrows the bound)."
        )
    )
    return RouterCalibration(
        threshold=chosen["threshold"],
        quality_retained=quality_retained,
        confidence=confidence,
        retained=chosen["retained"],
        retained_lower=chosen["retained_lower"],
        retained_bootstrap_lower=boot_lower,
        promise_met=promise_met,
        quality=chosen["quality"],
        cost=chosen["cost"],
        best_model=models_used[best],
        best_model_quality=best_quality,
        best_model_cost=best_cost,
        cost_saving=saving,
        requests=n,
        models_used=models_used,
        statement=statement,
        curve=curve,
    )
