"""Report: what a replayed policy would have paid against what was paid (docs/replay.md).

A Report wraps the engine's result (a dict). ``summary()`` gives the headline figures,
``to_dataframe()`` the time series, ``plot_savings()`` / ``plot_cost_quality()`` matplotlib
figures (drawn with the Agg backend when no display is set up), ``to_html(path)`` one
self-contained HTML file with the plots embedded as PNG, ``text()`` the console report.
Immutable after construction; safe to share across threads for reading.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

__all__ = ["LEVERS", "Report"]

PathLike = Union[str, "os.PathLike[str]"]
LEVERS = ("exact", "semantic", "routing", "prefix_cache")
_LEVER_LABELS = {
    "exact": "exact cache",
    "semantic": "semantic cache",
    "routing": "routing",
    "prefix_cache": "prompt (prefix) cache",
}
_SUMMARY_KEYS = (
    "requests",
    "baseline_cost_usd",
    "cost_usd",
    "savings_usd",
    "savings_pct",
    "savings_by_lever",
    "exact_hits",
    "semantic_hits",
    "exact_hit_rate",
    "semantic_hit_rate",
    "semantic_false_hits",
    "semantic_hits_checked",
    "routed_requests",
    "quality_retained",
    "quality_source",
    "baseline_quality_mean",
    "policy_quality_mean",
    "routing",
    "quality_threshold",
    "semantic_threshold",
    "cached_prompt_tokens_baseline",
    "cached_prompt_tokens_policy",
    "warnings",
)


def _money(usd: Optional[float]) -> str:
    if usd is None:
        return "-"
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.4f}"


def _pct(fraction: Optional[float]) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Report:
    """The result of thrifty.replay(). ``data`` holds everything the engine measured."""

    def __init__(self, data: Dict[str, Any], ledger: Any = None, catalog: Any = None):
        self.data = data
        # The thrifty.Ledger every simulated call was recorded into (replay(ledger=...)), or None.
        self.ledger = ledger
        self._catalog = catalog

    # ------------------------------------------------------------------ figures and tables --

    @property
    def sweep(self) -> List[Dict[str, Any]]:
        return list(self.data.get("sweep") or [])

    @property
    def audit_sample(self) -> List[Dict[str, Any]]:
        return list(self.data.get("audit_sample") or [])

    @property
    def model_mix(self) -> Dict[str, Dict[str, Any]]:
        return dict(self.data.get("model_mix") or {})

    def summary(self) -> Dict[str, Any]:
        """The headline figures: costs, savings by lever, hit counts and rates, quality."""
        out = {k: self.data.get(k) for k in _SUMMARY_KEYS}
        out["savings_by_lever"] = dict(self.data.get("savings_by_lever") or {})
        out["model_mix"] = {m: v["requests"] for m, v in self.model_mix.items()}
        out["requests_per_s"] = (self.data.get("stats") or {}).get("requests_per_s")
        if self.ledger is not None:
            out["spend"] = self.spend()
            out["alerts"] = self.alerts()
        return out

    # ------------------------------------------------------------------ spend (ledger) --

    def _input_split(self, by_model: Dict[str, Any]) -> Dict[str, float]:
        """Uncached vs cached input tokens and what they cost, from the per-model tokens."""
        out = {
            "uncached_input_tokens": 0,
            "cached_input_tokens": 0,
            "uncached_input_cost_usd": 0.0,
            "cached_input_cost_usd": 0.0,
        }
        for model, agg in by_model.items():
            out["uncached_input_tokens"] += agg["input_tokens"]
            out["cached_input_tokens"] += agg["cached_input_tokens"]
            spec = None
            if self._catalog is not None:
                try:
                    spec = self._catalog.get(model)
                except (KeyError, LookupError):
                    spec = None
            if spec is None:
                continue
            cached_price = spec.cached_input_per_mtok
            if cached_price is None:
                cached_price = spec.input_per_mtok
            out["uncached_input_cost_usd"] += agg["input_tokens"] * spec.input_per_mtok * 1e-6
            out["cached_input_cost_usd"] += agg["cached_input_tokens"] * cached_price * 1e-6
        return out

    def spend(self) -> Optional[Dict[str, Any]]:
        """What the policy spent, from the ledger (None without one): total_usd, calls,
        by_model {model: {calls, cost_usd}}, by_tag {key: {value: {calls, cost_usd}}}, cache
        outcomes, and cached vs uncached input tokens and their cost."""
        if self.ledger is None:
            return None
        snap = self.ledger.snapshot()

        def brief(agg: Dict[str, Any]) -> Dict[str, Any]:
            return {"calls": agg["calls"], "cost_usd": agg["cost_usd"]}

        out = {
            "total_usd": snap["total_cost_usd"],
            "calls": snap["calls"],
            "by_model": {m: brief(a) for m, a in snap["by_model"].items()},
            "by_tag": {
                key: {v: brief(a) for v, a in values.items()}
                for key, values in snap["by_tag"].items()
            },
            "cache": dict(snap["total"]["cache"]),
            "savings_usd": dict(snap["total"]["savings_usd"]),
        }
        out.update(self._input_split(snap["by_model"]))
        return out

    def alerts(self) -> List[Dict[str, Any]]:
        """The alerts that would have fired (budget thresholds, spikes, drift, anomalies), in the
        order they fired, plus the ledger's spend anomalies; [] without a ledger."""
        if self.ledger is None:
            return []
        fired = [dict(a) for a in self.ledger.alerts()]
        seen = {
            (a.get("tag"), a.get("value"), a.get("period_start"))
            for a in fired
            if a.get("kind") == "anomaly"
        }
        for a in self.ledger.anomalies():
            if (a.get("tag"), a.get("value"), a.get("bucket_start")) in seen:
                continue
            fired.append(
                {
                    "kind": "anomaly",
                    "tag": a.get("tag"),
                    "value": a.get("value"),
                    "observed": a.get("spend_usd"),
                    "threshold": a.get("threshold_usd"),
                    "limit": a.get("baseline_median_usd"),
                    "ts": a.get("bucket_start"),
                    "period_start": a.get("bucket_start"),
                    "message": f"spend of {a.get('tag')}={a.get('value')} "
                    f"{_money(a.get('spend_usd'))} vs baseline median "
                    f"{_money(a.get('baseline_median_usd'))}",
                }
            )
        return fired

    def spend_text(self, keys: Sequence[str] = ("app", "feature", "customer"), top: int = 8) -> str:
        """A short console block: policy spend by model and by the given tag keys, cached vs
        uncached input, and the alerts that would have fired."""
        spend = self.spend()
        if spend is None:
            return ""
        lines = [f"spend (policy, from the ledger)  {_money(spend['total_usd'])}"]
        groups = [("model", spend["by_model"])]
        groups += [(k, spend["by_tag"][k]) for k in keys if k in spend["by_tag"]]
        for name, values in groups:
            lines.append(f"  by {name}:")
            for value, agg in sorted(values.items(), key=lambda kv: -kv[1]["cost_usd"])[:top]:
                lines.append(
                    f"    {value:28} {agg['calls']:>9,} calls {_money(agg['cost_usd']):>10}"
                )
        lines.append(
            f"  input tokens: {spend['uncached_input_tokens']:,} uncached "
            f"({_money(spend['uncached_input_cost_usd'])}), {spend['cached_input_tokens']:,} "
            f"cached ({_money(spend['cached_input_cost_usd'])})"
        )
        fired = self.alerts()
        lines.append(f"alerts that would have fired: {len(fired)}")
        for a in fired[:top]:
            when = datetime.datetime.fromtimestamp(float(a.get("ts") or 0.0), datetime.timezone.utc)
            lines.append(f"  {when:%Y-%m-%d %H:%M} {a.get('kind'):8} {a.get('message', '')}")
        return "\n".join(lines)

    def _spend_html(self) -> str:
        esc = html.escape
        spend = self.spend() or {}
        blocks = []
        groups = [("model", spend.get("by_model", {}))]
        groups += sorted((spend.get("by_tag") or {}).items())
        for name, values in groups:
            body = "".join(
                f"<tr><td>{esc(str(v))}</td><td>{a['calls']:,}</td><td>{_money(a['cost_usd'])}</td></tr>"
                for v, a in sorted(values.items(), key=lambda kv: -kv[1]["cost_usd"])[:25]
            )
            blocks.append(
                f"<h3>by {esc(name)}</h3><table><tr><th>{esc(name)}</th><th>calls</th>"
                f"<th>cost</th></tr>{body}</table>"
            )
        alerts = "".join(
            f"<tr><td>{esc(str(a.get('kind')))}</td><td>{float(a.get('ts') or 0):.0f}</td>"
            f"<td>{esc(str(a.get('message', '')))}</td></tr>"
            for a in self.alerts()[:100]
        )
        return (
            f"<h2>Spend by feature, customer and model (policy)</h2>"
            f"<p>Total {_money(spend.get('total_usd'))}; input tokens "
            f"{spend.get('uncached_input_tokens', 0):,} uncached "
            f"({_money(spend.get('uncached_input_cost_usd'))}), "
            f"{spend.get('cached_input_tokens', 0):,} cached "
            f"({_money(spend.get('cached_input_cost_usd'))}).</p>{''.join(blocks)}"
            f"<h2>Alerts that would have fired</h2><table><tr><th>kind</th><th>ts</th>"
            f"<th>message</th></tr>{alerts}</table>"
        )

    def spend_dataframe(self, by: str = "model"):
        """Policy spend from the ledger as a DataFrame: ``by="model"`` (one row per model),
        ``"tag"`` (one row per tag key and value), or ``"time"`` (per bucket of trace time)."""
        if self.ledger is None:
            raise ValueError(
                "spend_dataframe: this report has no ledger; replay with ledger=True "
                "or ledger=thrifty.Ledger(...)"
            )
        return self.ledger.to_dataframe(by=by)

    def to_dataframe(self):
        """The time series (one row per ``bucket_seconds`` of trace time): start (UTC
        timestamp), requests, exact_hits, semantic_hits, baseline_cost_usd, cost_usd,
        savings_usd."""
        import pandas as pd

        columns = [
            "start",
            "requests",
            "exact_hits",
            "semantic_hits",
            "baseline_cost_usd",
            "cost_usd",
            "savings_usd",
        ]
        rows = self.data.get("buckets") or []
        frame = pd.DataFrame(rows, columns=columns[:-1])
        frame["start"] = pd.to_datetime(frame["start"], unit="s", utc=True)
        frame["savings_usd"] = frame["baseline_cost_usd"] - frame["cost_usd"]
        return frame[columns]

    def models_dataframe(self):
        """Requests and cost per model, for the baseline and the policy."""
        import pandas as pd

        base = self.data.get("baseline_model_mix") or {}
        policy = self.model_mix
        names = sorted(set(base) | set(policy))
        return pd.DataFrame(
            [
                {
                    "model": n,
                    "baseline_requests": base.get(n, {}).get("requests", 0),
                    "baseline_cost_usd": base.get(n, {}).get("cost_usd", 0.0),
                    "policy_requests": policy.get(n, {}).get("requests", 0),
                    "policy_cost_usd": policy.get(n, {}).get("cost_usd", 0.0),
                }
                for n in names
            ]
        )

    def sweep_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.sweep)

    # -------------------------------------------------------------------------------- plots --

    def plot_savings(self, ax=None):
        """A waterfall: the baseline, what each lever saved, and the policy's cost."""
        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(7.5, 4.0))
        else:
            fig = ax.figure
        baseline = self.data.get("baseline_cost_usd") or 0.0
        levers = self.data.get("savings_by_lever") or {}
        labels = ["baseline"]
        bottoms = [0.0]
        heights = [baseline]
        colors = ["#7f7f7f"]
        level = baseline
        for lever in LEVERS:
            saved = float(levers.get(lever, 0.0))
            labels.append(_LEVER_LABELS[lever])
            level -= saved
            bottoms.append(min(level, level + saved))
            heights.append(abs(saved))
            colors.append("#2ca02c" if saved >= 0 else "#d62728")
        labels.append("with thrifty")
        bottoms.append(0.0)
        heights.append(self.data.get("cost_usd") or 0.0)
        colors.append("#1f77b4")
        bars = ax.bar(labels, heights, bottom=bottoms, color=colors)
        for bar, h in zip(bars, heights):
            ax.annotate(
                _money(h),
                (bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_ylabel("USD")
        pct = self.data.get("savings_pct") or 0.0
        ax.set_title(f"Savings by lever: {pct:.1f}% of {_money(baseline)}")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        fig.tight_layout()
        return fig

    def plot_cost_quality(self, ax=None):
        """Cost against quality retained: the sweep's curve (if any), this run and the
        baseline (cost 100%, quality 100%)."""
        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.0, 4.0))
        else:
            fig = ax.figure
        baseline = self.data.get("baseline_cost_usd") or 0.0

        def pct(cost: float) -> float:
            return 100.0 * cost / baseline if baseline else 0.0

        rows = [r for r in self.sweep if r.get("quality_retained") is not None]
        param = self.data.get("sweep_param", "quality_threshold")
        if rows:
            xs = [pct(r["cost_usd"]) for r in rows]
            ys = [100.0 * r["quality_retained"] for r in rows]
            ax.plot(xs, ys, "o-", color="#1f77b4", label=f"sweep of {param}")
            for r, x, y in zip(rows, xs, ys):
                ax.annotate(
                    f"{r[param]:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
        q = self.data.get("quality_retained")
        if q is not None:
            ax.plot(
                [pct(self.data.get("cost_usd") or 0.0)],
                [100.0 * q],
                "s",
                color="#ff7f0e",
                label="this policy",
            )
        ax.plot([100.0], [100.0], "D", color="#7f7f7f", label="baseline (as logged)")
        ax.set_xlabel("cost, % of baseline")
        ax.set_ylabel("quality retained, %")
        source = self.data.get("quality_source", "none")
        title = "Cost vs quality"
        if source in ("predicted", "labels+predicted"):
            title += " (quality partly PREDICTED, not measured)"
        elif source == "none":
            title += " (no quality labels in the trace)"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return fig

    # ------------------------------------------------------------------------------ output --

    def text(self) -> str:
        """The console report."""
        d = self.data
        n = d.get("requests", 0) or 0
        lines = [
            f"requests replayed     {n:,}",
            f"baseline (as paid)    {_money(d.get('baseline_cost_usd'))}",
            f"with thrifty          {_money(d.get('cost_usd'))}   "
            f"(saves {_money(d.get('savings_usd'))}, {d.get('savings_pct', 0.0):.1f}%)",
            "savings by lever:",
        ]
        for lever in LEVERS:
            saved = (d.get("savings_by_lever") or {}).get(lever, 0.0)
            share = 100.0 * saved / d["baseline_cost_usd"] if d.get("baseline_cost_usd") else 0.0
            lines.append(f"  {_LEVER_LABELS[lever]:24} {_money(saved):>12}  {share:5.1f}%")
        lines.append(
            f"exact cache hits      {d.get('exact_hits', 0):,} ({100 * d.get('exact_hit_rate', 0):.1f}%)"
        )
        sem = f"semantic cache hits   {d.get('semantic_hits', 0):,} ({100 * d.get('semantic_hit_rate', 0):.1f}%)"
        if d.get("semantic_hits_checked"):
            sem += (
                f", {d.get('semantic_false_hits', 0):,} of {d['semantic_hits_checked']:,} "
                "checkable hits answered a different intent"
            )
        lines.append(sem)
        lines.append(
            f"routing               {d.get('routing')} (threshold {d.get('quality_threshold')}): "
            f"{d.get('routed_requests', 0):,} requests moved to another model"
        )
        q = d.get("quality_retained")
        if q is None:
            lines.append("quality retained      unknown (no labels in the trace)")
        else:
            source = d.get("quality_source")
            note = {
                "labels": "measured from labels",
                "predicted": "PREDICTED, not measured",
                "labels+predicted": f"partly PREDICTED ({d.get('quality_predicted_requests', 0):,} requests)",
            }.get(source, source)
            lines.append(f"quality retained      {100 * q:.1f}% ({note})")
        if d.get("routing") == "labels":
            lines.append(
                "                      note: 'labels' routing is an oracle that knows each "
                "model's quality; a trained router does less well"
            )
        mix = sorted(self.model_mix.items(), key=lambda kv: -kv[1]["requests"])
        lines.append("model mix (policy):")
        for model, v in mix[:10]:
            lines.append(
                f"  {model:28} {v['requests']:>9,} ({100 * v['requests'] / max(n, 1):5.1f}%) "
                f"{_money(v['cost_usd']):>10}"
            )
        stats = d.get("stats") or {}
        if stats.get("requests_per_s"):
            lines.append(
                f"replayed in {stats['elapsed_s']:.2f} s ({stats['requests_per_s']:,.0f} requests/s)"
            )
        for warning in d.get("warnings") or []:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        d = self.data
        q = d.get("quality_retained")
        return (
            f"Report(requests={d.get('requests')}, baseline={_money(d.get('baseline_cost_usd'))}, "
            f"cost={_money(d.get('cost_usd'))}, savings={d.get('savings_pct', 0):.1f}%, "
            f"quality_retained={'-' if q is None else f'{q:.3f}'})"
        )

    def to_json(self, path: Optional[PathLike] = None) -> str:
        text = json.dumps(self.data, indent=2, default=str)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @staticmethod
    def _png(fig) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        _pyplot().close(fig)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def to_html(self, path: PathLike) -> str:
        """Writes one self-contained HTML file (plots embedded as base64 PNG); returns path."""
        path = os.fspath(path)
        esc = html.escape
        d = self.data
        savings = self._png(self.plot_savings())
        quality = self._png(self.plot_cost_quality())
        rows = "".join(
            f"<tr><td>{esc(_LEVER_LABELS[k])}</td><td>{_money((d.get('savings_by_lever') or {}).get(k, 0.0))}</td></tr>"
            for k in LEVERS
        )
        mix = "".join(
            f"<tr><td>{esc(m)}</td><td>{v['requests']:,}</td><td>{_money(v['cost_usd'])}</td></tr>"
            for m, v in sorted(self.model_mix.items(), key=lambda kv: -kv[1]["requests"])
        )
        audit = "".join(
            "<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{}</td></tr>".format(
                esc(str(a.get("query", ""))),
                esc(str(a.get("matched_query", ""))),
                float(a.get("similarity", 0.0)),
                {True: "yes", False: "NO"}.get(a.get("same_intent"), "?"),
            )
            for a in self.audit_sample
        )
        sweep = ""
        if self.sweep:
            param = d.get("sweep_param", "quality_threshold")
            body = "".join(
                f"<tr><td>{r[param]:g}</td><td>{_money(r['cost_usd'])}</td>"
                f"<td>{r['savings_pct']:.1f}%</td><td>{_pct(r['quality_retained'])}</td></tr>"
                for r in self.sweep
            )
            sweep = (
                f"<h2>Threshold sweep</h2><table><tr><th>{esc(param)}</th><th>cost</th>"
                f"<th>savings</th><th>quality retained</th></tr>{body}</table>"
            )
        spend_html = self._spend_html() if self.ledger is not None else ""
        document = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>thrifty replay report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head><body>
<h1>thrifty replay report</h1>
<p>Trace: <code>{esc(str(d.get("trace", "")))}</code>; policy: <code>{esc(str(d.get("policy", "")))}</code></p>
<pre>{esc(self.text())}</pre>
<h2>Savings by lever</h2><table><tr><th>lever</th><th>saved</th></tr>{rows}</table>
<img alt="savings by lever" src="data:image/png;base64,{savings}">
<h2>Cost and quality</h2>
<img alt="cost vs quality" src="data:image/png;base64,{quality}">
{sweep}
<h2>Model mix (policy)</h2><table><tr><th>model</th><th>requests</th><th>cost</th></tr>{mix}</table>
{spend_html}
<h2>Semantic cache hits to audit (random sample)</h2>
<p>Each row is a request answered with the stored answer of another one. Check that they ask the same thing.</p>
<table><tr><th>query</th><th>answered with the answer to</th><th>similarity</th><th>same intent (from tags)</th></tr>{audit}</table>
</body></html>
"""
        with open(path, "w", encoding="utf-8") as f:
            f.write(document)
        return path
