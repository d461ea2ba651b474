#!/usr/bin/env python3
"""How close and how fast is thrifty.estimate_tokens against the real tokenizers?

Accuracy is measured on the held-out half of scripts/token_corpus.py (the calibration never saw
it): per kind of text, the median and p90 absolute relative error, and the bias of the total.
Speed: estimate_tokens against bpe-openai's exact encode (a Rust BPE shipped with its
vocabularies) on the same texts, in the same run.

    .venv/bin/python benchmarks/bench_token_estimate.py

Kinds built from ../shared/data are skipped when it is absent.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import thrifty  # noqa: E402
import token_corpus  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402


def main() -> int:
    try:
        import bpe_openai
    except ImportError:
        print("bpe-openai is not installed (pip install 'thrifty[tokenizers]'); skipping")
        return 0
    samples = token_corpus.samples(held_out=True)
    if "questions" not in samples:
        print(
            f"note: {token_corpus.SHARED_DATA} is absent; measuring code, JSON and multilingual only\n"
        )
    result = {}
    rows = []
    for family, encoding, model in (
        ("o200k", "o200k_base", "gpt-6.1-terra"),
        ("cl100k", "cl100k_base", "gpt-4-1106-preview"),
    ):
        enc = bpe_openai.get_encoding(encoding)
        all_real = all_est = 0
        for kind, texts in samples.items():
            real = [len(enc.encode(t)) for t in texts]
            est = [thrifty.estimate_tokens(t, model=model) for t in texts]
            errors = sorted(abs(e - r) / max(r, 1) for e, r in zip(est, real))
            bias = sum(est) / sum(real) - 1
            all_real += sum(real)
            all_est += sum(est)
            rows.append(
                [
                    f"{family} / {kind}",
                    len(texts),
                    sum(real) / len(texts),
                    100 * statistics.median(errors),
                    100 * errors[int(0.9 * len(errors))],
                    100 * bias,
                ]
            )
            result[f"{family}/{kind}"] = {
                "texts": len(texts),
                "median_abs_error": statistics.median(errors),
                "p90_abs_error": errors[int(0.9 * len(errors))],
                "bias": bias,
            }
        rows.append(
            [
                f"{family} / all",
                sum(map(len, samples.values())),
                "",
                "",
                "",
                100 * (all_est / all_real - 1),
            ]
        )
    print_table(
        "estimate_tokens vs the real tokenizer, held-out texts (errors in %)",
        ["family / kind", "texts", "mean tokens", "median err%", "p90 err%", "total bias%"],
        rows,
    )

    texts = [t for group in samples.values() for t in group]
    chars = sum(len(t) for t in texts)
    enc = bpe_openai.get_encoding("o200k_base")

    def best_of(fn, repeats=5):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for t in texts:
                fn(t)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    ours = best_of(thrifty.estimate_tokens)
    exact = best_of(enc.encode)
    print()
    print_table(
        f"speed over {len(texts)} texts ({chars / 1e6:.1f} M characters), median of 5 passes",
        ["method", "seconds", "M chars/s", "ratio"],
        [
            ["thrifty.estimate_tokens", ours, chars / ours / 1e6, 1.0],
            ["bpe_openai o200k encode (exact)", exact, chars / exact / 1e6, exact / ours],
        ],
    )
    result["speed"] = {
        "estimate_s": ours,
        "exact_encode_s": exact,
        "speedup": exact / ours,
        "chars": chars,
    }
    print(f"\nwrote {write_json('token_estimate', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
