"""End to end: docs/examples/openai_agent_loop.py, with the real openai SDK, against a fake server.

Each test scripts the "model" (fake_openai.FakeOpenAI's brain) and checks both sides: what the
agent run counted, and what the server received -- a refused call must never reach it.
"""

import importlib.util
import json
import sys
from pathlib import Path

import openai
import pytest

import thrifty
from fake_openai import FakeAPIError, FakeOpenAI, Reply, default_usage, tool_call, tool_results

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "openai_agent_loop.py"
MODEL = "gpt-6-luna"
CATALOG = thrifty.Catalog.default()


def _load_example():
    spec = importlib.util.spec_from_file_location("openai_agent_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture
def serve():
    """serve(brain, **kwargs) -> (server, client): a running FakeOpenAI and an SDK client on it."""
    servers = []

    def _serve(brain, **kwargs):
        server = FakeOpenAI(brain, **kwargs).start()
        servers.append(server)
        return server, openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

    yield _serve
    for server in servers:
        server.stop()
        assert not server.errors, f"the fake's brain raised: {server.errors!r}"


def settled_totals(server):
    """(prompt tokens, completion tokens, USD) over every response the server sent."""
    usages = [x.usage for x in server.exchanges if x.status == 200]
    return (
        sum(u["prompt_tokens"] for u in usages),
        sum(u["completion_tokens"] for u in usages),
        sum(CATALOG.cost(MODEL, u) for u in usages),
    )


def assert_nothing_reserved(c):
    assert c["open_reservations"] == 0
    assert c["reserved_input_tokens"] == 0 and c["reserved_output_tokens"] == 0
    assert c["reserved_cost_usd"] == pytest.approx(0.0, abs=1e-15)


def test_model_is_current():
    spec = CATALOG.get(MODEL)
    assert MODEL in CATALOG.names() and not spec.deprecated


# (a) ---------------------------------------------------------------------------------------


def weather_brain(request):
    """Looks the temperature up, converts it, then answers from what the tools returned."""
    results = tool_results(request)
    if not results:
        return tool_call("get_temperature", {"city": "Paris"})
    if len(results) == 1:
        return tool_call(
            "celsius_to_fahrenheit", {"celsius": json.loads(results[0]["content"])["celsius"]}
        )
    return f"It is {json.loads(results[1]['content'])['fahrenheit']} °F in Paris."


def usage_with_cache(request, message):
    """The default usage, with half of every prompt after the first served from cache."""
    usage = default_usage(request, message)
    if len(request["messages"]) > 2:
        usage["cached_tokens"] = usage["prompt_tokens"] // 2
    return usage


def test_two_tool_calls_then_answer_exact_counters(serve):
    server, client = serve(weather_brain, usage=usage_with_cache)
    budget = thrifty.AgentBudget(max_steps=5, max_tool_calls=5, max_cost_usd=0.01, max_seconds=60)

    answer, summary = example.run_agent(client, "Temperature in Paris, in °F?", budget, model=MODEL)

    assert answer == "It is 64.4 °F in Paris."
    assert len(server.requests) == 3
    prompt, completion, usd = settled_totals(server)
    assert prompt > 0 and completion > 0
    assert (summary["steps"], summary["tool_calls"], summary["tool_errors"]) == (3, 2, 0)
    assert (summary["input_tokens"], summary["output_tokens"]) == (prompt, completion)
    assert summary["cost_usd"] == pytest.approx(usd, rel=1e-12)
    # cached tokens were priced as such: cheaper than the same tokens uncached
    uncached = sum(
        CATALOG.cost(MODEL, {**x.usage, "prompt_tokens_details": {"cached_tokens": 0}})
        for x in server.exchanges
    )
    assert usd < uncached
    assert_nothing_reserved(summary)
    assert not summary["stopped"] and not summary["warnings"]

    # What the server saw is a well-formed tool conversation.
    first, second, third = server.requests
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert all(
        r["tools"] == example.TOOLS and r["max_completion_tokens"] == 1024 for r in server.requests
    )
    assert all("tool_choice" not in r for r in server.requests)
    call = second["messages"][2]["tool_calls"][0]
    assert call["function"] == {"name": "get_temperature", "arguments": '{"city": "Paris"}'}
    assert second["messages"][3] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": '{"city": "Paris", "celsius": 18.0}',
    }
    assert [m["role"] for m in third["messages"]][-2:] == ["assistant", "tool"]


def test_parallel_tool_calls_in_one_step(serve):
    def brain(request):
        results = tool_results(request)
        if not results:
            return {
                "tool_calls": [
                    tool_call("get_temperature", {"city": "Paris"})["tool_calls"][0],
                    tool_call("get_temperature", {"city": "Tokyo"})["tool_calls"][0],
                ]
            }
        return " / ".join(r["content"] for r in results)

    server, client = serve(brain)
    answer, summary = example.run_agent(
        client, "Paris and Tokyo?", thrifty.AgentBudget(), model=MODEL
    )
    assert "18.0" in answer and "22.0" in answer
    assert (summary["steps"], summary["tool_calls"]) == (2, 2)
    assert len(server.requests) == 2


# (b) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        thrifty.LoopPolicy(),
        thrifty.LoopPolicy(repeat_warn=2, repeat_refuse=3, repeat_stop=4),
        thrifty.LoopPolicy(repeat_warn=3, repeat_refuse=8, repeat_stop=8),
    ],
    ids=["default", "tight", "no-refuse-step"],
)
def test_runaway_same_call_is_stopped_by_loop_detection(serve, policy):
    server, client = serve(lambda request: tool_call("get_temperature", {"city": "Paris"}))
    ran = []
    functions = {**example.FUNCTIONS, "get_temperature": lambda city: ran.append(city) or {"c": 18}}
    budget = thrifty.AgentBudget(max_steps=100, loop=policy)

    with pytest.warns(thrifty.LoopWarning), pytest.raises(thrifty.LoopDetectedError) as info:
        example.run_agent(client, "Paris?", budget, model=MODEL, functions=functions)

    e = info.value
    assert e.kind == "loop" and e.stopped
    assert isinstance(e, thrifty.AgentLimitError) and isinstance(e, thrifty.Error)
    # One tool call per LLM response: the repeat_stop-th identical call ends the run, so exactly
    # repeat_stop requests were sent. Calls from repeat_refuse on were refused, never run.
    assert len(server.requests) == policy.repeat_stop
    assert len(ran) == policy.repeat_refuse - 1
    c = e.counters
    assert c["steps"] == policy.repeat_stop
    assert c["tool_calls"] == policy.repeat_refuse - 1
    assert c["stopped"]
    assert_nothing_reserved(c)
    # The model was told about each refusal (the run went on until the stop level).
    refused = [
        r
        for r in server.requests
        if tool_results(r) and "Refused" in tool_results(r)[-1]["content"]
    ]
    assert len(refused) == policy.repeat_stop - policy.repeat_refuse


def test_same_error_again_and_again_is_stopped(serve):
    calls = iter(range(1, 100))
    server, client = serve(
        lambda r: tool_call("get_temperature", {"city": f"Atlantis-{next(calls)}"})
    )
    policy = thrifty.LoopPolicy(error_warn=2, error_stop=4)

    with pytest.warns(thrifty.LoopWarning), pytest.raises(thrifty.LoopDetectedError) as info:
        example.run_agent(client, "Atlantis?", thrifty.AgentBudget(loop=policy), model=MODEL)

    assert info.value.stopped
    assert len(server.requests) == policy.error_stop  # differing arguments, the same error
    c = info.value.counters
    assert (c["tool_calls"], c["tool_errors"]) == (policy.error_stop, policy.error_stop)
    assert "no weather station" in tool_results(server.requests[-1])[-1]["content"]


# (c) ---------------------------------------------------------------------------------------


def city_hopper(request):
    """Never answers: looks up one more city each step (all different, so no loop)."""
    cities = ["Paris", "London", "Tokyo", "New York"] * 10
    if request.get("tool_choice") == "none":
        return "Paris 18.0 °C, London 14.5 °C (I stopped there)."
    return tool_call("get_temperature", {"city": cities[len(tool_results(request))]})


def test_max_steps_stops_at_exactly_that_many_calls(serve):
    server, client = serve(city_hopper)
    with pytest.raises(thrifty.StepLimitExceeded) as info:
        example.run_agent(client, "Hop.", thrifty.AgentBudget(max_steps=3), model=MODEL)
    assert info.value.kind == "steps"
    assert len(server.requests) == 3
    c = info.value.counters
    assert (c["steps"], c["tool_calls"]) == (3, 3)
    assert_nothing_reserved(c)


# (d) ---------------------------------------------------------------------------------------


def test_call_that_could_exceed_max_cost_is_never_sent(serve):
    # Every reply is 600 output tokens; each call reserves max_tokens=1000 of output.
    server, client = serve(lambda r: Reply(city_hopper(r), usage={"completion_tokens": 600}))
    spec = CATALOG.get(MODEL)
    max_cost = 0.0009  # call 1: reserves ~$0.00052; call 2: $0.00031 spent + ~$0.00052 reserved
    budget = thrifty.AgentBudget(max_cost_usd=max_cost)

    with pytest.raises(thrifty.BudgetExceededError) as info:
        example.run_agent(client, "Hop.", budget, model=MODEL, max_tokens=1000)

    e = info.value
    assert e.kind == "cost"
    assert len(server.requests) == 2  # the third call was refused before it was sent
    _, _, spent = settled_totals(server)
    c = e.counters
    assert c["steps"] == 2 and c["cost_usd"] == pytest.approx(spent, rel=1e-12)
    assert spent <= max_cost  # never exceeded ...
    assert spent + 1000 * spec.output_per_mtok / 1e6 > max_cost  # ... though call 3 could have
    assert_nothing_reserved(c)


def test_first_call_over_budget_sends_nothing(serve):
    server, client = serve(city_hopper)
    with pytest.raises(thrifty.BudgetExceededError):
        example.run_agent(client, "Hop.", thrifty.AgentBudget(max_cost_usd=1e-5), model=MODEL)
    assert server.requests == []


# (e) ---------------------------------------------------------------------------------------


def test_finalize_asks_for_an_answer_without_tools(serve):
    server, client = serve(city_hopper)
    budget = thrifty.AgentBudget(max_steps=2, on_limit="finalize")

    answer, summary = example.run_agent(client, "Hop.", budget, model=MODEL)

    assert answer == "Paris 18.0 °C, London 14.5 °C (I stopped there)."
    assert len(server.requests) == 3  # two steps, then the one final call
    last = server.requests[-1]
    assert last["tool_choice"] == "none"
    assert last["messages"][-1] == {"role": "user", "content": example.FINALIZE}
    assert all("tool_choice" not in r for r in server.requests[:-1])
    assert (summary["steps"], summary["tool_calls"]) == (3, 2)
    assert summary["input_tokens"] == settled_totals(server)[0]
    assert_nothing_reserved(summary)


def test_finalize_when_the_tool_budget_is_spent(serve):
    server, client = serve(city_hopper)
    budget = thrifty.AgentBudget(max_tool_calls=1, on_limit="finalize")

    answer, summary = example.run_agent(client, "Hop.", budget, model=MODEL)

    assert answer.startswith("Paris 18.0")
    assert len(server.requests) == 3
    assert tool_results(server.requests[2])[-1]["content"].startswith("Not run")
    assert server.requests[2]["tool_choice"] == "none"
    assert summary["tool_calls"] == 1


def test_raise_mode_max_tool_calls(serve):
    server, client = serve(city_hopper)
    with pytest.raises(thrifty.StepLimitExceeded) as info:
        example.run_agent(client, "Hop.", thrifty.AgentBudget(max_tool_calls=2), model=MODEL)
    assert info.value.kind == "tool_calls"
    assert len(server.requests) == 3  # the third response's tool call was refused


# nesting and failures ----------------------------------------------------------------------


def test_sub_agent_counts_against_its_parent(serve):
    server, client = serve(weather_brain)
    with thrifty.agent_run(thrifty.AgentBudget(max_steps=10)) as parent:
        _, inner = example.run_agent(client, "Paris?", thrifty.AgentBudget(), model=MODEL)
        outer = parent.summary()
    for key in ("steps", "tool_calls", "input_tokens", "output_tokens"):
        assert outer[key] == inner[key]
    assert outer["cost_usd"] == pytest.approx(inner["cost_usd"], rel=1e-12)


def test_parent_limit_stops_the_sub_agent(serve):
    server, client = serve(city_hopper)
    parent = thrifty.agent_run(thrifty.AgentBudget(max_steps=2))
    with parent, pytest.raises(thrifty.StepLimitExceeded):
        example.run_agent(client, "Hop.", thrifty.AgentBudget(max_steps=50), model=MODEL)
    assert len(server.requests) == 2


def test_failed_call_releases_its_reservation(serve):
    def brain(request):
        if tool_results(request):
            raise FakeAPIError(503, "overloaded", "server_error")
        return tool_call("get_temperature", {"city": "Paris"})

    server, client = serve(brain)
    with thrifty.agent_run(thrifty.AgentBudget(max_cost_usd=0.01)) as parent:
        with pytest.raises(openai.InternalServerError):
            example.run_agent(client, "Paris?", thrifty.AgentBudget(), model=MODEL)
        c = parent.summary()
    assert len(server.requests) == 2
    assert c["steps"] == 2  # the failed call still counts as a step ...
    assert_nothing_reserved(c)  # ... but its reservation was released
    assert c["cost_usd"] == pytest.approx(settled_totals(server)[2], rel=1e-12)
