"""Implementation of the `thrifty` command (kept out of cli.py so `--help` stays fast)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import thrifty
from thrifty import _samples


def _catalog(policy: Optional[str]) -> thrifty.Catalog:
    return thrifty.Catalog.from_yaml(policy) if policy else thrifty.Catalog.default()


def _read_request(path: str) -> dict:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise thrifty.InvalidArgumentError(f"{path}: cannot read request: {e.strerror}") from e
    try:
        request = json.loads(text)
    except json.JSONDecodeError as e:
        raise thrifty.InvalidArgumentError(
            f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}"
        ) from None
    if not isinstance(request, dict):
        raise thrifty.InvalidArgumentError(f"{path}: a request must be a JSON object")
    return request


def _money(usd: float) -> str:
    if usd == 0:
        return "$0"
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.6f}".rstrip("0")


def _cost_table(
    catalog: thrifty.Catalog,
    request: dict,
    output_tokens: int,
    cacheable_tokens: int,
    include_deprecated: bool,
) -> List[dict]:
    rows = []
    for spec in catalog.models():
        if spec.deprecated and not include_deprecated:
            continue
        prompt = thrifty.estimate_tokens(request, model=spec.name)
        cold = thrifty.Usage(input_tokens=prompt, output_tokens=output_tokens)
        cached = min(cacheable_tokens, prompt)
        warm = thrifty.Usage(
            input_tokens=prompt - cached, cached_input_tokens=cached, output_tokens=output_tokens
        )
        rows.append(
            {
                "model": spec.name,
                "provider": spec.provider,
                "prompt_tokens": prompt,
                "cost_usd": catalog.cost(spec, cold),
                "cost_cached_prefix_usd": catalog.cost(spec, warm),
            }
        )
    rows.sort(key=lambda r: (r["cost_usd"], r["model"]))
    return rows


def _print_cost_table(rows: List[dict], calls: int) -> None:
    header = (
        f"{'model':34} {'provider':10} {'prompt tok':>10} {'per call':>11} "
        f"{'cached prefix':>13} {'per ' + format(calls, ',') + ' calls':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['model'][:34]:34} {r['provider']:10} {r['prompt_tokens']:>10,} "
            f"{_money(r['cost_usd']):>11} {_money(r['cost_cached_prefix_usd']):>13} "
            f"{_money(r['cost_usd'] * calls):>16}"
        )


def _demo_ledger(catalog: Any) -> Any:
    """The ledger the demo records the policy's calls into, with the alerts a team might set:
    a daily budget on all traffic, a spike alert on any call over 5 cents, model-mix drift."""
    from thrifty.ledger import Ledger

    ledger = Ledger(catalog, max_time_buckets=24 * 60)
    ledger.add_budget("*", "*", DEMO_DAILY_BUDGET_USD, period="day")
    ledger.add_spike_alert(absolute_usd=0.05)
    ledger.add_drift_alert(window_seconds=3600.0, points=15.0)
    return ledger


DEMO_DAILY_BUDGET_USD = 5.0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from thrifty import synth
    from thrifty._replay import replay

    catalog = _catalog(args.policy)
    print(
        f"thrifty demo: {args.requests:,} calls of synthetic traffic (support FAQ bot, multi-turn "
        "assistant, agent loops, coding, math tutoring; seeded, offline) replayed through "
        "thrifty's exact cache, semantic cache, router and prompt-cache simulation\n"
    )
    with tempfile.TemporaryDirectory(prefix="thrifty-demo-") as tmp:
        trace = synth.generate(Path(tmp) / "sample_traffic.jsonl", n=args.requests, seed=args.seed)
        # The semantic cache is on for the FAQ bot only: on templated prompts (math problems
        # that differ in their numbers, the same coding task in another language) it answers
        # the wrong question -- see notebooks/replay_savings.ipynb for the measurement.
        report = replay(
            trace,
            catalog,
            semantic_namespaces=["support"],
            sweep=(0.7, 0.8, 0.9),
            progress=not args.no_progress,
            ledger=_demo_ledger(catalog),
        )
        print(report.text())
        print()
        print(report.spend_text(keys=("app", "category")))
        print(
            "policy: exact cache on every app; semantic cache (threshold "
            f"{report.data['semantic_threshold']}) on the 'support' FAQ bot only"
        )
        print("\nquality threshold sweep (label-oracle routing):")
        for row in report.sweep:
            q = row["quality_retained"]
            print(
                f"  threshold {row['quality_threshold']:.2f}: cost {_money(row['cost_usd'])} "
                f"({row['savings_pct']:.1f}% saved), quality retained "
                f"{'-' if q is None else f'{100 * q:.1f}%'}"
            )
        if args.report:
            report.to_html(args.report)
            print(f"\nHTML report: {args.report}")
    print("\n" + "=" * 100 + "\n")
    return _price_table(args, catalog)


def _price_table(args: argparse.Namespace, catalog: thrifty.Catalog) -> int:
    request = _samples.support_request()
    static_part = {
        "model": request["model"],
        "tools": request["tools"],
        "messages": request["messages"][:1],
    }
    cacheable = thrifty.estimate_tokens(static_part)
    print("what one support-bot request costs on every current model")
    print(
        f"catalog: {catalog.source} ({len(catalog)} models, prices read "
        f"{catalog.policy.get('read_on', '?')})"
    )
    print(
        f"request: {len(request['messages'])} messages, {len(request['tools'])} tools, "
        f"{len(json.dumps(request)):,} bytes; key {thrifty.request_key(request)}"
    )
    print(
        f"assumed: {args.output_tokens} output tokens; 'cached prefix' = the system prompt and "
        f"tools (~{cacheable:,} tokens; providers cache prefixes of 1024-4096 tokens and up) "
        "served from the provider's prompt cache at its cached-input price\n"
    )
    rows = _cost_table(catalog, request, args.output_tokens, cacheable, args.all)
    _print_cost_table(rows, args.calls)
    cheapest, dearest = rows[0], rows[-1]
    print(
        f"\nspread: {dearest['model']} costs {dearest['cost_usd'] / cheapest['cost_usd']:,.0f}x "
        f"{cheapest['model']} for this request. thrifty's router picks the cheapest model whose "
        "predicted quality meets your threshold."
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from thrifty._replay import replay

    sweep = None
    if args.sweep:
        try:
            sweep = [float(v) for v in args.sweep.split(",") if v.strip()]
        except ValueError:
            raise thrifty.InvalidArgumentError(
                f"--sweep: expected comma-separated numbers, got {args.sweep!r}"
            ) from None
    report = replay(
        args.trace,
        args.policy,
        routing=args.routing,
        quality_threshold=args.threshold,
        semantic_threshold=args.semantic_threshold,
        exact=False if args.no_exact else None,
        semantic=False if args.no_semantic else None,
        prefix_cache=False if args.no_prefix_cache else None,
        sweep=sweep,
        progress=not args.no_progress,
        limit=args.limit,
        skip_invalid=args.skip_invalid,
    )
    print(report.text())
    if args.report:
        report.to_html(args.report)
        print(f"HTML report: {args.report}")
    if args.json:
        report.to_json(args.json)
        print(f"JSON report: {args.json}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from thrifty import synth

    synth.generate(args.output, n=args.n, seed=args.seed)
    print(f"wrote {args.n:,} synthetic calls to {args.output}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    catalog = _catalog(args.policy)
    print(
        f"{'model':34} {'provider':10} {'input':>8} {'output':>8} {'cached':>8} "
        f"{'context':>9}  (USD per million tokens)"
    )
    for spec in sorted(catalog.models(), key=lambda s: (s.provider, s.input_per_mtok)):
        if spec.deprecated and not args.all:
            continue
        cached = "-" if spec.cached_input_per_mtok is None else f"{spec.cached_input_per_mtok:g}"
        context = f"{spec.context_window:,}" if spec.context_window else "-"
        print(
            f"{spec.name[:34]:34} {spec.provider:10} {spec.input_per_mtok:>8g} "
            f"{spec.output_per_mtok:>8g} {cached:>8} {context:>9}"
        )
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    catalog = _catalog(args.policy)
    request = _read_request(args.request)
    rows = _cost_table(catalog, request, args.output_tokens, args.cached_tokens, args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_cost_table(rows, args.calls)
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    print(thrifty.request_key(_read_request(args.request), namespace=args.namespace))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thrifty", description="Cut LLM inference cost.")
    parser.add_argument("--version", action="version", version=f"thrifty {thrifty.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--policy", help="policy YAML (default: the shipped catalog)")
        p.add_argument("--all", action="store_true", help="include deprecated models")

    demo = sub.add_parser(
        "demo", help="replay seeded sample traffic and price a request on every model (offline)"
    )
    common(demo)
    demo.add_argument("--requests", type=int, default=20_000, help="synthetic calls to replay")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--report", help="also write an HTML report here")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_argument("--output-tokens", type=int, default=300)
    demo.add_argument("--calls", type=int, default=1_000_000)
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="list the catalog")
    common(models)
    models.set_defaults(func=cmd_models)

    cost = sub.add_parser("cost", help="price a request (JSON file, or - for stdin) on every model")
    common(cost)
    cost.add_argument("request")
    cost.add_argument("--output-tokens", type=int, default=300)
    cost.add_argument(
        "--cached-tokens",
        type=int,
        default=0,
        help="prompt tokens the provider serves from its cache",
    )
    cost.add_argument("--calls", type=int, default=1_000_000)
    cost.add_argument("--json", action="store_true", help="print JSON rows")
    cost.set_defaults(func=cmd_cost)

    rep = sub.add_parser("replay", help="replay a JSONL trace through a cost policy")
    rep.add_argument("trace", help="JSONL trace (docs/trace_format.md)")
    rep.add_argument("--policy", help="policy YAML (default: the shipped policy)")
    rep.add_argument("--report", help="write a self-contained HTML report here")
    rep.add_argument("--json", help="write the full report as JSON here")
    rep.add_argument(
        "--routing",
        default="auto",
        choices=["auto", "labels", "priors", "keep"],
        help="auto/labels: label oracle; priors: catalog priors by tags.category; keep: none",
    )
    rep.add_argument("--threshold", type=float, help="routing quality threshold (0..1)")
    rep.add_argument("--semantic-threshold", type=float, help="semantic cache similarity")
    rep.add_argument("--sweep", help="comma-separated quality thresholds to replay again")
    rep.add_argument("--no-exact", action="store_true")
    rep.add_argument("--no-semantic", action="store_true")
    rep.add_argument("--no-prefix-cache", action="store_true")
    rep.add_argument("--limit", type=int, help="replay only the first N calls")
    rep.add_argument("--skip-invalid", action="store_true", help="skip bad lines, do not fail")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    rep.set_defaults(func=cmd_replay)

    syn = sub.add_parser("synth", help="write seeded synthetic traffic (a JSONL trace)")
    syn.add_argument("output")
    syn.add_argument("-n", type=int, default=20_000)
    syn.add_argument("--seed", type=int, default=0)
    syn.set_defaults(func=cmd_synth)

    key = sub.add_parser("key", help="print a request's cache key")
    key.add_argument("request")
    key.add_argument("--namespace", default="")
    key.set_defaults(func=cmd_key)

    # Parsed by thrifty.eval_router itself (main() hands it the rest of the command line).
    sub.add_parser(
        "eval-router",
        help="evaluate the router on RouteLLM / RouterBench data (docs/eval_router.md)",
        add_help=False,
    )
    return parser


def main(argv: List[str]) -> int:
    if argv and argv[0] == "eval-router":
        from thrifty import eval_router

        return eval_router.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except thrifty.Error as e:
        print(f"thrifty: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `thrifty models | head`
        sys.stderr.close()
        return 0
