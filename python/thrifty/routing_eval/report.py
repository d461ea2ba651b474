"""Figures per method on one dataset's held-out rows, the printed table and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from thrifty.routing_eval import harness, metrics
from thrifty.routing_eval.data import RoutingTable
from thrifty.routing_eval.harness import Point, RouterRun


def _pts(points: Sequence[Point], axis: str = "cost") -> np.ndarray:
    x = [getattr(p, axis) for p in points]
    return metrics.as_points(x, [p.quality for p in points])


def _pgr_axis(points: Sequence[Point], two_models: bool, c_weak: float, c_strong: float):
    """(x, quality) for APGR/CPT: the strong-call share with two models (RouteLLM's axis);
    with more, cost normalized between the cheapest and the best single model."""
    if two_models:
        x = [p.strong_share for p in points]
    else:
        span = c_strong - c_weak
        x = [min(max((p.cost - c_weak) / span, 0.0), 1.0) for p in points]
    return x


def summarize(
    table: RoutingTable,
    held: np.ndarray,
    runs: Sequence[RouterRun],
    *,
    retained: float = 0.95,
    seed: int = 0,
) -> Dict[str, Any]:
    """Every method's points and figures on the held-out rows `held`."""
    quality, cost = table.quality[held], table.cost[held]
    m = len(table.models)
    mean_q, mean_c = quality.mean(axis=0), cost.mean(axis=0)
    strong, weak = metrics.strong_weak(quality, cost, table.models)
    q_best, c_best = float(mean_q[strong]), float(mean_c[strong])
    q_weak, c_weak = float(mean_q[weak]), float(mean_c[weak])
    two = m == 2
    target = retained * q_best

    singles = {
        table.models[j]: Point(
            cost=float(mean_c[j]),
            quality=float(mean_q[j]),
            strong_share=float(j == strong),
        )
        for j in range(m)
    }
    curves: Dict[str, List[Point]] = {}
    calibrated: Dict[str, Point] = {}
    for run in runs:
        for mode in run.modes:
            key = run.name if mode == "absolute" else f"{run.name} [{mode}]"
            curves[key] = harness.sweep(run.q, run.ec, quality, cost, strong, mode)
            if mode in run.thresholds:
                t = run.thresholds[mode]
                choice = harness.decide_rowwise(run.q, run.ec, t, mode)
                calibrated[key] = harness.point_of(
                    choice, quality, cost, strong, threshold=float(np.median(t))
                )
    curves["random"] = harness.random_points(quality, cost, weak, strong, seed)
    curves["oracle"] = harness.oracle_frontier(quality, cost, strong)
    oracle_pt = harness.oracle_point(quality, cost, strong)

    every = [p for pts in curves.values() for p in pts] + list(singles.values()) + [oracle_pt]
    c_min = min(p.cost for p in every)
    c_max = max(p.cost for p in every)

    def figures(points: Sequence[Point], *, hull: bool = False) -> Dict[str, Any]:
        xy = _pts(points)
        f: Dict[str, Any] = {"aiq": metrics.aiq(xy, c_min, c_max)}
        at95 = metrics.cost_to_reach(xy, target, hull=hull)
        at100 = metrics.cost_to_reach(xy, q_best, hull=hull)
        f["saving_at_target"] = metrics.saving(at95, c_best)
        f["cost_share_to_match_best"] = None if at100 is None else at100 / c_best
        x = _pgr_axis(points, two, c_weak, c_best)
        pg = metrics.as_points([*x, 0.0, 1.0], [*[p.quality for p in points], q_weak, q_best])
        f["apgr"] = metrics.apgr(pg, q_weak, q_best)
        f["cpt50"] = metrics.cpt(pg, q_weak, q_best, 0.5)
        f["cpt80"] = metrics.cpt(pg, q_weak, q_best, 0.8)
        if two:
            share = metrics.cost_to_reach(_pts(points, "strong_share"), target)
            f["strong_share_at_target"] = share
        return f

    methods: Dict[str, Dict[str, Any]] = {}
    for name, pts in curves.items():
        methods[name] = {"points": [p.as_dict() for p in pts], **figures(pts)}
    zero = list(singles.values())
    methods["zero router (mix of single models)"] = {
        "points": [p.as_dict() for p in zero],
        **figures(zero, hull=True),
    }
    oracle_saving = methods["oracle"]["saving_at_target"]
    for fig in methods.values():
        s = fig["saving_at_target"]
        fig["share_of_oracle_saving"] = (
            None if s is None or not oracle_saving else s / oracle_saving
        )
    single_figs = {}
    for name, p in singles.items():
        single_figs[name] = {
            **p.as_dict(),
            "aiq": metrics.aiq(_pts([p]), c_min, c_max),
        }
    cal = {}
    for name, p in calibrated.items():
        cal[name] = {
            **p.as_dict(),
            "quality_vs_best": p.quality / q_best,
            "saving_vs_best": 1 - p.cost / c_best,
            "meets_target": p.quality >= target,
        }
    return {
        "dataset": table.name,
        "rows_held_out": int(len(held)),
        "models": table.models,
        "strong": table.models[strong],
        "weak": table.models[weak],
        "best_quality": q_best,
        "best_cost": c_best,
        "target_quality": target,
        "retained": retained,
        "cost_range": [c_min, c_max],
        "singles": single_figs,
        "always_cheapest": singles[table.models[weak]].as_dict(),
        "oracle_point": oracle_pt.as_dict(),
        "methods": methods,
        "calibrated": cal,
        "runs": {
            run.name: {
                **run.info,
                "auc": {table.models[j]: metrics.auc(run.q[:, j], quality[:, j]) for j in range(m)},
            }
            for run in runs
        },
        "info": table.info,
    }


def _fmt(x: Optional[float], pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def table_rows(summary: Dict[str, Any]) -> List[List[str]]:
    """One line per method: figures a reader compares against the targets."""
    rows = []
    best = summary["best_cost"]
    for name, f in summary["methods"].items():
        rows.append(
            [
                name,
                _fmt(f["apgr"]),
                _fmt(f["cpt50"], True),
                _fmt(f["cpt80"], True),
                _fmt(f["aiq"]),
                _fmt(f["saving_at_target"], True),
                _fmt(f["cost_share_to_match_best"], True),
                _fmt(f["share_of_oracle_saving"], True),
                _fmt(f.get("strong_share_at_target"), True),
            ]
        )
    for name, p in summary["singles"].items():
        rows.append(
            [
                f"single: {name}",
                "",
                "",
                "",
                _fmt(p["aiq"]),
                f"q={p['quality']:.3f}",
                f"{100 * p['cost'] / best:.1f}%",
                "",
                "",
            ]
        )
    return rows


TABLE_HEADER = [
    "method",
    "APGR",
    "CPT50",
    "CPT80",
    "AIQ",
    "save@95%",
    "cost to match best",
    "of oracle's saving",
    "strong calls@95%",
]


def calibrated_rows(summary: Dict[str, Any]) -> List[List[str]]:
    return [
        [
            name,
            f"{c['threshold']:.3f}",
            f"{c['quality']:.3f}",
            f"{100 * c['quality_vs_best']:.1f}%",
            f"{100 * c['saving_vs_best']:.1f}%",
            f"{100 * c['strong_share']:.1f}%",
        ]
        for name, c in summary["calibrated"].items()
    ]


CALIBRATED_HEADER = [
    "router (threshold from train)",
    "threshold",
    "quality",
    "of best",
    "saving",
    "strong calls",
]


def plot(summary: Dict[str, Any], path: Path) -> Path:
    """Cost-quality plot (PNG): router curves, baselines, single models, oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 5.6))
    colors: Dict[str, Any] = {}
    # Every curve of the router's own rule; of the cost-aware what-ifs only the best (by AIQ),
    # so the plot stays readable.
    what_ifs = [n for n in summary["methods"] if "[utility]" in n]
    best_what_if = max(what_ifs, key=lambda n: summary["methods"][n]["aiq"], default=None)
    shown = {n: f for n, f in summary["methods"].items() if n not in what_ifs or n == best_what_if}
    for name, f in shown.items():
        pts = sorted(f["points"], key=lambda p: (p["cost"], p["quality"]))
        xs, ys = [p["cost"] for p in pts], [p["quality"] for p in pts]
        if name == "oracle":
            ax.plot(xs, ys, color="black", lw=1, ls=":", label="oracle frontier")
        elif name == "random":
            ax.plot(xs, ys, color="grey", lw=1, ls="--", marker=".", label="random")
        elif name.startswith("zero router"):
            hull = metrics.nondecreasing_convex_hull(metrics.as_points(xs, ys))
            # Mixes are linear in cost: densify so the segments stay right on a log axis.
            t = np.linspace(0.0, 1.0, 50)[:, None]
            seg = [a + t * (b - a) for a, b in zip(hull[:-1], hull[1:])] or [hull]
            dense = np.concatenate(seg)
            ax.plot(dense[:, 0], dense[:, 1], color="tab:brown", lw=1, ls="-.", label=name)
        else:
            (line,) = ax.plot(xs, ys, lw=1.4, ls=":" if "[utility]" in name else "-", label=name)
            colors[name] = line.get_color()
    for name, p in summary["singles"].items():
        ax.scatter([p["cost"]], [p["quality"]], s=18, color="tab:red", zorder=3)
        ax.annotate(
            name, (p["cost"], p["quality"]), fontsize=6, xytext=(3, -8), textcoords="offset points"
        )
    o = summary["oracle_point"]
    ax.scatter(
        [o["cost"]], [o["quality"]], marker="*", s=80, color="black", zorder=4, label="oracle"
    )
    calibrated = [(n, c) for n, c in summary["calibrated"].items() if n in colors]
    for i, (name, c) in enumerate(calibrated):
        ax.scatter(
            [c["cost"]],
            [c["quality"]],
            marker="D",
            s=30,
            zorder=5,
            color=colors.get(name, "tab:blue"),
            edgecolors="black",
            linewidths=0.5,
            label="◆ threshold chosen on train rows" if i == 0 else None,
        )
    ax.axhline(
        summary["target_quality"],
        color="tab:green",
        lw=0.8,
        ls="--",
        label=f"{100 * summary['retained']:.0f}% of {summary['strong']}",
    )
    if len(summary["models"]) > 2:  # costs span 50x: a log axis
        ax.set_xscale("log")
        ax.set_xlabel("mean realized cost per prompt (USD, log scale)")
    else:
        ax.set_xlabel("mean realized cost per prompt (USD)")
    ax.set_ylabel("mean quality")
    ax.set_title(
        f"{summary['dataset']}: cost vs quality on {summary['rows_held_out']} held-out prompts"
    )
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
