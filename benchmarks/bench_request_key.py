#!/usr/bin/env python3
"""request_key on a 4 KB chat request: thrifty (C++ and through Python) against the usual Python
way, hashlib.sha256(json.dumps(req, sort_keys=True).encode()), in the same run.

    .venv/bin/python benchmarks/bench_request_key.py [--cpp build/release/benchmarks/bench_request_key]

Targets (issue #2): <= 5 us median in C++, <= 15 us through Python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import ROOT, per_call_us, print_table, write_json  # noqa: E402
from thrifty import _samples  # noqa: E402


def sha256_json(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cpp",
        default=str(ROOT / "build" / "release" / "benchmarks" / "bench_request_key"),
        help="the C++ benchmark binary (built by `make bench`)",
    )
    args = parser.parse_args()

    request = _samples.benchmark_request(4096)
    size = len(json.dumps(request, separators=(",", ":")).encode())
    thrifty_py = per_call_us(lambda: thrifty.request_key(request, "tenant-a"))
    peer = per_call_us(lambda: sha256_json(request))
    rows = [
        [
            "thrifty.request_key (Python -> C++)",
            thrifty_py["median_us"],
            thrifty_py["p10_us"],
            thrifty_py["p90_us"],
            1.0,
        ],
        [
            "hashlib.sha256(json.dumps(sort_keys))",
            peer["median_us"],
            peer["p10_us"],
            peer["p90_us"],
            peer["median_us"] / thrifty_py["median_us"],
        ],
    ]
    result = {
        "request_bytes": size,
        "python": thrifty_py,
        "sha256_json_dumps": peer,
        "speedup_vs_sha256_json": peer["median_us"] / thrifty_py["median_us"],
    }

    cpp = Path(args.cpp)
    if cpp.exists():
        with tempfile.TemporaryDirectory() as tmp:
            request_path, out_path = Path(tmp) / "request.json", Path(tmp) / "out.json"
            request_path.write_text(json.dumps(request))
            subprocess.run(
                [str(cpp), str(request_path), "--json", str(out_path)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cpp_result = json.loads(out_path.read_text())
        rows.insert(
            0,
            [
                "thrifty RequestKey (C++)",
                cpp_result["request_key_median_us"],
                cpp_result["request_key_p10_us"],
                cpp_result["request_key_p90_us"],
                thrifty_py["median_us"] / cpp_result["request_key_median_us"],
            ],
        )
        result["cpp"] = cpp_result
    else:
        print(f"(C++ benchmark not built at {cpp}; run `make bench` for the C++ row)\n")

    print_table(
        f"request_key, {size}-byte chat request (median of 31 rounds x 2000 calls; "
        "last column: time ratio against thrifty through Python)",
        ["implementation", "median us", "p10 us", "p90 us", "ratio"],
        rows,
    )
    print(
        f"\ntargets: C++ <= 5 us, Python <= 15 us; "
        f"thrifty via Python is {result['speedup_vs_sha256_json']:.1f}x faster than sha256(json.dumps)"
    )
    print(f"wrote {write_json('request_key', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
