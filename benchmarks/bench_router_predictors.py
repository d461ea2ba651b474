#!/usr/bin/env python3
"""How well each router predictor predicts per-prompt quality on real labeled data.

Data (../shared/data/routing; skipped when absent): RouterBench arc_challenge and winogrande
(11 models, their own train/test split, rows with empty cells dropped) and RouteLLM MMLU
(Mixtral-8x7B vs GPT-4-1106, contaminated prompts excluded, 50/50 split by a hash of the
prompt). Each predictor (prior, knn, logistic) x embedder (hashing, static = WordLlama) is
fitted on train and scored on test: Brier score and ROC-AUC per model (mean over models), and
routed quality and cost (as a share of the best single model's, real per-prompt costs where the
data has them, else catalog prices) at the cheapest threshold that keeps >= 95% of the best
single model's quality on TEST (an oracle choice of threshold: it compares predictors, it is
not a deployable figure; calibrate() on a validation split is). The full evaluation with
baselines, APGR, CPT and AIQ is `python -m thrifty.eval_router`.

    .venv/bin/python benchmarks/bench_router_predictors.py [--embedders hashing,static]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import thrifty  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402

DATA = (
    Path(
        os.environ.get(
            "THRIFTY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    / "routing"
)


def routerbench(name):
    import pandas as pd

    files = {"arc_challenge": "arc_challenge", "winogrande": "winograde"}[name]
    train = pd.read_csv(DATA / "routerbench" / f"{files}_train.csv")
    test = pd.read_csv(DATA / "routerbench" / f"{files}_test.csv")
    skip = {"Unnamed: 0", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
    models = [c for c in train.columns if c not in skip and "|" not in c]
    cols = models + [f"{m}|total_cost" for m in models]
    train = train.dropna(subset=cols).reset_index(drop=True)
    test = test.dropna(subset=cols).reset_index(drop=True)

    def part(df):
        return (
            list(df.prompt),
            df[models].to_numpy(float),
            df[[f"{m}|total_cost" for m in models]].to_numpy(float),
        )

    return models, part(train), part(test)


def mmlu():
    import pandas as pd

    contaminated = set()
    path = DATA / "routellm_mmlu" / "contaminated_prompts.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            contaminated.update(v for v in record.values() if isinstance(v, str))
    frames = [pd.read_csv(p) for p in sorted((DATA / "routellm_mmlu").glob("mmlu_*.csv"))]
    df = pd.concat(frames, ignore_index=True)
    df = df[~df.prompt.isin(contaminated)].reset_index(drop=True)
    models = [c for c in df.columns if c != "prompt"]
    in_test = np.array([hashlib.sha256(p.encode()).digest()[0] % 2 == 1 for p in df.prompt])
    catalog = thrifty.Catalog.default()
    names = {
        "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b-instruct",
        "gpt-4-1106-preview": "gpt-4-1106-preview",
    }
    prices = {m: catalog.get(names[m]) for m in models}

    def part(mask):
        sub = df[mask]
        y = sub[models].to_numpy(float)
        tokens = np.array([thrifty.estimate_tokens(p) for p in sub.prompt], dtype=float)
        cost = np.stack(
            [(tokens * prices[m].input_per_mtok + prices[m].output_per_mtok) / 1e6 for m in models],
            axis=1,
        )
        return list(sub.prompt), y, cost

    return models, part(~in_test), part(in_test)


def catalog_for(models, train_cost, train_prompts):
    """Prices that reproduce each model's mean real cost per prompt (input-only pricing)."""
    tokens = np.mean([thrifty.estimate_tokens(p) for p in train_prompts[:200]])
    specs = [
        thrifty.ModelSpec(m, "eval", float(train_cost[:, j].mean() / tokens * 1e6), 0.0)
        for j, m in enumerate(models)
    ]
    return thrifty.Catalog(specs)


def auc(y, s):
    """ROC-AUC with tied scores counted half (Mann-Whitney with average ranks)."""
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def route(q, c, t):
    meets = q >= t
    choice = np.argmin(np.where(meets, c, np.inf), axis=1)
    none = ~meets.any(axis=1)
    choice[none] = np.argmax(q[none], axis=1)
    return choice


def evaluate(name, models, train, test, embedder_name, predictor):
    train_prompts, train_y, train_c = train
    test_prompts, y, cost = test
    catalog = catalog_for(models, train_c, train_prompts)
    embedder = thrifty.HashingEmbedder() if embedder_name == "hashing" else thrifty.StaticEmbedder()
    router = thrifty.Router(catalog, predictor=predictor, embedder=embedder)
    examples = [(p, dict(zip(models, row))) for p, row in zip(train_prompts, train_y)]
    start = time.perf_counter()
    router.fit(examples)
    fit_s = time.perf_counter() - start
    q, _, c_hat = router.predict(test_prompts, with_cost=True)
    brier = float(np.mean((q - y) ** 2))
    aucs = float(np.mean([auc(y[:, j], q[:, j]) for j in range(len(models))]))
    best = int(np.argmax(y.mean(0)))
    best_q, best_c = y[:, best].mean(), cost[:, best].mean()
    rows = np.arange(len(y))
    found = None
    for t in np.unique(np.round(q.ravel(), 4)):
        ch = route(q, c_hat, t)
        quality, spent = y[rows, ch].mean(), cost[rows, ch].mean()
        if quality >= 0.95 * best_q and (found is None or spent < found[1]):
            found = (quality, spent)
    quality, spent = found if found else (float("nan"), float("nan"))
    return {
        "dataset": name,
        "embedder": embedder_name,
        "predictor": predictor,
        "brier": brier,
        "auc": aucs,
        "quality_at_95": quality / best_q,
        "cost_share_at_95": spent / best_c,
        "fit_s": fit_s,
        "best_model": models[best],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", default="hashing,static")
    parser.add_argument("--predictors", default="prior,knn,logistic")
    parser.add_argument("--datasets", default="arc_challenge,winogrande,mmlu")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the evaluation data lives outside the repository)")
        return
    results, rows = [], []
    for name in args.datasets.split(","):
        models, train, test = mmlu() if name == "mmlu" else routerbench(name)
        for emb in args.embedders.split(","):
            for predictor in args.predictors.split(","):
                r = evaluate(name, models, train, test, emb, predictor)
                results.append(r)
                rows.append(
                    [
                        name,
                        emb,
                        predictor,
                        r["brier"],
                        r["auc"],
                        r["cost_share_at_95"],
                        f"{r['fit_s']:.1f}",
                    ]
                )
    print_table(
        "Router predictors on held-out labeled data (lower Brier, higher AUC, lower cost is "
        "better; cost = share of the best single model's cost at >= 95% of its quality, "
        "threshold chosen on test)",
        ["dataset", "embedder", "predictor", "brier", "auc", "cost@95%", "fit s"],
        rows,
    )
    print(f"wrote {write_json('bench_router_predictors', {'results': results})}")


if __name__ == "__main__":
    main()
