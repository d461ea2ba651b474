"""thrifty.replay(..., ledger=...): the policy's calls recorded into a thrifty.Ledger."""

import json
from pathlib import Path

import pytest

import thrifty

DAY = 86400.0
T0 = 20 * DAY  # midnight UTC


def call(ts, question, tags, model="gpt-6.2-sol", prompt=1000, output=100):
    return {
        "id": f"{question}@{ts}",
        "ts": ts,
        "namespace": "app1",
        "tags": tags,
        "request": {"model": model, "messages": [{"role": "user", "content": question}]},
        "response": {
            "text": "...",
            "provider": "openai",
            "usage": {"prompt_tokens": prompt, "completion_tokens": output},
        },
    }


@pytest.fixture
def trace(tmp_path):
    rows = []
    for i in range(6):  # acme: one call an hour
        rows.append(
            call(T0 + 3600 * i, f"acme question {i}", {"customer": "acme", "feature": "search"})
        )
    for i in range(3):
        rows.append(
            call(T0 + 3600 * i + 60, f"zeta question {i}", {"customer": "zeta", "feature": "chat"})
        )
    rows.append(call(T0 + 7 * 3600, "acme question 0", {"customer": "acme", "feature": "search"}))
    rows.sort(key=lambda r: r["ts"])
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def replay(trace, ledger):
    return thrifty.replay(
        trace, routing="keep", semantic=False, prefix_cache=False, threads=1, ledger=ledger
    )


def test_spend_by_tag_matches_the_policy_cost(trace):
    report = replay(trace, True)
    assert isinstance(report.ledger, thrifty.Ledger)
    spend = report.summary()["spend"]
    cost = report.data["cost_usd"]
    assert cost > 0
    assert spend["total_usd"] == pytest.approx(cost, abs=1e-8)
    assert spend["calls"] == 10
    for key in ("customer", "feature", "namespace"):
        total = sum(v["cost_usd"] for v in spend["by_tag"][key].values())
        assert total == pytest.approx(cost, abs=1e-8), key
    assert sum(v["cost_usd"] for v in spend["by_model"].values()) == pytest.approx(cost, abs=1e-8)
    acme = spend["by_tag"]["customer"]["acme"]
    assert acme["calls"] == 7
    assert spend["by_tag"]["customer"]["zeta"]["calls"] == 3
    # The repeated acme question is an exact hit: a call of cost 0 that saved its baseline.
    assert spend["cache"]["exact"] == 1
    assert spend["cache"]["miss"] == 9
    assert spend["savings_usd"]["exact_cache"] == pytest.approx(
        report.data["savings_by_lever"]["exact"], abs=1e-8
    )
    assert spend["uncached_input_tokens"] == 9 * 1000
    assert spend["cached_input_tokens"] == 0
    assert spend["uncached_input_cost_usd"] > 0
    frame = report.spend_dataframe(by="tag")
    assert set(frame["value"]) >= {"acme", "zeta", "search", "chat"}
    assert len(report.spend_dataframe(by="model")) == 1
    assert report.summary()["alerts"] == []


def test_budget_alerts_fire_at_trace_time(trace, tmp_path):
    ledger = thrifty.Ledger(thrifty.Catalog.default())
    per_call = replay(trace, True).data["cost_usd"] / 9
    # acme's calls are per_call each, one an hour from T0: 50% after the 3rd, 80% after the
    # 4th, 100% after the 5th call.
    ledger.add_budget("customer", "acme", 4.5 * per_call, period="day")
    ledger.add_budget("customer", "zeta", 100.0, period="day", hard=True)
    report = replay(trace, ledger)
    assert report.ledger is ledger
    alerts = [a for a in report.summary()["alerts"] if a["kind"] == "budget"]
    assert [(a["value"], a["threshold"]) for a in alerts] == [
        ("acme", 0.5),
        ("acme", 0.8),
        ("acme", 1.0),
    ]
    assert [a["ts"] for a in alerts] == [T0 + 3600 * 2, T0 + 3600 * 3, T0 + 3600 * 4]
    assert all(a["period_start"] == T0 for a in alerts)
    html = report.to_html(tmp_path / "r.html")
    text = Path(html).read_text(encoding="utf-8")
    assert "Spend by feature, customer and model" in text
    assert "Alerts that would have fired" in text
    assert "acme" in report.spend_text(keys=("customer",))


def test_no_ledger_by_default(trace):
    report = replay(trace, None)
    assert report.ledger is None
    assert "spend" not in report.summary()
    with pytest.raises(ValueError, match="ledger=True"):
        report.spend_dataframe()


@pytest.mark.parametrize("bad", ["yes", 1, {}, object()])
def test_ledger_of_the_wrong_type(trace, bad):
    with pytest.raises(TypeError, match="ledger must be True, None or a thrifty.Ledger"):
        replay(trace, bad)


def test_engine_rejects_a_non_ledger(trace):
    with pytest.raises(TypeError, match="ledger: expected a thrifty.Ledger"):
        thrifty._core._replay(str(trace), thrifty.Catalog.default(), ledger="x")
