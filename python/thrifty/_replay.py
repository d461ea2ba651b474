"""thrifty.replay(): logged traffic through a cost policy, offline (docs/replay.md).

The work happens in C++ (thrifty::replay, GIL released); this module turns a policy file and
keyword arguments into engine options, drives progress bars and threshold sweeps, and wraps the
result in a Report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from thrifty import _core
from thrifty._core import InvalidArgumentError
from thrifty.catalog import Catalog
from thrifty.report import Report

__all__ = ["replay", "sweep"]

PathLike = Union[str, "os.PathLike[str]"]
ROUTING_MODES = ("auto", "labels", "priors", "keep", "router")


def _catalog_for(policy: Any) -> Catalog:
    if policy is None:
        return Catalog.default()
    if isinstance(policy, _core.Catalog):
        return policy  # type: ignore[return-value]
    if isinstance(policy, (str, os.PathLike)):
        return Catalog.from_yaml(policy)
    raise TypeError(
        "replay: policy must be None (the shipped policy), a policy YAML path or a "
        f"thrifty.Catalog, got {type(policy).__name__}"
    )


def _section(catalog: Any, *keys: str) -> Dict[str, Any]:
    node: Any = getattr(catalog, "policy", {}) or {}
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _progress_callback(progress: Any) -> Optional[Callable[[int, int, int], bool]]:
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=None, unit="B", unit_scale=True, file=sys.stderr, desc="replay")
        state = {"records": 0}

        def update(records: int, nbytes: int, total: int) -> bool:
            if bar.total is None and total:
                bar.total = total
            bar.update(nbytes - bar.n)
            state["records"] = records
            bar.set_postfix(requests=f"{records:,}", refresh=False)
            if total and nbytes >= total:
                bar.close()
            return True

        update.close = bar.close  # type: ignore[attr-defined]
        return update
    raise TypeError("replay: progress must be None, True (a tqdm bar) or a callable")


def _engine_kwargs(catalog: Any, overrides: Dict[str, Any]) -> Dict[str, Any]:
    routing = _section(catalog, "routing")
    exact = _section(catalog, "cache", "exact")
    semantic = _section(catalog, "cache", "semantic")
    prefix = _section(catalog, "cache", "prefix")
    kwargs: Dict[str, Any] = {
        "quality_threshold": routing.get("quality_threshold", 0.8),
        "candidate_models": list(routing.get("models", []) or []),
        "exact": exact.get("enabled", True),
        "exact_ttl_seconds": exact.get("ttl_seconds"),
        "exact_max_entries": exact.get("max_entries", 1_000_000),
        "semantic": semantic.get("enabled", True),
        "semantic_threshold": semantic.get("threshold", 0.9),
        "semantic_ttl_seconds": semantic.get("ttl_seconds", 86400.0),
        "semantic_max_entries": semantic.get("max_entries", 200_000),
        "semantic_namespaces": list(semantic.get("namespaces", []) or []),
        "prefix_cache": prefix.get("enabled", True),
        "prefix_ttl_seconds": prefix.get("ttl_seconds", 300.0),
        "prefix_min_tokens": prefix.get("min_tokens", 1024),
        "prefix_tracker": prefix.get("tracker", False),
    }
    mode = routing.get("mode")
    if mode is not None:
        kwargs["routing"] = mode
    for key, value in overrides.items():
        if value is not None:
            kwargs[key] = value
    return kwargs


def _run(trace: str, catalog: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    routing = kwargs.pop("routing", "auto")
    router = kwargs.get("router")
    if routing not in ROUTING_MODES:
        raise InvalidArgumentError(
            f"replay: routing must be one of {', '.join(ROUTING_MODES)}, got {routing!r}"
        )
    if routing == "auto":
        routing = "router" if router is not None else "labels"
    if (
        router is not None
        and routing == "router"
        and not callable(router)
        and not isinstance(getattr(router, "_core", router), _core.Router)
    ):
        raise TypeError(
            "replay: router must be a thrifty.Router, or a callable (request: dict, "
            "prompt_tokens: int) -> model name or (model, predicted quality)"
        )
    return _core._replay(trace, catalog, routing=routing, **kwargs)


def replay(
    trace: PathLike,
    policy: Any = None,
    *,
    routing: str = "auto",
    quality_threshold: Optional[float] = None,
    exact: Optional[bool] = None,
    semantic: Optional[bool] = None,
    semantic_threshold: Optional[float] = None,
    semantic_namespaces: Optional[Sequence[str]] = None,
    prefix_cache: Optional[bool] = None,
    prefix_tracker: Optional[bool] = None,
    embedder: Any = None,
    router: Any = None,
    candidate_models: Optional[Sequence[str]] = None,
    sweep: Optional[Iterable[float]] = None,
    sweep_param: str = "quality_threshold",
    progress: Any = None,
    limit: Optional[int] = None,
    skip_invalid: bool = False,
    threads: int = 0,
    audit_sample_size: int = 50,
    seed: int = 0,
    bucket_seconds: float = 3600.0,
    ledger: Any = None,
    **engine_options: Any,
) -> Report:
    """Replays a JSONL trace through a cost policy and returns a Report.

    ``policy``: None (the shipped policy), a policy YAML path, or a Catalog; its ``routing`` and
    ``cache`` sections set the defaults (docs/replay.md), and keyword arguments override them.
    ``routing``: "auto" (the router when ``router`` is given, else "labels"), "labels" (label
    oracle: cheapest labelled model meeting ``quality_threshold``), "priors" (catalog priors per
    ``tags.category``), "keep" (no routing), "router": a trained ``thrifty.Router`` (its
    predictions in batches on the worker threads, its rule -- cheapest model predicted to meet
    ``quality_threshold`` -- with replay's prefix-cache-aware prices), or a Python callable
    ``router(request, prompt_tokens) -> model or (model, predicted_quality)``.
    ``prefix_tracker``: True to predict prompt-cache reads with ``thrifty.PrefixTracker`` (the
    production tracker over the catalog's provider rules) instead of replay's own simulation.
    ``semantic_namespaces``: the namespaces that use the semantic cache (None: all).
    ``sweep``: values of ``sweep_param`` ("quality_threshold" or "semantic_threshold") to replay
    again for the cost-quality curve (``Report.sweep``, ``Report.plot_cost_quality()``).
    ``progress``: True for a tqdm bar on stderr, or a callable ``(records, bytes, total_bytes)``
    returning False to cancel.
    ``ledger``: True to record every simulated call into a new ``thrifty.Ledger`` sized for the
    trace, or your own ``thrifty.Ledger`` (with its budgets and alerts already added); calls are
    recorded at the trace's timestamps, so budgets, spikes, drift and anomalies fire on trace
    time. Then ``Report.ledger``, ``summary()["spend"]``, ``summary()["alerts"]`` and
    ``Report.spend_dataframe()``.
    """
    trace = os.fspath(trace)
    if not Path(trace).exists():
        raise _core.NotFoundError(f"{trace}: no such trace file")
    catalog = _catalog_for(policy)
    if sweep_param not in ("quality_threshold", "semantic_threshold"):
        raise InvalidArgumentError(
            "replay: sweep_param must be 'quality_threshold' or 'semantic_threshold', got "
            f"{sweep_param!r}"
        )
    overrides = {
        "routing": routing if routing != "auto" else None,
        "quality_threshold": quality_threshold,
        "exact": exact,
        "semantic": semantic,
        "semantic_threshold": semantic_threshold,
        "semantic_namespaces": list(semantic_namespaces)
        if semantic_namespaces is not None
        else None,
        "prefix_cache": prefix_cache,
        "prefix_tracker": prefix_tracker,
        "embedder": embedder,
        "router": router,
        "candidate_models": list(candidate_models) if candidate_models is not None else None,
        "limit": limit,
        "skip_invalid": skip_invalid,
        "threads": threads,
        "audit_sample_size": audit_sample_size,
        "seed": seed,
        "bucket_seconds": bucket_seconds,
    }
    overrides.update(engine_options)
    kwargs = _engine_kwargs(catalog, overrides)
    spend_ledger = _ledger_for(ledger, catalog, trace, bucket_seconds)
    callback = _progress_callback(progress)
    try:
        data = _run(trace, catalog, dict(kwargs, progress=callback, ledger=spend_ledger))
    finally:
        close = getattr(callback, "close", None)
        if close is not None:
            close()
    data["trace"] = trace
    data["policy"] = getattr(catalog, "source", None) or "<catalog>"
    if sweep is not None:
        data["sweep_param"] = sweep_param
        data["sweep"] = _sweep_rows(trace, catalog, kwargs, sweep_param, sweep)
    return Report(data, ledger=spend_ledger, catalog=catalog)


def _trace_span_s(trace: str) -> Optional[float]:
    """Seconds between the first and last record's ts (read from the file's two ends)."""
    try:
        with open(trace, "rb") as f:
            first = f.readline()
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = [line for line in f.read().splitlines() if line.strip()]
        return abs(float(json.loads(tail[-1])["ts"]) - float(json.loads(first)["ts"]))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _ledger_for(ledger: Any, catalog: Any, trace: str, bucket_seconds: float) -> Any:
    if ledger is None or ledger is False:
        return None
    if ledger is True:
        from thrifty.ledger import Ledger

        span = _trace_span_s(trace)
        buckets = 168 if span is None else int(span // bucket_seconds) + 2
        return Ledger(
            catalog, bucket_seconds=bucket_seconds, max_time_buckets=max(168, min(buckets, 100000))
        )
    if not isinstance(ledger, _core._Ledger):
        raise TypeError(
            f"replay: ledger must be True, None or a thrifty.Ledger, got {type(ledger).__name__}"
        )
    return ledger


def _sweep_rows(
    trace: str, catalog: Any, kwargs: Dict[str, Any], param: str, values: Iterable[float]
) -> List[Dict[str, Any]]:
    rows = []
    for value in values:
        run = dict(kwargs, audit_sample_size=0)
        run[param] = float(value)
        data = _run(trace, catalog, run)
        rows.append(
            {
                param: float(value),
                "cost_usd": data["cost_usd"],
                "baseline_cost_usd": data["baseline_cost_usd"],
                "savings_pct": data["savings_pct"],
                "quality_retained": data["quality_retained"],
                "exact_hits": data["exact_hits"],
                "semantic_hits": data["semantic_hits"],
                "semantic_false_hits": data["semantic_false_hits"],
                "routed_requests": data["routed_requests"],
            }
        )
    return rows


def sweep(
    trace: PathLike,
    values: Iterable[float],
    policy: Any = None,
    *,
    param: str = "quality_threshold",
    **kwargs: Any,
) -> List[Dict[str, Any]]:
    """Replays ``trace`` once per value of ``param``; rows of cost and quality retained."""
    report = replay(trace, policy, sweep=values, sweep_param=param, audit_sample_size=0, **kwargs)
    return report.sweep
