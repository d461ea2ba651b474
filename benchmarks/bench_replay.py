"""Replay throughput and memory on synthetic traffic (thrifty.synth), and the peer it beats.

Replays an N-line synthetic trace (default 1,000,000) with the HashingEmbedder and the full
policy -- exact cache, semantic cache, label routing, prefix-cache simulation -- in a fresh
subprocess per run, so peak RSS (ru_maxrss) is the replay's own. It reports wall-clock and
CPU-time throughput (the machine is shared: CPU time shows what the code costs when the cores
are busy with other work), peak RSS per million lines at two trace lengths (memory is bounded:
the second figure must not grow with the trace), the same policy with a trained router
(logistic, fitted on 5,000 other synthetic records) instead of the label oracle on a quarter of
the lines, and a straightforward pure-Python replay (json.loads + a dict exact cache + label
routing) on the first 20,000 lines as the peer, against thrifty with the same policy.

    python benchmarks/bench_replay.py [--lines 1000000] [--trace PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import print_table, write_json  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import thrifty
from thrifty import synth
path, limit, threads, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
full = mode != "peer"
router = None
if mode == "router":  # a trained router instead of the label oracle, fitted before the clock
    router = thrifty.Router(thrifty.Catalog.default(), predictor="logistic")
    records = list(synth.records(n=5000, seed=7))
    router.fit([(r["request"], {m: lab["quality"] for m, lab in r["labels"].items()})
                for r in records])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, t0 = cpu(), time.perf_counter()
report = thrifty.replay(path, embedder=thrifty.HashingEmbedder(), limit=limit, threads=threads,
                        semantic_namespaces=["support"], audit_sample_size=50,
                        semantic=full, prefix_cache=full, router=router,
                        candidate_models=list(synth.LABEL_MODELS) if router else None)
wall, cpu_s = time.perf_counter() - t0, cpu() - c0
print(json.dumps({"requests": report.data["requests"], "wall_s": wall, "cpu_s": cpu_s,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "savings_pct": report.data["savings_pct"],
                  "exact_hits": report.data["exact_hits"],
                  "semantic_hits": report.data["semantic_hits"],
                  "stats": report.data["stats"]}))
"""

BASELINE_RSS = r"""
import resource, thrifty
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run_child(path: str, limit: int, threads: int, mode: str = "full") -> dict:
    """mode "full": the whole policy with label routing; "router": the whole policy with a
    trained logistic router; "peer": exact cache + label routing only (the peer's policy)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, str(limit), str(threads), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def python_peer(path: str, limit: int) -> dict:
    """The obvious pure-Python replay: parse, exact-cache by canonical JSON, route by labels."""
    import thrifty

    catalog = thrifty.Catalog.default()
    cache = {}
    cost = baseline = 0.0
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if n >= limit:
                break
            n += 1
            r = json.loads(line)
            usage = (
                thrifty.Usage.from_openai(r["response"]["usage"])
                if r["response"].get("provider") == "openai"
                else thrifty.Usage.from_anthropic(r["response"]["usage"])
            )
            paid = catalog.cost(r["request"]["model"], usage)
            baseline += paid
            key = (r.get("namespace", ""), json.dumps(r["request"], sort_keys=True))
            if key in cache:
                continue
            best = None
            for model, label in r["labels"].items():
                if label["quality"] >= 0.8 and (best is None or label["cost_usd"] < best[0]):
                    best = (label["cost_usd"], model)
            spent = best[0] if best else paid
            cost += spent
            cache[key] = spent
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    return {"requests": n, "wall_s": wall, "cpu_s": cpu_s}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--trace", help="reuse this synthetic trace (written if missing)")
    parser.add_argument("--threads", type=int, default=0, help="replay workers (0: all cores)")
    args = parser.parse_args()

    from thrifty import synth

    tmp = None
    path = args.trace
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-replay-")
        path = os.path.join(tmp.name, f"synth_{args.lines}.jsonl")
    if not Path(path).exists():
        t0 = time.perf_counter()
        synth.generate(path, n=args.lines, seed=1)
        print(
            f"generated {args.lines:,} lines ({Path(path).stat().st_size / 1e9:.2f} GB) "
            f"in {time.perf_counter() - t0:.0f} s"
        )
    size_gb = Path(path).stat().st_size / 1e9

    base_rss = float(
        subprocess.run(
            [sys.executable, "-c", BASELINE_RSS], capture_output=True, text=True, check=True
        ).stdout
    )
    quarter = run_child(path, args.lines // 4, args.threads)
    full = run_child(path, args.lines, args.threads)
    peer_lines = min(20_000, args.lines)
    peer = python_peer(path, peer_lines)
    ours_small = run_child(path, peer_lines, args.threads, mode="peer")
    routed = run_child(path, args.lines // 4, args.threads, mode="router")

    def per_s(r, key):
        return r["requests"] / r[key] if r[key] > 0 else 0.0

    rows = []
    for name, r in (
        (f"thrifty replay, {quarter['requests']:,} lines", quarter),
        (f"thrifty replay, {full['requests']:,} lines", full),
        (f"thrifty replay, trained router, {routed['requests']:,} lines", routed),
        (f"thrifty, exact + routing, {ours_small['requests']:,} lines", ours_small),
        (f"pure-Python peer, exact + routing, {peer['requests']:,} lines", peer),
    ):
        rss = r.get("max_rss_mb")
        rows.append(
            [
                name,
                f"{per_s(r, 'wall_s'):,.0f}",
                f"{per_s(r, 'cpu_s'):,.0f}",
                "-" if rss is None else f"{rss:,.0f}",
                "-" if rss is None else f"{(rss - base_rss) / (r['requests'] / 1e6):,.0f}",
            ]
        )
    print_table(
        f"Replay: exact + semantic (support) + label routing + prefix cache, HashingEmbedder; "
        f"{size_gb:.2f} GB trace, {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}",
        ["run", "req/s (wall)", "req/s per CPU-s", "peak RSS MB", "RSS MB per 1M lines"],
        rows,
    )
    ratio = per_s(ours_small, "cpu_s") / max(per_s(peer, "cpu_s"), 1e-9)
    ratio_wall = per_s(ours_small, "wall_s") / max(per_s(peer, "wall_s"), 1e-9)
    print(
        f"\none run each (a replay is one long call). thrifty / pure-Python peer on the same "
        f"{peer_lines:,} lines and policy (exact cache + label routing): {ratio_wall:.1f}x "
        f"wall-clock, {ratio:.1f}x CPU-time throughput"
    )
    print(
        f"peak RSS above an idle `import thrifty` ({base_rss:.0f} MB): "
        f"{quarter['max_rss_mb'] - base_rss:,.0f} MB at {quarter['requests']:,} lines, "
        f"{full['max_rss_mb'] - base_rss:,.0f} MB at {full['requests']:,} lines"
    )
    write_json(
        "bench_replay",
        {
            "lines": args.lines,
            "trace_gb": size_gb,
            "cores": os.cpu_count(),
            "loadavg": os.getloadavg()[0],
            "idle_rss_mb": base_rss,
            "quarter": quarter,
            "full": full,
            "router": routed,
            "small": ours_small,
            "python_peer": peer,
            "ratio_cpu_throughput_vs_peer": ratio,
            "ratio_wall_throughput_vs_peer": ratio_wall,
        },
    )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
