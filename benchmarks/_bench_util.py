"""Shared helpers for the Python benchmarks: timing with medians, tables, JSON results."""

from __future__ import annotations

import gzip
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def per_call_us(fn: Callable[[], object], calls: int = 2000, rounds: int = 31) -> Dict[str, float]:
    """Median, p10 and p90 microseconds per call over `rounds` rounds of `calls` calls."""
    for _ in range(min(calls, 500)):
        fn()
    samples: List[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    samples.sort()
    return {
        "median_us": statistics.median(samples),
        "p10_us": samples[len(samples) // 10],
        "p90_us": samples[len(samples) * 9 // 10],
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(title)
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print(
        "  ".join(
            str(h).ljust(w) if i == 0 else str(h).rjust(w)
            for i, (h, w) in enumerate(zip(header, widths))
        )
    )
    for row in rows:
        print(
            "  ".join(
                _fmt(c).ljust(w) if i == 0 else _fmt(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def qqp_texts(data_dir: Path) -> Optional[List[str]]:
    """The distinct non-blank questions of `data_dir`/cache/qqp_pairs.jsonl.gz (the shared
    evaluation data), in file order; None when the file is absent."""
    path = Path(data_dir) / "cache" / "qqp_pairs.jsonl.gz"
    if not path.exists():
        return None
    texts: List[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts += [row["text_a"], row["text_b"]]
    return list(dict.fromkeys(t for t in texts if t.strip()))
