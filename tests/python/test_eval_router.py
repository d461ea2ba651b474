"""The router evaluation harness: metrics on hand-computable tables, loaders on tiny fixtures
written here (never the real data), the protocol, and the skip path."""

import json
import subprocess
import sys

import numpy as np
import pytest

import thrifty
from thrifty.routing_eval import data, harness, metrics, report
from thrifty.routing_eval.data import RoutingTable

# ----------------------------------------------------------------------------- metrics --


def test_ndch_drops_points_under_a_chord_and_after_the_peak():
    pts = metrics.as_points([0, 1, 1.5, 2, 3], [0.5, 0.6, 0.6, 0.9, 0.8])
    hull = metrics.nondecreasing_convex_hull(pts)
    # (1, .6) and (1.5, .6) lie under the chord (0, .5)-(2, .9); (3, .8) is past the peak.
    assert hull.tolist() == [[0.0, 0.5], [2.0, 0.9]]


def test_aiq_of_a_known_hull_and_of_a_single_point():
    pts = metrics.as_points([0, 1, 2, 3], [0.5, 0.6, 0.9, 0.8])
    # Area: trapezoid 0..2 = (0.5 + 0.9) / 2 * 2 = 1.4, flat 0.9 from 2 to 4 = 1.8; / 4.
    assert metrics.aiq(pts, 0.0, 4.0) == pytest.approx(0.8)
    # A single model is a point: zero left of its cost, flat to c_max.
    assert metrics.aiq(metrics.as_points([1.0], [0.8]), 0.0, 2.0) == pytest.approx(0.4)
    assert metrics.aiq(metrics.as_points([2.0], [0.8]), 0.0, 2.0) == 0.0
    with pytest.raises(ValueError, match="outside the range"):
        metrics.aiq(pts, 0.0, 2.0)
    with pytest.raises(ValueError, match="c_max > c_min"):
        metrics.aiq(pts, 1.0, 1.0)


def test_apgr_and_cpt_of_random_and_oracle_curves():
    weak, strong = 0.6, 0.8
    random_curve = metrics.as_points([0, 0.5, 1], [0.6, 0.7, 0.8])
    assert metrics.apgr(random_curve, weak, strong) == pytest.approx(0.5)
    assert metrics.cpt(random_curve, weak, strong, 0.5) == pytest.approx(0.5)
    assert metrics.cpt(random_curve, weak, strong, 0.8) == pytest.approx(0.8)
    # An oracle recovers the whole gap with 20% of the calls: 0.2 * 0.5 + 0.8 * 1.
    oracle_curve = metrics.as_points([0, 0.2, 1], [0.6, 0.8, 0.8])
    assert metrics.apgr(oracle_curve, weak, strong) == pytest.approx(0.9)
    assert metrics.cpt(oracle_curve, weak, strong, 0.5) == pytest.approx(0.1)
    assert metrics.cpt(oracle_curve, weak, strong, 0.8) == pytest.approx(0.16)
    with pytest.raises(ValueError, match="span"):
        metrics.apgr(metrics.as_points([0, 0.5], [0.6, 0.7]), weak, strong)
    with pytest.raises(ValueError, match="undefined"):
        metrics.pgr_curve(random_curve, 0.7, 0.7)


def test_cost_to_reach_interpolates_and_says_none_when_out_of_reach():
    pts = metrics.as_points([1, 3, 2], [0.5, 0.9, 0.7])
    assert metrics.cost_to_reach(pts, 0.8) == pytest.approx(2.5)
    assert metrics.cost_to_reach(pts, 0.4) == 1.0
    assert metrics.cost_to_reach(pts, 0.95) is None
    # On the hull the mix of (1, .5) and (3, .9) reaches .8 at 2.5 too; (2, .7) is on the chord.
    assert metrics.cost_to_reach(pts, 0.8, hull=True) == pytest.approx(2.5)
    assert metrics.saving(2.5, 10.0) == pytest.approx(0.75)
    assert metrics.saving(None, 10.0) is None
    with pytest.raises(ValueError, match="same non-zero length"):
        metrics.as_points([1, 2], [0.5])
    with pytest.raises(ValueError, match="finite"):
        metrics.as_points([1.0], [float("nan")])


def test_auc_by_hand():
    assert metrics.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert metrics.auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)  # a tie counts half
    assert metrics.auc([0.1, 0.2], [1, 1]) is None
    assert metrics.auc([0.1, 0.2], [0.5, 1]) is None


# ----------------------------------------------------------------------------- harness --


def test_decide_is_the_router_rule():
    q = np.array([[0.9, 0.95], [0.5, 0.8], [0.3, 0.4], [0.6, 0.6]])
    ec = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0], [5.0, 5.0]])
    # Threshold .7: row 0 both qualify -> cheaper (0); row 1 only model 1; row 2 none ->
    # highest predicted quality (1); row 3 none, tie on quality -> tie on cost -> first.
    assert harness.decide(q, ec, 0.7).tolist() == [0, 1, 1, 0]
    assert harness.decide(q, ec, 0.0).tolist() == [0, 0, 0, 0]
    # Relative: >= 0.9 x the row's best predicted quality.
    assert harness.decide(q, ec, 0.9, "relative").tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="threshold mode"):
        harness.decide(q, ec, 0.5, "percent")


def _table(quality, cost, *, split=None, groups=None, prompts=None):
    quality = np.asarray(quality, dtype=float)
    cost = np.asarray(cost, dtype=float)
    n, m = quality.shape
    models = ["weak", "strong", "mid"][:m]
    catalog = thrifty.Catalog([thrifty.ModelSpec(x, "test", 1.0, 1.0) for x in models])
    return RoutingTable(
        name="synthetic",
        prompts=prompts or [f"prompt {i}" for i in range(n)],
        columns=models,
        models=models,
        quality=quality,
        cost=cost,
        catalog=catalog,
        split=None if split is None else np.asarray(split, dtype=object),
        groups=None if groups is None else np.asarray(groups),
    )


def test_oracle_point_and_frontier_by_hand():
    # Weak right on rows 0, 1; strong on 0, 1, 2; nobody on row 3.
    q = np.array([[1, 1], [1, 1], [0, 1], [0, 0]], dtype=float)
    c = np.array([[1, 10]] * 4, dtype=float)
    p = harness.oracle_point(q, c, strong=1)
    assert (p.quality, p.cost, p.strong_share) == (0.75, 3.25, 0.25)
    frontier = harness.oracle_frontier(q, c, strong=1)
    costs = sorted((x.cost, x.quality) for x in frontier)
    assert costs[0] == (1.0, 0.5) and costs[-1] == (3.25, 0.75)


def test_random_baseline_recovers_half_the_gap():
    rng = np.random.default_rng(1)
    n = 4000
    weak = (rng.random(n) < 0.6).astype(float)
    strong = (rng.random(n) < 0.8).astype(float)
    q = np.stack([weak, strong], axis=1)
    c = np.tile([1.0, 10.0], (n, 1))
    pts = harness.random_points(q, c, weak=0, strong=1, seed=0)
    curve = metrics.as_points([p.strong_share for p in pts], [p.quality for p in pts])
    assert metrics.apgr(curve, q[:, 0].mean(), q[:, 1].mean()) == pytest.approx(0.5, abs=0.03)
    assert pts == harness.random_points(q, c, weak=0, strong=1, seed=0)  # seeded


class LabelScorer:
    """A test double: predicts each row's true labels (a perfect router) or the train means."""

    def __init__(self, table, perfect):
        self.table, self.perfect = table, perfect
        self.by_prompt = {p: i for i, p in enumerate(table.prompts)}

    def fit(self, sub):
        self.fitted_on = set(sub.prompts)
        self.mean = sub.quality.mean(axis=0)

    def score(self, prompts):
        assert not self.fitted_on & set(prompts), "scored a row it was fitted on"
        idx = [self.by_prompt[p] for p in prompts]
        q = self.table.quality[idx] if self.perfect else np.tile(self.mean, (len(idx), 1))
        return q, self.table.cost[idx]


def _two_model_table(n=400, seed=3):
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.5).astype(float))
    q = np.stack([weak, strong], axis=1)
    c = np.tile([1.0, 10.0], (n, 1))
    split = np.where(np.arange(n) % 2 == 0, "train", "test")
    return _table(q, c, split=split)


def test_a_perfect_router_reaches_the_oracle_and_a_constant_one_is_random():
    table = _two_model_table()
    held, perfect = harness.run_router(
        table, "perfect", lambda t: LabelScorer(t, True), modes=["absolute"], inner_k=3
    )
    _, constant = harness.run_router(
        table, "constant", lambda t: LabelScorer(t, False), modes=["absolute"], inner_k=3
    )
    assert sorted(held.tolist()) == np.flatnonzero(table.split == "test").tolist()
    s = report.summarize(table, held, [perfect, constant])
    oracle = s["oracle_point"]
    best = max((p["quality"], -p["cost"]) for p in s["methods"]["perfect"]["points"])
    assert best == (oracle["quality"], -oracle["cost"])
    assert s["methods"]["perfect"]["share_of_oracle_saving"] == pytest.approx(1.0, abs=1e-6)
    assert s["methods"]["perfect"]["apgr"] == pytest.approx(s["methods"]["oracle"]["apgr"])
    # Predicting the means sends every row to one model: the curve is the single models.
    assert s["methods"]["constant"]["apgr"] == pytest.approx(0.5)
    assert s["methods"]["zero router (mix of single models)"]["apgr"] == pytest.approx(0.5)
    # Calibrated on train: the perfect router keeps >= 95% of the best quality, and saves.
    cal = s["calibrated"]["perfect"]
    assert cal["meets_target"] and cal["saving_vs_best"] > 0.3
    assert s["singles"]["strong"]["aiq"] == 0.0  # the dearest point has no area to its right


def test_leave_one_group_out_never_scores_its_fitting_rows():
    table = _two_model_table(n=60)
    table.split = None
    table.groups = np.arange(60) // 3  # 20 groups of 3 rows
    held, run = harness.run_router(
        table, "perfect", lambda t: LabelScorer(t, True), modes=["absolute"], inner_k=4
    )
    assert sorted(held.tolist()) == list(range(60))
    assert len(harness.outer_folds(table)) == 20
    folds = harness.inner_folds(table, np.arange(30), 4, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(30))
    seen = [set(table.groups[f].tolist()) for f in folds]
    assert sum(len(s) for s in seen) == len(set().union(*seen))  # no group in two folds


# ----------------------------------------------------------------------------- loaders --


def _mmlu_fixture(root):
    d = root / "routellm_mmlu"
    d.mkdir(parents=True)
    (d / "mmlu_anatomy.csv").write_text(
        "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"
        '"What is 1+1?\nA. 2\nAnswer:",True,True\n'
        '"Name the bone.\nA. femur\nAnswer:",False,True\n'
        '"Leaked question\nAnswer:",False,False\n'
    )
    (d / "mmlu_virology.csv").write_text(
        "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"
        "Which virus?,False,False\n"
        '"What is 1+1?\nA. 2\nAnswer:",True,False\n'
    )
    (d / "contaminated_prompts.jsonl").write_text(
        json.dumps({"train_prompt": "x", "eval_prompt": "Leaked question\nAnswer:"}) + "\n"
    )


def test_mmlu_loader_drops_contaminated_prices_tokens_and_splits_by_hash(tmp_path):
    _mmlu_fixture(tmp_path)
    t = data.load_mmlu(tmp_path, seed=7)
    assert len(t) == 4 and t.info["contaminated_dropped"] == 1
    assert t.models == ["mixtral-8x7b-instruct", "gpt-4-1106-preview"]
    assert t.quality.tolist() == [[1, 1], [0, 1], [0, 0], [1, 0]]
    # A prompt repeated across subjects lands on the same side of the split.
    assert t.split[0] == t.split[3] and set(t.split) <= {"train", "test"}
    assert data.load_mmlu(tmp_path, seed=7).split.tolist() == t.split.tolist()
    tokens = thrifty.estimate_tokens(t.prompts[1], model="gpt-4-1106-preview")
    usage = thrifty.Usage(input_tokens=tokens, output_tokens=1)
    assert t.cost[1, 1] == pytest.approx(t.catalog.cost("gpt-4-1106-preview", usage))
    assert t.cost[1, 1] > 10 * t.cost[1, 0]


def test_mmlu_loader_rejects_a_bad_cell_with_file_and_line(tmp_path):
    _mmlu_fixture(tmp_path)
    (tmp_path / "routellm_mmlu" / "mmlu_zoo.csv").write_text(
        "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\nq,maybe,True\n"
    )
    with pytest.raises(ValueError, match=r"mmlu_zoo.csv:2: .*expected True or False, got 'maybe'"):
        data.load_mmlu(tmp_path)


def _judgement(qid, model, turn, score, answers, question="Q?"):
    if turn == 1:
        prompt = (
            f"[Instruction]\nRate it.\n\n[Question]\n{question}\n\n"
            f"[The Start of Assistant's Answer]\n{answers[0]}\n[The End of Assistant's Answer]"
        )
        judge = ["gpt-4", "single-v1"]
    else:
        prompt = (
            "<|The Start of Assistant A's Conversation with User|>\n\n"
            f"### User:\n{question}\n\n### Assistant A:\n{answers[0]}\n\n"
            f"### User:\nAnd then?\n\n### Assistant A:\n{answers[1]}\n\n"
            "<|The End of Assistant A's Conversation with User|>"
        )
        judge = ["gpt-4", "single-v1-multi-turn"]
    return {
        "question_id": qid,
        "model": model,
        "judge": judge,
        "user_prompt": prompt,
        "score": score,
        "turn": turn,
    }


def test_mt_bench_loader_averages_turns_and_drops_contaminated(tmp_path):
    d = tmp_path / "routellm_mt_bench"
    d.mkdir()
    qs = [
        {"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorter."]},
        {"question_id": 82, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]},
    ]
    (d / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    (d / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": "Shorter."}) + "\n")
    lines = []
    for model, s1, s2, words in (
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 6, 8, 5),
        ("gpt-4-1106-preview", 10, 9, 50),
    ):
        answers = ["four " * words, "six " * words]
        lines += [_judgement(82, model, 1, s1, answers), _judgement(82, model, 2, s2, answers)]
        lines += [_judgement(81, model, 1, 5, answers), _judgement(81, model, 2, 5, answers)]
    (d / "judgements.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    t = data.load_mt_bench(tmp_path)
    assert t.prompts == ["What is 2+2?"] and t.groups.tolist() == [82]
    assert t.info["contaminated_dropped"] == 1 and t.info["answers_unparsed"] == 0
    assert t.quality.tolist() == [[0.7, 0.95]]
    # GPT-4's answers are 10x longer: more output tokens, at a higher price.
    assert t.output_tokens[0, 1] > 5 * t.output_tokens[0, 0] > 0
    assert t.cost[0, 1] > 20 * t.cost[0, 0]


ROUTERBENCH_HEADER = (
    ",sample_id,prompt,eval_name,m/a,b,m/a|model_response,b|model_response,"
    "m/a|total_cost,b|total_cost,oracle_model_to_route_to\n"
)


def test_routerbench_loader_skips_empty_cells_and_fits_prices_on_train(tmp_path):
    d = tmp_path / "routerbench"
    d.mkdir()
    (d / "winograde_train.csv").write_text(
        ROUTERBENCH_HEADER
        + "0,w.1,\"['few shot\\n\\nQuestion one?']\",w,1.0,0.0,\"['A']\",\"['B']\",0.001,0.01,m/a\n"
        + "1,w.2,\"['few shot\\n\\nQuestion two?']\",w,,1.0,\"['A']\",\"['B']\",0.001,0.01,b\n"
        + "2,w.3,\"['few shot\\n\\nQuestion three?']\",w,0.0,1.0,\"['A']\",\"['B']\",0.002,0.02,b\n"
    )
    (d / "winograde_test.csv").write_text(
        ROUTERBENCH_HEADER
        + "0,w.4,\"['few shot\\n\\nQuestion four?']\",w,1.0,1.0,\"['A']\",\"['A']\",0.003,0.03,m/a\n"
    )
    t = data.load_routerbench(tmp_path, "winogrande")
    assert t.info["skipped_empty_rows"] == {"train": 1, "test": 0}
    assert t.split.tolist() == ["train", "train", "test"]
    assert t.models == ["a", "b"] and t.columns == ["m/a", "b"]
    assert t.cost.tolist() == [[0.001, 0.01], [0.002, 0.02], [0.003, 0.03]]
    assert t.prompts[0] == "few shot\n\nQuestion one?"
    assert data.last_block(t.prompts[0]) == "Question one?"
    # Fitted blended prices keep the ratio of the real costs (b costs 10x a per token).
    a, b = t.catalog.get("a"), t.catalog.get("b")
    assert b.input_per_mtok == pytest.approx(10 * a.input_per_mtok, rel=1e-3)
    assert a.input_per_mtok == a.output_per_mtok > 0
    with pytest.raises(ValueError, match="unknown RouterBench dataset"):
        data.load_routerbench(tmp_path, "hellaswag")
    with pytest.raises(FileNotFoundError):
        data.load_routerbench(tmp_path, "arc_challenge")


def test_table_rejects_quality_outside_unit_interval():
    with pytest.raises(ValueError, match=r"quality must lie in \[0, 1\]"):
        _table([[0.5, 1.5]], [[1, 2]])
    with pytest.raises(ValueError, match="shape"):
        _table([[0.5, 0.5]], [[1, 2, 3]])


# --------------------------------------------------------------------------------- CLI --


def test_skips_cleanly_without_data(tmp_path):
    missing = tmp_path / "nowhere"
    for cmd in (
        [sys.executable, "-m", "thrifty.eval_router"],
        [sys.executable, "-m", "thrifty", "eval-router"],
    ):
        result = subprocess.run(
            [*cmd, "--data", str(missing), "--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "skipped" in result.stdout and str(missing) in result.stdout


def test_cli_runs_the_baselines_on_fixture_data(tmp_path):
    _mmlu_fixture(tmp_path)
    for i in range(40):  # enough rows for both sides of the split
        with (tmp_path / "routellm_mmlu" / "mmlu_anatomy.csv").open("a") as f:
            f.write(f"Question number {i}?,{i % 2 == 0},{i % 5 != 0}\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "thrifty",
            "eval-router",
            "--data",
            str(tmp_path),
            "--datasets",
            "mmlu",
            "--baselines-only",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "== mmlu" in result.stdout and "oracle" in result.stdout
    summary = json.loads((out / "mmlu.json").read_text())
    assert summary["strong"] == "gpt-4-1106-preview"
    assert summary["methods"]["random"]["apgr"] == pytest.approx(0.5, abs=0.2)
    assert (out / "mmlu.png").stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "-m", "thrifty.eval_router", "--data", str(tmp_path), "--datasets", "x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "unknown datasets" in bad.stderr


@pytest.mark.skipif(not hasattr(thrifty, "Router"), reason="thrifty.Router is not in this build")
def test_router_scorer_replays_router_route():
    from thrifty import eval_router

    rng = np.random.default_rng(0)
    topics = ["integral of x squared", "capital of France", "sort a list in python", "poem"]
    topic = [(i // 2) % 4 for i in range(80)]  # even rows fit, odd rows score: both see all
    prompts = [f"{topics[t]} variant {i}" for i, t in enumerate(topic)]
    # The cheap model is right on the first two topics only; the dear one everywhere.
    q = np.stack([[1.0 if t < 2 else 0.0 for t in topic], np.ones(80)], axis=1)
    table = _table(q, np.tile([1e-4, 1e-2], (80, 1)), prompts=prompts)
    table.output_tokens = rng.integers(1, 50, size=(80, 2)).astype(float)
    scorer = eval_router.RouterScorer(table, "knn", thrifty.HashingEmbedder(), "full")
    scorer.fit(table.subset(np.arange(0, 80, 2)))
    held = [prompts[i] for i in range(1, 80, 2)]
    pq, ec = scorer.score(held)
    assert pq.shape == ec.shape == (40, 2) and np.all(ec > 0)
    # Learned: the cheap model is predicted better on its own topics than elsewhere.
    own = np.array([topic[i] < 2 for i in range(1, 80, 2)])
    assert pq[own, 0].mean() > pq[~own, 0].mean() + 0.2
    assert scorer.route_agreement(held, pq, ec, [0.3, 0.6, 0.9]) == 1.0
