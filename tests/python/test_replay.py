"""thrifty.replay, Report, thrifty.trace, thrifty.synth and the replay CLI."""

import json
import subprocess
from pathlib import Path

import pytest

import thrifty
from conftest import assert_releases_gil
from thrifty import synth, trace


def call(ts, question, model="gpt-6.2-sol", prompt=100, output=50, labels=None, **extra):
    record = {
        "id": f"{question}@{ts}",
        "ts": ts,
        "request": {
            "model": model,
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": question},
            ],
        },
        "response": {
            "text": "...",
            "provider": "openai",
            "usage": {"prompt_tokens": prompt, "completion_tokens": output},
        },
    }
    if labels is not None:
        record["labels"] = labels
    record.update(extra)
    return record


EASY = {
    "gpt-6.2-sol": {"quality": 1.0, "output_tokens": 50},
    "gpt-6-luna": {"quality": 0.9, "output_tokens": 40},
}
HARD = {
    "gpt-6.2-sol": {"quality": 1.0, "output_tokens": 50},
    "gpt-6-luna": {"quality": 0.3, "output_tokens": 40},
}


@pytest.fixture
def hand_trace(tmp_path):
    path = tmp_path / "hand.jsonl"
    trace.write_trace(
        path,
        [
            call(0, "What is 2+2?", labels=EASY),
            call(1, "What is 2+2?", labels=EASY),
            call(2, "Write a proof that there are infinitely many primes.", labels=HARD),
        ],
    )
    return path


@pytest.fixture(scope="module")
def sample_trace(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("synth") / "s.jsonl", n=3000, seed=3)


def test_summary_on_a_hand_computable_trace(hand_trace):
    s = thrifty.replay(hand_trace).summary()
    # gpt-6.2-sol: $2 in / $10 out per 1M; gpt-6-luna: $0.10 / $0.50.
    baseline_one = 100 * 2 / 1e6 + 50 * 10 / 1e6  # 0.0007
    luna = 100 * 0.1 / 1e6 + 40 * 0.5 / 1e6  # 0.00003
    assert s["baseline_cost_usd"] == pytest.approx(3 * baseline_one, rel=1e-12)
    assert s["cost_usd"] == pytest.approx(luna + baseline_one, rel=1e-12)
    levers = s["savings_by_lever"]
    assert levers["exact"] == pytest.approx(baseline_one, rel=1e-12)
    assert levers["routing"] == pytest.approx(baseline_one - luna, rel=1e-12)
    assert levers["semantic"] == 0 and levers["prefix_cache"] == 0
    assert sum(levers.values()) == pytest.approx(s["baseline_cost_usd"] - s["cost_usd"])
    assert (s["exact_hits"], s["semantic_hits"], s["routed_requests"]) == (1, 0, 1)
    assert s["quality_retained"] == pytest.approx((0.9 + 0.9 + 1.0) / 3.0)
    assert s["quality_source"] == "labels"
    assert s["model_mix"] == {"gpt-6-luna": 1, "(exact cache)": 1, "gpt-6.2-sol": 1}


def test_keyword_arguments_switch_levers_off(hand_trace):
    s = thrifty.replay(hand_trace, exact=False, semantic=False, routing="keep").summary()
    assert s["exact_hits"] == 0 and s["routed_requests"] == 0
    assert s["cost_usd"] == pytest.approx(s["baseline_cost_usd"])
    assert thrifty.replay(hand_trace, quality_threshold=0.95).summary()["routed_requests"] == 0


def test_python_router_callable_and_predicted_quality(hand_trace):
    seen = []

    def cheapest(request, prompt_tokens):
        seen.append((request["model"], prompt_tokens))
        return "gpt-6-luna", 0.5

    s = thrifty.replay(hand_trace, router=cheapest, exact=False, semantic=False).summary()
    assert seen == [("gpt-6.2-sol", 100)] * 3
    assert s["routed_requests"] == 3
    assert s["quality_source"] == "labels"  # luna is labelled on every call

    def unknown(request, prompt_tokens):
        return "no-such-model"

    with pytest.raises(thrifty.InvalidArgumentError, match="no-such-model"):
        thrifty.replay(hand_trace, router=unknown)

    def broken(request, prompt_tokens):
        raise ZeroDivisionError("router bug")

    with pytest.raises(ZeroDivisionError, match="router bug"):
        thrifty.replay(hand_trace, router=broken)


def test_trained_router_routes_in_cpp(sample_trace):
    examples = [
        (r["request"], {m: lab["quality"] for m, lab in r["labels"].items()})
        for r in trace.read_trace(sample_trace)
    ][:500]
    router = thrifty.Router(thrifty.Catalog.default(), predictor="prior")
    router.fit(examples)
    report = thrifty.replay(
        sample_trace, router=router, candidate_models=list(synth.LABEL_MODELS), limit=800
    )
    s = report.summary()
    assert report.data["routing"] == "router" and report.data["router"].startswith("router(")
    assert s["routed_requests"] > 0
    assert set(s["model_mix"]) <= set(synth.LABEL_MODELS) | {"(exact cache)", "(semantic cache)"}
    assert 0 < s["quality_retained"] <= 1.2


def test_progress_callback_cancel_and_gil(sample_trace):
    calls = []
    thrifty.replay(sample_trace, progress=lambda *a: calls.append(a) or True, progress_every=500)
    assert calls and calls[-1][1] == calls[-1][2]  # the last call: every byte read
    assert [c[0] for c in calls[:-1]] == sorted(c[0] for c in calls[:-1])
    with pytest.raises(thrifty.InternalError, match="cancelled"):
        thrifty.replay(sample_trace, progress=lambda *a: False, progress_every=100)
    assert_releases_gil(lambda: thrifty.replay(sample_trace, semantic=False), min_ticks=20)


def test_report_outputs(sample_trace, tmp_path):
    report = thrifty.replay(
        sample_trace, semantic_namespaces=["support"], sweep=[0.7, 0.9], bucket_seconds=600
    )
    s = report.summary()
    for key in (
        "baseline_cost_usd",
        "cost_usd",
        "savings_by_lever",
        "exact_hits",
        "semantic_hits",
        "quality_retained",
    ):
        assert key in s
    assert set(s["savings_by_lever"]) == {"exact", "semantic", "routing", "prefix_cache"}
    assert s["requests"] == 3000 and s["semantic_hits"] > 0 and s["exact_hits"] > 0

    frame = report.to_dataframe()
    assert list(frame.columns) == [
        "start",
        "requests",
        "exact_hits",
        "semantic_hits",
        "baseline_cost_usd",
        "cost_usd",
        "savings_usd",
    ]
    assert frame["requests"].sum() == 3000
    assert frame["cost_usd"].sum() == pytest.approx(s["cost_usd"])
    models = report.models_dataframe()
    assert models["baseline_requests"].sum() == 3000

    # A higher threshold costs more and keeps more quality.
    low, high = report.sweep
    assert low["quality_threshold"] == 0.7 and high["cost_usd"] > low["cost_usd"]
    assert high["quality_retained"] > low["quality_retained"]

    import matplotlib.figure

    assert isinstance(report.plot_savings(), matplotlib.figure.Figure)
    assert isinstance(report.plot_cost_quality(), matplotlib.figure.Figure)
    out = report.to_html(tmp_path / "r.html")
    page = Path(out).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert "Savings by lever" in page and "Threshold sweep" in page
    assert json.loads(report.to_json())["requests"] == 3000
    assert 0 < len(report.audit_sample) <= 50
    assert "quality retained" in report.text() and repr(report).startswith("Report(")


def test_semantic_cache_answers_templated_prompts_wrongly(sample_trace):
    everywhere = thrifty.replay(sample_trace).summary()
    support_only = thrifty.replay(sample_trace, semantic_namespaces=["support"]).summary()
    # Math problems that differ only in their numbers look alike to an embedder.
    assert everywhere["semantic_false_hits"] > support_only["semantic_false_hits"]
    assert everywhere["quality_retained"] < support_only["quality_retained"]


def test_semantic_lookahead_gives_the_results_of_looking_up_in_order(sample_trace):
    # Lookups made ahead on the worker threads, corrected on the simulation thread, against
    # every lookup made in trace order (the scopes stay below the HNSW size: exact search).
    keys = ("exact_hits", "semantic_hits", "semantic_false_hits", "cost_usd", "savings_by_lever")
    ahead = thrifty.replay(sample_trace, batch_size=8, max_batches_in_flight=16)
    in_order = thrifty.replay(sample_trace, semantic_lookahead=False)
    assert ahead.data["semantic_lookahead"]["used"] > 100
    assert in_order.data["semantic_lookahead"]["used"] == 0
    assert ahead.data["semantic_hits"] > 100
    for key in keys:
        assert ahead.data[key] == pytest.approx(in_order.data[key]), key
    assert ahead.data["audit_sample"] == in_order.data["audit_sample"]


def test_policy_file_sections(hand_trace, tmp_path):
    import yaml

    source = thrifty.Catalog.default().source
    policy = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    policy["routing"] = {"quality_threshold": 0.95}
    policy["cache"] = {"exact": {"enabled": False}}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    s = thrifty.replay(hand_trace, policy=str(path)).summary()
    assert s["exact_hits"] == 0 and s["routed_requests"] == 0 and s["quality_threshold"] == 0.95
    with pytest.raises(TypeError, match="policy"):
        thrifty.replay(hand_trace, policy=42)


# -------------------------------------------------------------------------------- trace I/O --


def test_trace_errors_name_file_line_and_field(write):
    good = json.dumps(call(0, "q"))
    cases = {
        "{not json": "malformed JSON",
        "[1, 2]": "a trace line must be a JSON object",
        '{"request": {}}': "ts: missing",
        '{"ts": -1, "request": {}}': "ts: expected a finite number",
        '{"ts": 1, "request": {"messages": []}}': "request.model: missing",
        '{"ts": 1, "request": {"model": "m"}}': "request.messages: missing",
        '{"ts": 1, "request": {"model": "m", "messages": []}, "labels": {"m": {"quality": 1.5}}}': (
            r"labels.m.quality: expected a number in \[0, 1\]"
        ),
    }
    for i, (line, message) in enumerate(cases.items()):
        path = write(f"t{i}.jsonl", good + "\n\n" + line + "\n")
        with pytest.raises(thrifty.InvalidArgumentError, match=rf"t{i}.jsonl:3: .*{message}"):
            list(trace.read_trace(path))
        with pytest.raises(thrifty.InvalidArgumentError, match=rf"t{i}.jsonl:3: .*{message}"):
            thrifty.replay(path)
    skipped = thrifty.replay(path, skip_invalid=True)
    assert skipped.data["invalid_lines"] == 1 and skipped.data["requests"] == 1
    with pytest.raises(thrifty.NotFoundError):
        list(trace.read_trace(write("x", "").parent / "missing.jsonl"))
    with pytest.raises(thrifty.NotFoundError):
        thrifty.replay("/nonexistent/trace.jsonl")


def test_write_read_roundtrip_and_record_from_call(tmp_path):
    path = tmp_path / "t.jsonl"
    records = [call(i, f"q{i}", labels=EASY) for i in range(5)]
    assert trace.write_trace(path, records) == 5
    assert list(trace.read_trace(path)) == records
    with pytest.raises(thrifty.InvalidArgumentError, match="request"):
        trace.write_trace(tmp_path / "bad.jsonl", [{"ts": 1}])

    response = {
        "id": "chatcmpl-1",
        "model": "gpt-6.2-sol-2026",
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    record = trace.record_from_call(
        {"model": "gpt-6.2-sol", "messages": [], "api_key": "sk-secret"}, response, ts=3.0
    )
    assert "api_key" not in record["request"] and record["response"]["text"] == "hi"
    assert record["response"]["provider"] == "openai"
    anthropic = trace.record_from_call(
        {"model": "claude-haiku-5-5", "system": "s", "messages": []},
        {"content": [{"type": "text", "text": "yo"}], "usage": {"input_tokens": 1}},
        ts=1.0,
    )
    assert anthropic["response"]["provider"] == "anthropic"
    assert anthropic["response"]["text"] == "yo"


def test_import_openai_logs(tmp_path, write):
    req = {"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}]}
    resp = {
        "id": "c1",
        "created": 1700000100,
        "model": "gpt-6-luna",
        "choices": [{"message": {"content": "hello"}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 2},
    }
    pairs = write(
        "pairs.jsonl",
        "\n".join(
            [
                json.dumps({"request": req, "response": resp}),
                json.dumps({"request": req, "response": dict(resp, created=1700000000)}),
                json.dumps({"request": req, "response": {"error": {"message": "rate limit"}}}),
            ]
        ),
    )
    out = tmp_path / "out.jsonl"
    assert trace.import_openai_logs(pairs, out) == 2
    records = list(trace.read_trace(out))
    assert [r["ts"] for r in records] == [1700000000.0, 1700000100.0]  # sorted by time
    assert records[0]["response"]["usage"]["prompt_tokens"] == 8
    assert thrifty.replay(out).summary()["exact_hits"] == 1

    batch_in = write(
        "in.jsonl",
        json.dumps(
            {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": req}
        ),
    )
    batch_out = write(
        "bo.jsonl",
        json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": resp}})
        + "\n"
        + json.dumps({"custom_id": "b", "response": {"status_code": 200, "body": resp}}),
    )
    with pytest.raises(thrifty.InvalidArgumentError, match="bo.jsonl:2: custom_id 'b'"):
        trace.import_openai_logs(batch_out, out, batch_input=batch_in)
    batch_out.write_text(batch_out.read_text().splitlines()[0])
    assert trace.import_openai_logs(batch_out, out, batch_input=batch_in) == 1
    bad = write("bad.jsonl", json.dumps({"request": {"model": "x"}}))
    with pytest.raises(thrifty.InvalidArgumentError, match="bad.jsonl:1: expected a request"):
        trace.import_openai_logs(bad, out)


# ------------------------------------------------------------------------------------ synth --


def test_synth_is_deterministic_by_seed(tmp_path):
    a = synth.generate(tmp_path / "a.jsonl", n=400, seed=11)
    b = synth.generate(tmp_path / "b.jsonl", n=400, seed=11)
    c = synth.generate(tmp_path / "c.jsonl", n=400, seed=12)
    text = Path(a).read_bytes()
    assert text == Path(b).read_bytes() and text != Path(c).read_bytes()
    records = list(trace.read_trace(a))
    assert len(records) == 400
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    assert {r["namespace"] for r in records} == {"support", "assistant", "agent", "code", "tutor"}
    for r in records:
        assert set(r["labels"]) == set(synth.LABEL_MODELS)
    assert any("system" in r["request"] for r in records)  # Anthropic-shaped agent calls
    with pytest.raises(ValueError):
        list(synth.records(n=-1))


def test_synth_quality_depends_on_model_strength_and_difficulty(tmp_path):
    records = list(synth.records(n=3000, seed=5))

    def mean_quality(model, hard):
        qs = [
            r["labels"][model]["quality"]
            for r in records
            if (r["tags"]["difficulty"] > 0.6) == hard
        ]
        return sum(qs) / len(qs)

    assert mean_quality("gpt-6.2-astra", True) > mean_quality("gpt-6-luna", True) + 0.15
    assert mean_quality("gpt-6-luna", False) > mean_quality("gpt-6-luna", True) + 0.2


# -------------------------------------------------------------------------------------- CLI --


def test_cli_replay(thrifty_cli, sample_trace, tmp_path, write):
    html = tmp_path / "out.html"
    out_json = tmp_path / "out.json"
    result = subprocess.run(
        [
            *thrifty_cli,
            "replay",
            str(sample_trace),
            "--report",
            str(html),
            "--json",
            str(out_json),
            "--sweep",
            "0.7,0.9",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "savings by lever" in result.stdout and "exact cache" in result.stdout
    assert "replay" in result.stderr  # the tqdm bar
    assert html.exists() and json.loads(out_json.read_text())["requests"] == 3000

    bad = write("bad.jsonl", '{"ts": 1}\n')
    result = subprocess.run(
        [*thrifty_cli, "replay", str(bad), "--no-progress"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "bad.jsonl:1: request" in result.stderr

    synth_out = tmp_path / "syn.jsonl"
    result = subprocess.run(
        [*thrifty_cli, "synth", str(synth_out), "-n", "50"], capture_output=True, text=True
    )
    assert result.returncode == 0 and len(synth_out.read_text().splitlines()) == 50


def test_prefix_tracker_predicts_prompt_cache_reads(sample_trace):
    sim = thrifty.replay(sample_trace, exact=False, semantic=False, routing="keep", limit=1500)
    tracked = thrifty.replay(
        sample_trace, exact=False, semantic=False, routing="keep", limit=1500, prefix_tracker=True
    )
    assert sim.data["prefix_model"] == "sim" and tracked.data["prefix_model"] == "tracker"
    # The assistant's multi-turn chats re-send a long, stable prefix within the TTL.
    assert tracked.data["cached_prompt_tokens_policy"] > 0
    assert sim.data["cached_prompt_tokens_policy"] > 0
    s = tracked.summary()
    assert sum(s["savings_by_lever"].values()) == pytest.approx(
        s["baseline_cost_usd"] - s["cost_usd"]
    )
