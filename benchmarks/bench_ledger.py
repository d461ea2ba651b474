"""Ledger.record through Python (target: <= 10 us per call) against a plain-Python ledger.

    python benchmarks/bench_ledger.py

Both sides do the same aggregation per call: price the usage from the model's prices; add cost,
five token counters, a call, a cache outcome and a saving to the total, the model, each of three
tags and the hour bucket; keep the latency for percentiles (the peer appends to a list, the
ledger adds to its bounded sketch); check one budget. The peer is a dict-of-counters ledger of
the kind people write first; it is not thread-safe and its latency lists grow without bound.
"""

from __future__ import annotations

import collections
import math

import thrifty
from _bench_util import per_call_us, print_table, write_json

MODELS = ["gpt-4o-mini", "gpt-4o", "claude-haiku-4-5", "claude-sonnet-4-6"]
FEATURES = [f"feature-{i}" for i in range(8)]
CUSTOMERS = [f"customer-{i}" for i in range(200)]
TEAMS = [f"team-{i}" for i in range(4)]


class DictLedger:
    """The peer: nested dicts of counters."""

    FIELDS = ("input", "cached", "cache_write", "output", "reasoning")

    def __init__(self, catalog):
        self.prices = {
            m: (s.input_per_mtok, s.cached_input_per_mtok or s.input_per_mtok, s.output_per_mtok)
            for m in MODELS
            for s in [catalog.get(m)]
        }
        self.views = collections.defaultdict(self._agg)
        self.budget_spent = 0.0

    @staticmethod
    def _agg():
        return {
            "calls": 0,
            "cost": 0.0,
            "tokens": dict.fromkeys(DictLedger.FIELDS, 0),
            "cache": collections.Counter(),
            "savings": collections.Counter(),
            "latency": [],
        }

    def record(self, model, usage, tags, latency_s, cache, savings, ts):
        p_in, p_cached, p_out = self.prices[model]
        cost = (usage["input"] * p_in + usage["cached"] * p_cached + usage["output"] * p_out) / 1e6
        keys = [("total",), ("model", model), ("time", math.floor(ts / 3600))]
        keys += [("tag", k, v) for k, v in tags.items()]
        for key in keys:
            agg = self.views[key]
            agg["calls"] += 1
            agg["cost"] += cost
            tokens = agg["tokens"]
            for f in self.FIELDS:
                tokens[f] += usage[f]
            agg["cache"][cache] += 1
            for lever, usd in savings.items():
                agg["savings"][lever] += usd
            agg["latency"].append(latency_s)
        self.budget_spent += cost
        return cost


def main() -> None:
    catalog = thrifty.Catalog.default()
    ledger = thrifty.Ledger(catalog)
    ledger.add_budget("team", "team-0", 1e9, hard=True)
    peer = DictLedger(catalog)
    usages = [
        thrifty.Usage(input_tokens=1000 + i, cached_input_tokens=500, output_tokens=200)
        for i in range(100)
    ]
    usage_dicts = [
        {
            "input": u.input_tokens,
            "cached": u.cached_input_tokens,
            "cache_write": 0,
            "output": u.output_tokens,
            "reasoning": 0,
        }
        for u in usages
    ]
    calls = [
        (
            MODELS[i % 4],
            i % 100,
            {
                "feature": FEATURES[i % 8],
                "customer": CUSTOMERS[(i * 7) % 200],
                "team": TEAMS[i % 4],
            },
            0.2 + 0.001 * (i % 500),
        )
        for i in range(5000)
    ]
    savings = {"prompt_cache": 0.0001}
    state = {"i": 0}

    def thrifty_record():
        i = state["i"] = (state["i"] + 1) % 5000
        model, u, tags, latency = calls[i]
        ledger.record(model, usages[u], tags, latency_s=latency, cache="miss", savings=savings)

    def peer_record():
        i = state["i"] = (state["i"] + 1) % 5000
        model, u, tags, latency = calls[i]
        peer.record(model, usage_dicts[u], tags, latency, "miss", savings, 1.8e9 + i)

    ours = per_call_us(thrifty_record, calls=5000, rounds=21)
    theirs = per_call_us(peer_record, calls=5000, rounds=21)
    ratio = theirs["median_us"] / ours["median_us"]
    print_table(
        "Ledger.record through Python (3 tags, latency, cache, saving, 1 hard budget); "
        "target <= 10 us",
        ["ledger", "median us", "p10 us", "p90 us"],
        [
            ["thrifty.Ledger (C++)", ours["median_us"], ours["p10_us"], ours["p90_us"]],
            ["dict-of-counters (Python)", theirs["median_us"], theirs["p10_us"], theirs["p90_us"]],
        ],
    )
    print(f"ratio (peer / thrifty): {ratio:.2f}x")
    path = write_json(
        "bench_ledger",
        {"thrifty_record_us": ours, "dict_ledger_record_us": theirs, "ratio": ratio},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
