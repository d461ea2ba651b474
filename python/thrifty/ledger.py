"""Cost accounting: every call's cost by model, tag (feature, customer, team...) and time, with
budgets, alerts, anomaly detection and exports. The work is done by the C++ ledger
(``thrifty._core._Ledger``); this module adds defaults, the reservation context manager and the
pandas helper. See docs/ledger.md.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

from thrifty import _core
from thrifty.catalog import Catalog

PathLike = Union[str, "os.PathLike[str]"]
Tags = Optional[Mapping[str, Any]]
AlertCallback = Callable[[Dict[str, Any]], None]

_AGG_COLUMNS = (
    "calls",
    "cost_usd",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


class Ledger(_core._Ledger):
    """Aggregates cost, tokens, cache outcomes, savings and latency per model, tag value and
    time bucket; enforces budgets; raises alerts; exports Prometheus text, OpenTelemetry-style
    attributes and a JSONL log; saves and loads its state.

    ``catalog`` prices calls recorded without ``cost_usd`` (default: ``Catalog.default()``;
    pass ``catalog=False`` for a ledger that only takes explicit costs). Keyword options:
    ``bucket_seconds`` (3600), ``max_time_buckets`` (168), ``max_tag_keys`` (32),
    ``max_tag_values`` (1000 per key; more aggregate under ``"__other__"``), ``max_models``
    (256), ``clock`` (callable returning epoch seconds, for simulated time), ``on_alert``
    (callable(alert dict) for every alert), ``anomaly`` (True) and ``anomaly_*`` tuning.

    Thread-safe; ``record()`` releases the GIL. Callbacks run on the recording thread.
    """

    def __init__(self, catalog: Union[Catalog, _core.Catalog, None, bool] = None, **options: Any):
        if catalog is None or catalog is True:
            catalog = Catalog.default()
        elif catalog is False:
            catalog = None
        super().__init__(catalog, **options)

    def settle(self, reservation: int, model: str, usage: Any = None, **kwargs: Any) -> float:
        """Records the call a ``reserve()`` was for, releasing its hold. Returns its cost."""
        return self.record(model, usage, reservation=reservation, **kwargs)

    @contextlib.contextmanager
    def reservation(self, tags: Tags, estimated_cost_usd: float) -> Iterator[int]:
        """``with ledger.reservation(tags, est) as r: ...; ledger.settle(r, model, usage)``.

        Raises BudgetExceededError before the block when a hard budget would be exceeded; a
        reservation the block did not settle (it raised, or never called settle) is released.
        """
        reservation_id = self.reserve(tags, estimated_cost_usd)
        try:
            yield reservation_id
        finally:
            with contextlib.suppress(_core.NotFoundError):
                self.release(reservation_id)

    def to_dataframe(self, by: str = "model") -> Any:
        """The snapshot as a pandas DataFrame: ``by="model"`` (one row per model), ``"tag"`` (one
        row per tag key and value), or ``"time"`` (one row per time bucket). Columns: the
        aggregate's counters, cache outcomes (cache_*), latency quantiles (latency_p50...) and
        savings per lever (savings_<lever>_usd)."""
        import pandas as pd

        snap = self.snapshot()
        rows: List[Dict[str, Any]] = []
        if by == "model":
            for model, agg in snap["by_model"].items():
                rows.append({"model": model, **_flatten(agg)})
        elif by == "tag":
            for key, values in snap["by_tag"].items():
                for value, agg in values.items():
                    rows.append({"tag": key, "value": value, **_flatten(agg)})
        elif by == "time":
            for agg in snap["by_time"]:
                rows.append(
                    {
                        "start": pd.Timestamp(agg["start"], unit="s", tz="UTC"),
                        "end": pd.Timestamp(agg["end"], unit="s", tz="UTC"),
                        **_flatten(agg),
                    }
                )
        else:
            raise _core.InvalidArgumentError(
                f"to_dataframe: by={by!r} (accepted: 'model', 'tag', 'time')"
            )
        return pd.DataFrame(rows)


def _flatten(agg: Mapping[str, Any]) -> Dict[str, Any]:
    row: Dict[str, Any] = {c: agg[c] for c in _AGG_COLUMNS}
    for outcome, n in agg["cache"].items():
        row[f"cache_{outcome}"] = n
    for q in ("p50", "p95", "p99"):
        row[f"latency_{q}"] = agg["latency_s"][q]
    for lever, usd in agg["savings_usd"].items():
        row[f"savings_{lever}_usd"] = usd
    return row


def prometheus_handler(ledger: Ledger) -> Callable[..., Any]:
    """A WSGI app serving ``ledger.prometheus()`` (e.g. ``wsgiref.simple_server.make_server``)."""

    def app(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        body = ledger.prometheus().encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
        )
        return [body]

    return app


__all__ = ["Ledger", "prometheus_handler"]
