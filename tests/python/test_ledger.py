"""The Ledger's Python contract: types, errors, callbacks, GIL release, DataFrame and files."""

import json
import re
import sys
import threading

import pytest
from openai.types import CompletionUsage

import thrifty
from conftest import assert_releases_gil

MODEL = "gpt-4o-mini"


class Clock:
    def __init__(self, t=1.8e9):
        self.t = t

    def __call__(self):
        return self.t


def test_record_prices_from_the_catalog_and_aggregates():
    ledger = thrifty.Ledger()
    usage = CompletionUsage(prompt_tokens=1200, completion_tokens=300, total_tokens=1500)
    cost = ledger.record(
        MODEL,
        usage,
        tags={"feature": "search", "customer": "acme"},
        latency_s=0.42,
        cache="miss",
        savings={"routing": 0.002},
    )
    assert cost == pytest.approx(thrifty.Catalog.default().cost(MODEL, usage))
    ledger.record("claude-haiku-4-5", {"input_tokens": 10, "output_tokens": 5}, cost_usd=0.5)
    snap = ledger.snapshot()
    assert snap["calls"] == 2
    assert snap["total_cost_usd"] == pytest.approx(cost + 0.5)
    assert snap["by_model"][MODEL]["input_tokens"] == 1200
    assert snap["by_model"][MODEL]["latency_s"]["p50"] == pytest.approx(0.42, rel=0.01)
    assert snap["by_model"]["claude-haiku-4-5"]["output_tokens"] == 5
    assert snap["by_tag"]["feature"]["search"]["cache"]["miss"] == 1
    assert snap["total"]["savings_usd"]["routing"] == pytest.approx(0.002)


def test_bad_input_raises_clear_errors():
    ledger = thrifty.Ledger()
    with pytest.raises(thrifty.NotFoundError, match="cost_usd"):
        ledger.record("no-such-model", {"prompt_tokens": 1, "completion_tokens": 1})
    assert ledger.record("no-such-model", None, cost_usd=0.01) == pytest.approx(0.01)
    with pytest.raises(thrifty.InvalidArgumentError):
        ledger.record(MODEL, {"prompt_tokens": -5, "completion_tokens": 1})
    with pytest.raises(ValueError, match="cost_usd"):
        ledger.record(MODEL, None, cost_usd=-1.0)
    with pytest.raises(ValueError, match="cache"):
        ledger.record(MODEL, None, cost_usd=0.1, cache="warm")
    with pytest.raises(TypeError, match="tags"):
        ledger.record(MODEL, None, tags=["feature"], cost_usd=0.1)
    with pytest.raises(thrifty.InvalidArgumentError, match="limit_usd"):
        ledger.add_budget("customer", "acme", 0)
    with pytest.raises(thrifty.InvalidArgumentError, match="limit_usd"):
        ledger.add_budget("customer", "acme", -3.0)
    with pytest.raises(thrifty.InvalidArgumentError, match="'day', 'month'"):
        ledger.add_budget("customer", "acme", 5.0, period="fortnight")
    with pytest.raises(thrifty.InvalidArgumentError, match="period"):
        ledger.add_budget("customer", "acme", 5.0, period=-60)
    with pytest.raises(TypeError, match="callable"):
        ledger.add_budget("customer", "acme", 5.0, on_alert="print")
    assert thrifty.Ledger(catalog=False).record("x", None, cost_usd=1.0) == 1.0
    with pytest.raises(thrifty.NotFoundError, match="no catalog"):
        thrifty.Ledger(catalog=False).record(MODEL, {"prompt_tokens": 1, "completion_tokens": 1})
    with pytest.raises(ValueError, match="bucket_seconds"):
        thrifty.Ledger(bucket_seconds=0)
    assert ledger.snapshot()["calls"] == 1


def test_budget_alerts_and_hard_refusal():
    clock = Clock()
    alerts = []
    ledger = thrifty.Ledger(clock=clock)
    ledger.add_budget("customer", "acme", 1.0, period="month", on_alert=alerts.append, hard=True)
    for _ in range(8):
        ledger.check({"customer": "acme"}, 0.1)
        ledger.record(MODEL, None, tags={"customer": "acme"}, cost_usd=0.1)
    assert [a["threshold"] for a in alerts] == [0.5, 0.8]
    assert alerts[0]["kind"] == "budget" and "acme" in alerts[0]["message"]
    with pytest.raises(thrifty.BudgetExceededError, match="customer=acme"):
        ledger.check({"customer": "acme"}, 0.5)
    ledger.check({"customer": "someone-else"}, 0.5)
    with ledger.reservation({"customer": "acme"}, 0.15) as r:
        assert ledger.budgets()[0]["reserved_usd"] == pytest.approx(0.15)
        with pytest.raises(thrifty.BudgetExceededError):
            ledger.reserve({"customer": "acme"}, 0.1)
        ledger.settle(r, MODEL, None, tags={"customer": "acme"}, cost_usd=0.12)
    (budget,) = ledger.budgets()
    assert budget["spent_usd"] == pytest.approx(0.92)
    assert budget["reserved_usd"] == 0
    assert budget["period"] == "month"
    # A reservation whose block raised is released.
    with pytest.raises(RuntimeError), ledger.reservation({"customer": "acme"}, 0.05):
        raise RuntimeError("provider down")
    assert ledger.budgets()[0]["reserved_usd"] == 0


def test_hard_budget_holds_under_python_threads():
    ledger = thrifty.Ledger(catalog=False)
    ledger.add_budget("*", None, 2.0, hard=True)
    refused = []

    def worker(seed):
        import random

        rng = random.Random(seed)
        for _ in range(300):
            est = rng.uniform(0.001, 0.05)
            try:
                r = ledger.reserve({"customer": f"c{seed % 3}"}, est)
            except thrifty.BudgetExceededError:
                refused.append(1)
                continue
            ledger.settle(r, "m", None, cost_usd=est * rng.random())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.budgets()[0]["spent_usd"] <= 2.0 + 1e-9
    assert refused


def test_spike_drift_and_anomaly_alerts_reach_callbacks():
    clock = Clock(3600.0 * 500_000)
    seen = []
    ledger = thrifty.Ledger(catalog=False, clock=clock, on_alert=seen.append)
    ledger.add_spike_alert(tag="feature", k=10, min_calls=5)
    ledger.add_drift_alert(window_seconds=3600, points=30, min_calls=5)
    t0 = clock.t
    for hour in range(30):
        spend = 8.0 if hour == 25 else 1.0
        for i in range(10):
            clock.t = t0 + hour * 3600 + i
            model = "a" if hour < 28 else "b"
            ledger.record(model, None, tags={"feature": "f"}, cost_usd=spend / 10)
    kinds = {a["kind"] for a in seen}
    assert {"anomaly", "drift"} <= kinds
    anomaly = next(a for a in seen if a["kind"] == "anomaly")
    assert anomaly["period_start"] == t0 + 25 * 3600
    assert anomaly["observed"] == pytest.approx(8.0)
    found = ledger.anomalies()
    assert {(a["tag"], a["value"]) for a in found} == {("feature", "f"), ("model", "a")}
    ledger.record("a", None, tags={"feature": "f"}, cost_usd=50.0)
    assert ledger.alerts()[-1]["kind"] == "spike"


def test_prometheus_text_is_valid():
    ledger = thrifty.Ledger(catalog=False)
    ledger.record("m", None, tags={"customer": 'quote"back\\slash\nnewline'}, cost_usd=0.5)
    text = ledger.prometheus()
    name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    label_value = r'"(?:[^"\\\n]|\\[\\"n])*"'
    sample = re.compile(
        rf"^({name})(\{{[a-zA-Z_]\w*={label_value}(,[a-zA-Z_]\w*={label_value})*\}})? (\S+)$"
    )
    families = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, fam, kind = line.split(" ")
            families[fam] = kind
            continue
        m = sample.match(line)
        assert m, line
        float(m.group(4).replace("+Inf", "inf"))
        assert any(m.group(1).startswith(f) for f in families), line
    assert families["thrifty_llm_cost_usd_total"] == "counter"
    assert 'value="quote\\"back\\\\slash\\nnewline"' in text


def test_on_record_gives_genai_attributes_and_callback_errors_do_not_break_record(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    ledger = thrifty.Ledger()
    got = []
    ledger.on_record(got.append)
    ledger.on_record(lambda attrs: 1 / 0)  # reported as unraisable, never raised
    ledger.record(
        MODEL,
        {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60},
        },
        tags={"team": "ml"},
    )
    (attrs,) = got
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == 100
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 60
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["thrifty.tag.team"] == "ml"
    assert [type(u.exc_value) for u in unraisable] == [ZeroDivisionError]


def test_jsonl_log_and_save_load(tmp_path):
    clock = Clock()
    ledger = thrifty.Ledger(clock=clock)
    log = tmp_path / "calls.jsonl"
    ledger.log_to(log)
    ledger.add_budget("team", "ml", 10.0)
    for i in range(5):
        ledger.record(MODEL, None, tags={"team": "ml"}, cost_usd=0.5, latency_s=0.1 * (i + 1))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 5 and lines[0]["tags"] == {"team": "ml"}

    state = tmp_path / "ledger.json"
    ledger.save(state)
    restarted = thrifty.Ledger(clock=clock)
    restarted.add_budget("team", "ml", 10.0)
    restarted.load(state)
    assert restarted.snapshot()["by_tag"] == ledger.snapshot()["by_tag"]
    assert restarted.budgets()[0]["spent_usd"] == pytest.approx(2.5)

    state.write_text(state.read_text()[:100])
    with pytest.raises(thrifty.DataLossError):
        restarted.load(state)
    with pytest.raises(OSError):  # DataLossError is an OSError
        restarted.load(state)
    assert restarted.snapshot()["calls"] == 5


def test_to_dataframe():
    pytest.importorskip("pandas")
    ledger = thrifty.Ledger(catalog=False)
    ledger.record("a", None, tags={"feature": "x"}, cost_usd=1.0, savings={"exact_cache": 0.5})
    ledger.record("b", None, tags={"feature": "y"}, cost_usd=2.0, latency_s=1.0)
    by_model = ledger.to_dataframe("model").set_index("model")
    assert by_model.loc["b", "cost_usd"] == pytest.approx(2.0)
    assert by_model.loc["a", "savings_exact_cache_usd"] == pytest.approx(0.5)
    by_tag = ledger.to_dataframe("tag")
    assert set(by_tag["value"]) == {"x", "y"}
    by_time = ledger.to_dataframe("time")
    assert by_time["calls"].sum() == 2
    with pytest.raises(ValueError, match="accepted"):
        ledger.to_dataframe("customer")


def test_record_and_anomalies_release_the_gil():
    ledger = thrifty.Ledger(catalog=False, max_time_buckets=168)
    for hour in range(168):
        for v in range(40):
            ledger.record("m", None, tags={"c": f"v{v}"}, cost_usd=0.01, ts=hour * 3600.0)
    assert_releases_gil(lambda: [ledger.anomalies() for _ in range(3)])


def test_many_threads_give_exact_totals():
    ledger = thrifty.Ledger(catalog=False)

    def worker():
        for _ in range(2000):
            ledger.record("m", {"input_tokens": 3, "output_tokens": 2}, cost_usd=0.001)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = ledger.snapshot()
    assert snap["calls"] == 32000
    assert snap["total"]["input_tokens"] == 96000
    assert round(snap["total_cost_usd"] * 1e9) == 32000 * 1_000_000
