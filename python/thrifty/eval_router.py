"""Evaluate thrifty's router on public routing data: ``python -m thrifty.eval_router``.

Runs RouteLLM's MMLU and MT-Bench sets (gpt-4-1106-preview vs Mixtral-8x7B) and RouterBench's
arc_challenge and winogrande (11 models, real per-prompt costs) from a data folder laid out as
``../shared/data/routing`` (see docs/eval_router.md). For each dataset it fits the router on the
fitting rows only, sweeps its quality threshold on the held-out rows, computes APGR, CPT(50%),
CPT(80%) (RouteLLM), AIQ (RouterBench), the cost saving at 95% of the best single model's quality
and the share of the oracle's saving, next to the baselines (each single model, always-cheapest,
random, oracle), and writes ``<dataset>.json`` and ``<dataset>.png`` to the output folder.

With no data folder it prints why and exits 0 ("skipped").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import thrifty
from thrifty.routing_eval import data as datamod
from thrifty.routing_eval import harness, report
from thrifty.routing_eval.data import RoutingTable

TARGETS = {
    "mmlu": ">= 45% cost saving at 95% of GPT-4's accuracy (RouteLLM's published MMLU figure)",
    "mt_bench": "> 85% cost saving at 95% of GPT-4's score (RouteLLM, published)",
    "arc_challenge": "best single model's quality at <= 30% of its cost; AIQ above every single model's",
    "winogrande": "best single model's quality at <= 30% of its cost; AIQ above every single model's",
}
EMBEDDERS = ("hashing", "static")


def default_data_dir() -> Optional[Path]:
    """$THRIFTY_DATA (the data root or its routing/ folder), else shared/data/routing next to
    the source tree or the working directory, or next to one of their parents."""
    candidates: List[Path] = []
    for var in ("THRIFTY_DATA", "THRIFTY_SHARED_DATA"):
        if os.environ.get(var):
            candidates += [Path(os.environ[var]) / "routing", Path(os.environ[var])]
    source_root = Path(__file__).resolve().parents[2]
    for base in (source_root, Path.cwd()):
        candidates += [a / "shared" / "data" / "routing" for a in base.parents]
    for c in candidates:
        if any(datamod.available(c, name) for name in datamod.DATASETS):
            return c
    return None


# ------------------------------------------------------------------------- the router --


def make_embedder(name: str):
    if name == "hashing":
        return thrifty.HashingEmbedder()
    if name == "static":
        return thrifty.StaticEmbedder()
    raise ValueError(f"embedder {name!r}; accepted: {', '.join(EMBEDDERS)}")


class RouterScorer:
    """Adapts thrifty.Router to the harness: fit on a table's rows, score prompts.

    Predicted quality and expected cost come from one batch ``Router.predict(...,
    with_cost=True)`` call: the router's own cost model (estimated input tokens x input price +
    predicted output tokens x output price; no prefix-cache tracker here). The evaluation
    catalogs hold shut-down models (RouteLLM's pair), so the router is built with
    ``include_deprecated=True``.
    """

    def __init__(
        self,
        table: RoutingTable,
        predictor: Any,
        embedder: Any,
        prompt_view: str,
        router_options: Optional[Dict[str, Any]] = None,
    ):
        self.table = table
        self.view = prompt_view
        options = {"include_deprecated": True, **(router_options or {})}
        self.router = thrifty.Router(
            table.catalog, predictor=predictor, embedder=embedder, **options
        )
        names = list(self.router.models)
        missing = [m for m in table.models if m not in names]
        if missing:
            raise ValueError(f"the router's catalog lacks {missing}; it has {names}")
        self.cols = [names.index(m) for m in table.models]

    def _text(self, prompt: str) -> Any:
        """What the router is given for a prompt (the views apply to few-shot prompts only)."""
        if self.view == "full" or not self.table.info.get("few_shot"):
            return prompt
        question = datamod.last_block(prompt)
        if self.view == "last":
            return question
        prefix = prompt[: prompt.rfind(question)].strip()
        messages = [{"role": "system", "content": prefix}] if prefix else []
        return {"messages": [*messages, {"role": "user", "content": question}]}

    def fit(self, table: RoutingTable) -> None:
        examples = []
        for i, p in enumerate(table.prompts):
            q = {m: float(table.quality[i, j]) for j, m in enumerate(table.models)}
            if table.output_tokens is not None:
                out = {m: float(table.output_tokens[i, j]) for j, m in enumerate(table.models)}
                examples.append((self._text(p), q, out))
            else:
                examples.append((self._text(p), q))
        self.router.fit(examples)

    def score(self, prompts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        texts = [self._text(p) for p in prompts]
        q, _, ec = self.router.predict(texts, with_cost=True)
        q = np.asarray(q, dtype=np.float64)[:, self.cols]
        ec = np.asarray(ec, dtype=np.float64)[:, self.cols]
        return q, ec

    def route_agreement(self, prompts: Sequence[str], q, ec, thresholds) -> float:
        """Share of (prompt, threshold) pairs where Router.route picks what the harness's rule
        picks from the same predictions (a check that the sweep replays the router)."""
        same = total = 0
        for t in thresholds:
            mine = harness.decide(q, ec, float(t))
            for i, p in enumerate(prompts):
                d = self.router.route(self._text(p), quality_threshold=float(t))
                same += int(d.model == self.table.models[mine[i]])
                total += 1
        return same / max(total, 1)


def router_available() -> bool:
    return hasattr(thrifty, "Router")


PREDICTORS = ("prior", "knn", "logistic")


def available_predictors() -> List[str]:
    """The predictor names this build's Router accepts (empty without a Router)."""
    if not router_available():
        return []
    catalog = thrifty.Catalog(
        [thrifty.ModelSpec("a", "x", 1.0, 1.0), thrifty.ModelSpec("b", "x", 2.0, 2.0)]
    )
    out = []
    for name in PREDICTORS:
        try:
            thrifty.Router(catalog, predictor=name)
        except Exception:  # noqa: BLE001 - a name this build does not know
            continue
        out.append(name)
    return out


# ------------------------------------------------------------------------------ main --


def _parse_options(items: Sequence[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"eval-router: option {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _predictor(spec: str, options: Dict[str, Any]) -> Tuple[Any, str, str]:
    """(predictor as Router accepts it, name, label suffix) for "name" or "name:k=v,k=v".

    Options come from the spec and from --predictor-option; each predictor's options class
    takes those of its fields (the others are meant for other predictors)."""
    import dataclasses

    name, _, inline = spec.partition(":")
    merged = {**options, **_parse_options([x for x in inline.split(",") if x])}
    classes = {"knn": "KnnPredictor", "logistic": "LogisticPredictor", "prior": "PriorPredictor"}
    cls = getattr(thrifty, classes.get(name, ""), None)
    if cls is None or not dataclasses.is_dataclass(cls):
        return name, name, ""
    fields = {f.name for f in dataclasses.fields(cls)}
    mine = {k: v for k, v in merged.items() if k in fields}
    if not mine:
        return name, name, ""
    return cls(**mine), name, " " + ",".join(f"{k}={v}" for k, v in sorted(mine.items()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="thrifty eval-router",
        description="Evaluate the router on RouteLLM and RouterBench data (docs/eval_router.md).",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="routing data folder (default: $THRIFTY_DATA or ../shared/data/routing)",
    )
    p.add_argument(
        "--datasets",
        default=",".join(datamod.DATASETS),
        help="comma-separated: " + ", ".join(datamod.DATASETS),
    )
    p.add_argument(
        "--predictor",
        action="append",
        help="prior, knn, logistic, optionally with options: knn:k=64,shrinkage=2 (repeatable; "
        "default knn)",
    )
    p.add_argument(
        "--predictor-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the predictor class (e.g. k=20)",
    )
    p.add_argument(
        "--router-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to thrifty.Router (e.g. embed_head_chars=0)",
    )
    p.add_argument(
        "--embedder", action="append", choices=EMBEDDERS, help="repeatable; default hashing"
    )
    p.add_argument(
        "--threshold-mode",
        action="append",
        choices=harness.MODES,
        help="absolute (default), relative (share of the best predicted quality), utility (NOT "
        "the router's rule: max predicted quality - lambda x expected cost); repeatable",
    )
    p.add_argument(
        "--prompt-view",
        choices=("request", "last", "full"),
        default="request",
        help="how a few-shot prompt (RouterBench) reaches the router: a request with the examples as "
        "system message and the question as user message (default), the question alone, or the "
        "whole prompt as one string",
    )
    p.add_argument(
        "--retained",
        type=float,
        default=0.95,
        help="quality to keep, as a share of the best single model's",
    )
    p.add_argument(
        "--inner-folds",
        type=int,
        default=5,
        help="folds of the fitting rows used to calibrate the threshold",
    )
    p.add_argument(
        "--no-calibrate", action="store_true", help="skip the train-side threshold calibration"
    )
    p.add_argument("--baselines-only", action="store_true", help="do not run the router")
    p.add_argument(
        "--check-route",
        type=int,
        default=50,
        metavar="N",
        help="check Router.route against the sweep's rule on N held-out prompts (0: off)",
    )
    p.add_argument("--out", type=Path, default=Path("eval_router_results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> Dict[str, Any]:
    data_dir = args.data or default_data_dir()
    if data_dir is None or not any(datamod.available(data_dir, n) for n in datamod.DATASETS):
        where = data_dir or "$THRIFTY_DATA, ../shared/data/routing"
        print(f"eval-router: skipped: no routing data found ({where}); pass --data DIR")
        return {"skipped": True}
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in datamod.DATASETS]
    if unknown:
        raise SystemExit(
            f"eval-router: unknown datasets {unknown}; accepted: {', '.join(datamod.DATASETS)}"
        )
    if not 0 < args.retained <= 1:
        raise SystemExit(f"eval-router: --retained must be in (0, 1], got {args.retained}")
    modes = list(dict.fromkeys(args.threshold_mode or ["absolute"]))
    predictors = args.predictor or ["knn"]
    embedder_names = args.embedder or ["hashing"]
    options = _parse_options(args.predictor_option)
    router_options = _parse_options(args.router_option)
    use_router = not args.baselines_only
    if use_router and not router_available():
        print("eval-router: thrifty.Router is not in this build; running the baselines only")
        use_router = False
    embedders = {e: make_embedder(e) for e in embedder_names} if use_router else {}
    args.out.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Any] = {"data": str(data_dir), "seed": args.seed, "datasets": {}}
    for name in names:
        if not datamod.available(data_dir, name):
            print(f"eval-router: {name}: skipped (no files under {data_dir})")
            continue
        start = time.perf_counter()
        table = datamod.load(data_dir, name, seed=args.seed)
        runs = []
        held = np.concatenate([e for _, e in harness.outer_folds(table)])
        for pred in predictors:
            # The prior predictor ignores the embedding: one embedder is enough.
            embs = embedder_names[:1] if pred.partition(":")[0] == "prior" else embedder_names
            for emb in embs if use_router else []:
                predictor, pname, suffix = _predictor(pred, options)
                label = f"router {pname}/{emb}{suffix}"

                def factory(t: RoutingTable, predictor=predictor, emb=emb):
                    return RouterScorer(
                        t, predictor, embedders[emb], args.prompt_view, router_options
                    )

                t0 = time.perf_counter()
                held, r = harness.run_router(
                    table,
                    label,
                    factory,
                    modes=modes,
                    retained=args.retained,
                    inner_k=args.inner_folds,
                    seed=args.seed,
                    calibrate=not args.no_calibrate,
                )
                r.info["seconds"] = time.perf_counter() - t0
                if args.check_route:
                    r.info["route_agreement"] = _check_route(table, factory, args.check_route)
                runs.append(r)
        summary = report.summarize(table, held, runs, retained=args.retained, seed=args.seed)
        summary["target"] = TARGETS[name]
        summary["seconds"] = time.perf_counter() - start
        summary["catalog"] = {
            s.name: {"input_per_mtok": s.input_per_mtok, "output_per_mtok": s.output_per_mtok}
            for s in table.catalog.models()
            if s.name in table.models
        }
        summary["plot"] = str(report.plot(summary, args.out / f"{name}.png"))
        (args.out / f"{name}.json").write_text(json.dumps(summary, indent=1, default=_json) + "\n")
        results["datasets"][name] = summary
        if not args.quiet:
            print_summary(summary)
    (args.out / "summary.json").write_text(json.dumps(results, indent=1, default=_json) + "\n")
    return results


def _check_route(table: RoutingTable, factory, n: int) -> float:
    """Router.route on n held-out prompts at three thresholds must pick what the sweep picks."""
    fit_idx, eval_idx = harness.outer_folds(table)[0]
    scorer = factory(table)
    scorer.fit(table.subset(fit_idx))
    prompts = [table.prompts[i] for i in eval_idx[:n]]
    q, ec = scorer.score(prompts)
    return scorer.route_agreement(prompts, q, ec, np.quantile(q, [0.25, 0.5, 0.75]))


def _json(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def print_summary(s: Dict[str, Any]) -> None:
    from thrifty.routing_eval.report import (
        CALIBRATED_HEADER,
        TABLE_HEADER,
        calibrated_rows,
        table_rows,
    )

    print(
        f"\n== {s['dataset']}: {s['rows_held_out']} held-out prompts; best single "
        f"{s['strong']} quality {s['best_quality']:.3f} at ${s['best_cost'] * 1000:.3f}/1k prompts; "
        f"cheapest {s['weak']}; oracle {s['oracle_point']['quality']:.3f} at "
        f"${s['oracle_point']['cost'] * 1000:.3f}/1k"
    )
    print(f"   target: {s['target']}")
    _print(TABLE_HEADER, table_rows(s))
    if s["calibrated"]:
        _print(CALIBRATED_HEADER, calibrated_rows(s))
    for name, info in s.get("runs", {}).items():
        agree = info.get("route_agreement")
        aucs = [a for a in info.get("auc", {}).values() if a is not None]
        line = f"   {name}: {info.get('seconds', 0):.1f} s"
        if agree is not None:
            line += f"; Router.route agrees with the sweep on {100 * agree:.1f}%"
        if aucs:
            line += f"; AUC of predicted quality per model {min(aucs):.2f}-{max(aucs):.2f}"
        print(line)
    print(f"   plot: {s['plot']}")


def _print(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))
        )
    )
    for r in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            )
        )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
