import threading
import time
import warnings

import pytest
from openai.types import CompletionUsage

import thrifty

MODEL = "gpt-6-luna"


def usage(prompt=1000, completion=100):
    return {"prompt_tokens": prompt, "completion_tokens": completion}


def test_a_runaway_loop_stops_exactly_at_each_limit():
    cases = [
        (thrifty.AgentBudget(max_steps=5), thrifty.StepLimitExceeded, "steps", 5),
        (
            thrifty.AgentBudget(max_output_tokens=450),
            thrifty.BudgetExceededError,
            "output_tokens",
            4,
        ),
        (
            thrifty.AgentBudget(max_input_tokens=3300, input_margin=0.0),
            thrifty.BudgetExceededError,
            "input_tokens",
            3,
        ),
    ]
    for budget, error, kind, expected_calls in cases:
        sent = 0
        with thrifty.agent_run(budget) as run, pytest.raises(error) as info:
            while True:
                r = run.before_call(MODEL, 1000, 100)
                sent += 1
                run.after_call(MODEL, usage(), r)
        assert sent == expected_calls, kind
        assert info.value.kind == kind
        assert info.value.counters["steps"] == expected_calls
        assert isinstance(info.value, thrifty.AgentLimitError)


def test_cost_limit_refuses_before_sending_and_settles_real_cost():
    catalog = thrifty.Catalog.default()
    spec = catalog.get(MODEL)
    with thrifty.agent_run(thrifty.AgentBudget(max_cost_usd=0.001, input_margin=0.0)) as run:
        r = run.before_call(MODEL, 2000, 500)
        # An input token may be billed as a cache write: the reservation uses the dearest price.
        worst_input = max(
            p
            for p in (
                spec.input_per_mtok,
                spec.cache_write_5m_per_mtok,
                spec.cache_write_1h_per_mtok,
            )
            if p is not None
        )
        expected_reserve = (2000 * worst_input + 500 * spec.output_per_mtok) / 1e6
        assert r.cost_usd == pytest.approx(expected_reserve)
        sdk_usage = CompletionUsage(prompt_tokens=2000, completion_tokens=120, total_tokens=2120)
        cost = run.after_call(MODEL, sdk_usage, r)
        assert cost == pytest.approx(catalog.cost(MODEL, sdk_usage))
        assert run.counters["cost_usd"] == pytest.approx(cost)
        assert run.counters["reserved_cost_usd"] == 0
        with pytest.raises(
            thrifty.BudgetExceededError, match="max_cost_usd=0.001 could be exceeded"
        ) as info:
            for _ in range(100):
                run.after_call(MODEL, usage(2000, 120), run.before_call(MODEL, 2000, 500))
        assert info.value.counters["cost_usd"] <= 0.001


def test_loop_detection_warns_refuses_and_stops():
    with thrifty.agent_run(thrifty.AgentBudget()) as run:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.tool_call("search", {"q": "tents"})
            run.tool_call("search", '{"q": "tents"}')
            run.tool_call("search", {"q": "tents"})
        assert [w.category for w in caught] == [thrifty.LoopWarning]
        assert "3 times" in run.warnings[0]
        with pytest.warns(thrifty.LoopWarning, match="4 times"):
            run.tool_call("search", {"q": "tents"})  # 4th: still a warning
        with pytest.raises(thrifty.LoopDetectedError) as refused:
            run.tool_call("search", {"q": "tents"})
        assert refused.value.stopped is False
        run.tool_call("search", {"q": "boots"})  # other calls still run
        for _ in range(2):
            with pytest.raises(thrifty.LoopDetectedError):
                run.tool_call("search", {"q": "tents"})
        with pytest.raises(thrifty.LoopDetectedError, match="stopping") as stopped:
            run.tool_call("search", {"q": "tents"})
        assert stopped.value.stopped is True
        with pytest.raises(thrifty.LoopDetectedError):
            run.before_call(MODEL, 10, 10)


def test_repeated_tool_errors_stop_the_run():
    with thrifty.agent_run(
        thrifty.AgentBudget(loop=thrifty.LoopPolicy(error_warn=2, error_stop=3))
    ) as run:
        run.tool_error("fetch", "HTTP 503 after 1.2s")
        with pytest.warns(thrifty.LoopWarning):
            run.tool_error("fetch", "HTTP 503 after 2.9s")
        with pytest.raises(thrifty.LoopDetectedError):
            run.tool_error("fetch", "HTTP 503 after 0.4s")
        assert run.summary()["stopped"]


def test_sub_agent_counts_against_parent():
    with thrifty.agent_run(thrifty.AgentBudget(max_steps=3)) as parent:
        with thrifty.agent_run(thrifty.AgentBudget(max_steps=10)) as child:
            assert thrifty.current_run() is child and child.parent is parent
            for _ in range(3):
                child.after_call(MODEL, usage(), child.before_call(MODEL, 100, 100))
            with pytest.raises(thrifty.StepLimitExceeded):
                child.before_call(MODEL, 100, 100)
        assert thrifty.current_run() is parent
        assert parent.counters["steps"] == 3
        assert parent.counters["input_tokens"] == 3000
    assert thrifty.current_run() is None


def test_sixteen_threads_settle_exact_totals():
    with thrifty.agent_run(thrifty.AgentBudget(max_cost_usd=100.0)) as run:

        def worker(i):
            for j in range(200):
                r = run.before_call(MODEL, 1000, 100)
                run.after_call(MODEL, thrifty.Usage(input_tokens=1000 + i, output_tokens=100), r)
                run.tool_call(f"tool{i}", {"j": j})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c = run.counters
        assert c["steps"] == c["tool_calls"] == 16 * 200
        assert c["input_tokens"] == sum(200 * (1000 + i) for i in range(16))
        assert c["open_reservations"] == 0


def test_finalize_mode_grants_one_final_call():
    with thrifty.agent_run(thrifty.AgentBudget(max_steps=2, on_limit="finalize")) as run:
        finals = []
        for _ in range(3):
            r = run.before_call(MODEL, 100, 100)
            finals.append(r.final)
            run.after_call(MODEL, usage(100, 10), r)
        assert finals == [False, False, True]
        with pytest.raises(thrifty.StepLimitExceeded):
            run.before_call(MODEL, 100, 100)


def test_deadline():
    with thrifty.agent_run(thrifty.AgentBudget(max_seconds=0.05)) as run:
        run.before_call(MODEL, 10, 10)
        time.sleep(0.08)
        with pytest.raises(thrifty.DeadlineExceededError) as info:
            run.before_call(MODEL, 10, 10)
        assert isinstance(info.value, TimeoutError) and info.value.kind == "deadline"


def test_budget_aware_threshold():
    with thrifty.agent_run(thrifty.AgentBudget(max_cost_usd=0.001, input_margin=0.0)) as run:
        assert run.adjusted_threshold(0.8) == (0.8, "budget 100% left: threshold kept")
        spec = thrifty.Catalog.default().get(MODEL)
        out = int(0.00085 / spec.output_per_mtok * 1e6)
        run.after_call(MODEL, thrifty.Usage(output_tokens=out), run.before_call(MODEL, 0, out))
        threshold, reason = run.adjusted_threshold(0.8)
        assert threshold == pytest.approx(0.7) and "< 20%" in reason


def test_bad_input_gets_clear_errors():
    with pytest.raises(thrifty.InvalidArgumentError, match="max_steps must be a positive"):
        thrifty.AgentBudget(max_steps=0)
    with pytest.raises(thrifty.InvalidArgumentError, match="max_cost_usd"):
        thrifty.AgentBudget(max_cost_usd=-1)
    with pytest.raises(thrifty.InvalidArgumentError, match="on_limit must be"):
        thrifty.AgentBudget(on_limit="ignore")
    with (
        pytest.raises(TypeError, match="must be a thrifty.AgentBudget"),
        thrifty.agent_run({"max_steps": 3}),
    ):
        pass
    with thrifty.agent_run(thrifty.AgentBudget()) as run:
        with pytest.raises(thrifty.FailedPreconditionError, match="without a matching before_call"):
            run.after_call(MODEL, usage())
        with pytest.raises(thrifty.NotFoundError, match="closest in the catalog"):
            run.before_call("gpt-7-imaginary", 10, 10)
        with pytest.raises(thrifty.NotFoundError):
            run.after_call("gpt-7-imaginary", usage())
        with pytest.raises(thrifty.InvalidArgumentError, match="max_output_tokens must be > 0"):
            run.before_call(MODEL, 10, 0)
    with pytest.raises(thrifty.FailedPreconditionError, match="has ended"):
        run.before_call(MODEL, 10, 10)
