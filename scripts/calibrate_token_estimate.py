#!/usr/bin/env python3
"""Fits estimate_tokens' per-family calibration against real tokenizers and writes it into
cpp/src/request/token_estimate.cc (between the BEGIN/END CALIBRATION markers).

Needs the built package and bpe-openai (it ships the o200k and cl100k vocabularies; nothing is
downloaded). Uses only the calibration half of scripts/token_corpus.py; the held-out half is
for benchmarks/bench_token_estimate.py.

    .venv/bin/python scripts/calibrate_token_estimate.py [--dry-run]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import token_corpus  # noqa: E402
from thrifty import _core  # noqa: E402

N_WORD = 15  # word_counts[0..14]
OTHER = [
    "digit_group",
    "punct_run",
    "punct_char",
    "newline_run",
    "space_run",
    "cjk_char",
    "other_char",
    "long_word_char",
]


def fit(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error (rows weighted by 1/target)."""
    weights = 1.0 / np.maximum(targets, 1.0)
    x = features * weights[:, None]
    y = targets * weights
    active = np.ones(features.shape[1], dtype=bool)
    active[0] = False  # word_counts[0] is always zero
    for _ in range(features.shape[1]):
        coef = np.zeros(features.shape[1])
        coef[active], *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        negative = active & (coef < 0)
        if not negative.any():
            return coef
        active &= ~negative
    return coef


def format_block(name: str, coef: np.ndarray) -> str:
    table = ", ".join(f"{v:.4f}" for v in coef[:N_WORD])
    others = ", ".join(f"{v:.4f}" for v in coef[N_WORD:])
    return f"constexpr Calibration {name} = {{\n    {{{table}}},\n    {others}}};\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    import bpe_openai

    texts = [t for group in token_corpus.samples(held_out=False).values() for t in group]
    features = np.array([_core._token_features(t) for t in texts])
    blocks = []
    for family, encoding in (("kO200k", "o200k_base"), ("kCl100k", "cl100k_base")):
        enc = bpe_openai.get_encoding(encoding)
        targets = np.array([len(enc.encode(t)) for t in texts], dtype=float)
        coef = fit(features, targets)
        predicted = features @ coef
        error = np.abs(predicted - targets) / np.maximum(targets, 1)
        print(
            f"{family}: {len(texts)} texts, calibration-set median abs error "
            f"{np.median(error):.3%}, p90 {np.percentile(error, 90):.3%}, "
            f"total bias {predicted.sum() / targets.sum() - 1:+.3%}"
        )
        blocks.append(format_block(family, coef))
    block = "".join(blocks)
    if args.dry_run:
        print(block)
        return 0
    source = Path(__file__).resolve().parents[1] / "cpp" / "src" / "request" / "token_estimate.cc"
    text = source.read_text()
    pattern = re.compile(
        r"(// BEGIN CALIBRATION[^\n]*\n)(.*?)(// END CALIBRATION)", flags=re.DOTALL
    )
    if not pattern.search(text):
        print(f"{source}: calibration markers not found", file=sys.stderr)
        return 1
    source.write_text(pattern.sub(lambda m: m.group(1) + block + m.group(3), text))
    print(f"wrote {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
