"""thrifty.wrap with the real openai and anthropic SDKs against a local server: caching, types,
per-call options, accounting, errors, failure fallback, traces."""

import json
import warnings

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

import thrifty
from fake_llm_server import Answer, FakeAPIError

USER = [{"role": "user", "content": "What is the capital of France?"}]


def chat(client, content="What is the capital of France?", **kwargs):
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(model="gpt-6-luna", messages=messages, **kwargs)


def message(client, content="What is the capital of France?", **kwargs):
    messages = [{"role": "user", "content": content}]
    return client.messages.create(
        model="claude-haiku-5-5", max_tokens=200, messages=messages, **kwargs
    )


def test_openai_exact_hit_never_reaches_the_server(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    first = chat(client)
    assert isinstance(first, ChatCompletion)
    assert thrifty.last_call().cache == "miss"
    assert thrifty.last_call().cost_usd > 0
    second = chat(client)
    assert isinstance(second, ChatCompletion)
    assert second.model_dump() == first.model_dump()
    assert server.count("chat") == 1
    outcome = thrifty.last_call()
    assert outcome.cache == "exact" and outcome.cost_usd == 0
    assert outcome.savings["exact"] == pytest.approx(client.thrifty_stats()["cost_usd"])
    chat(client, "Another question entirely")
    assert server.count("chat") == 2


def test_anthropic_exact_hit_and_types(server, ant):
    client = thrifty.wrap(ant, cache=thrifty.ExactCache())
    first = message(client)
    assert isinstance(first, Message)
    second = message(client)
    assert isinstance(second, Message) and second.model_dump() == first.model_dump()
    assert server.count("messages") == 1
    stats = client.thrifty_stats()
    assert stats["hits"]["exact"] == 1 and stats["misses"] == 1
    assert stats["savings_usd"]["exact"] == pytest.approx(stats["cost_usd"])


def test_attributes_pass_through(oai, ant):
    client = thrifty.wrap(oai)
    assert client.base_url == oai.base_url
    assert client.models is oai.models
    assert client.chat.completions.with_raw_response is not None
    assert client.unwrapped is oai
    assert thrifty.wrap(ant).messages.count_tokens == ant.messages.count_tokens
    cached = thrifty.wrap(oai, cache=thrifty.ExactCache())
    tuned = cached.with_options(timeout=5.0, max_retries=1)
    assert isinstance(tuned, thrifty.WrappedClient) and tuned.unwrapped.max_retries == 1
    chat(cached)
    chat(tuned)  # the copy shares the cache and the totals
    assert tuned.thrifty_stats()["hits"]["exact"] == 1 == cached.thrifty_stats()["hits"]["exact"]
    with pytest.raises(TypeError, match="already wrapped"):
        thrifty.wrap(client)
    with pytest.raises(TypeError, match="expected an openai.OpenAI"):
        thrifty.wrap(object())


def test_semantic_hit_on_a_paraphrase(server, oai):
    semantic = thrifty.SemanticCache(thrifty.HashingEmbedder(), threshold=0.8)
    client = thrifty.wrap(oai, semantic_cache=semantic)
    chat(client, "What is the capital of France?")
    chat(client, "what is the capital of France")
    assert server.count("chat") == 1
    assert thrifty.last_call().cache == "semantic"
    assert thrifty.last_call().similarity >= 0.8
    # A different context (system prompt) is never answered from another context's entry.
    client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "system", "content": "Answer in French."}, *USER],
    )
    assert server.count("chat") == 2


def test_namespaces_are_isolated(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    chat(client, thrifty={"namespace": "tenant-a"})
    chat(client, thrifty={"namespace": "tenant-b"})
    assert server.count("chat") == 2
    chat(client, thrifty={"namespace": "tenant-a"})
    assert server.count("chat") == 2


def test_cache_modes(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    chat(client, thrifty={"cache": "no-store"})
    chat(client)  # no-store stored nothing: a miss, stored now
    assert server.count("chat") == 2
    chat(client, thrifty={"cache": "no-cache"})
    assert server.count("chat") == 3 and thrifty.last_call().cache == "off"
    chat(client, thrifty={"cache": "refresh"})
    assert server.count("chat") == 4
    chat(client, thrifty={"cache": "no-store"})
    assert server.count("chat") == 4 and thrifty.last_call().cache == "exact"


def test_bad_per_call_options_are_refused_before_sending(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    with pytest.raises(thrifty.InvalidArgumentError, match="unknown option 'mode'"):
        chat(client, thrifty={"mode": "no-cache"})
    with pytest.raises(thrifty.InvalidArgumentError, match="accepted modes"):
        chat(client, thrifty={"cache": "sometimes"})
    with pytest.raises(thrifty.InvalidArgumentError, match="quality_threshold"):
        chat(client, thrifty={"quality_threshold": 2})
    assert server.count() == 0


def test_ttl_expires_entries(server, oai, monkeypatch):
    cache = thrifty.ExactCache()
    client = thrifty.wrap(oai, cache=cache)
    chat(client, thrifty={"ttl": 1e-6})
    import time

    time.sleep(0.01)
    chat(client)
    assert server.count("chat") == 2


def test_provider_errors_reach_the_caller_unchanged_and_are_never_cached(server, oai, ant):
    failures = {"n": 0}

    def brain(api, request):
        if failures["n"] < 1:
            failures["n"] += 1
            raise FakeAPIError(400, "bad request, scripted", "invalid_request_error")
        return "fine"

    server.brain = brain
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    with pytest.raises(openai.BadRequestError, match="scripted"):
        chat(client)
    assert thrifty.last_call().error is not None
    assert chat(client).choices[0].message.content == "fine"
    assert server.count("chat") == 2
    failures["n"] = 0
    aclient = thrifty.wrap(ant, cache=thrifty.ExactCache())
    with pytest.raises(anthropic.BadRequestError):
        message(aclient)
    message(aclient)
    assert server.count("messages") == 2
    assert client.thrifty_stats()["errors"] == 1


def test_tool_calls_round_trip(server, oai):
    server.brain = lambda api, request: Answer(tool_calls=[("get_weather", {"city": "Paris"})])
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    first = chat(client, tools=tools)
    second = chat(client, tools=tools)
    call = second.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert first.model_dump() == second.model_dump()
    assert server.count() == 1


def test_n_greater_than_one_is_cached_whole(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    first = chat(client, n=3)
    second = chat(client, n=3)
    assert len(second.choices) == 3 and first.model_dump() == second.model_dump()
    chat(client, n=2)  # n is part of the key
    assert server.count() == 2


def test_sdk_objects_in_messages_are_keyed(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    first = chat(client)
    history = [*USER, first.choices[0].message, {"role": "user", "content": "And Spain?"}]
    client.chat.completions.create(model="gpt-6-luna", messages=history)
    client.chat.completions.create(model="gpt-6-luna", messages=history)
    assert server.count() == 2


def test_accounting_prefix_cache_savings(server, oai):
    server.cached_tokens = lambda api, request: 5
    client = thrifty.wrap(oai)
    response = chat(client)
    outcome = thrifty.last_call()
    assert outcome.usage.cached_input_tokens == 5
    assert outcome.usage.input_tokens == response.usage.prompt_tokens - 5
    catalog = thrifty.Catalog.default()
    assert outcome.cost_usd == pytest.approx(catalog.cost("gpt-6-luna", outcome.usage))
    assert outcome.savings["prefix_cache"] > 0
    stats = client.thrifty_stats()
    assert stats["usage"]["cached_input_tokens"] == 5
    assert stats["savings_usd"]["prefix_cache"] == pytest.approx(outcome.savings["prefix_cache"])


def test_on_call_callback_and_tags(server, oai):
    seen = []
    client = thrifty.wrap(oai, cache=thrifty.ExactCache(), on_call=seen.append)
    chat(client, thrifty={"tags": {"team": "search"}})
    chat(client, thrifty={"tags": {"team": "search"}})
    assert [o.cache for o in seen] == ["miss", "exact"]
    assert seen[0].tags == {"team": "search"}

    def broken(outcome):
        raise RuntimeError("callback bug")

    client = thrifty.wrap(oai, on_call=broken)
    with pytest.warns(thrifty.DegradedWarning, match="on_call"):
        response = chat(client)
    assert isinstance(response, ChatCompletion)


class BrokenCache:
    def get_entry(self, key, namespace=""):
        raise ConnectionError("cache down")

    def put(self, *args, **kwargs):
        raise ConnectionError("cache down")


def test_cache_failure_degrades_to_a_pass_through(server, oai):
    client = thrifty.wrap(oai, cache=BrokenCache())
    with pytest.warns(thrifty.DegradedWarning, match="cache down"):
        response = chat(client)
    assert isinstance(response, ChatCompletion)
    assert client.thrifty_stats()["failures"]["cache"] == 2  # lookup and store


def test_embedder_failure_degrades(server, oai):
    def embed(text):
        raise RuntimeError("embedder down")

    semantic = thrifty.SemanticCache(thrifty.CallableEmbedder(embed, dim=8))
    client = thrifty.wrap(oai, semantic_cache=semantic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = chat(client)
    assert isinstance(response, ChatCompletion)
    assert any("embedder down" in str(w.message) for w in caught)
    assert client.thrifty_stats()["failures"]["semantic_cache"] >= 1


def test_record_writes_traces_without_keys(server, oai, ant, tmp_path):
    path = tmp_path / "trace.jsonl"
    client = thrifty.wrap(oai, cache=thrifty.ExactCache(), record=path)
    chat(client, extra_headers={"Authorization": "Bearer sk-header-secret"})
    chat(client)
    aclient = thrifty.wrap(ant, record=path)
    message(aclient)
    text = path.read_text()
    assert "secret" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert set(first) >= {"id", "ts", "namespace", "tags", "request", "response"}
    assert first["request"]["model"] == "gpt-6-luna"
    assert first["request"]["messages"] == USER
    assert first["response"]["text"].startswith("You said")
    assert first["response"]["usage"]["prompt_tokens"] > 0
    assert first["response"]["provider"] == "openai"
    assert lines[1]["thrifty"]["cache"] == "exact"
    assert lines[2]["response"]["provider"] == "anthropic"
    assert lines[2]["response"]["usage"]["input_tokens"] > 0
    client.responses.create(model="gpt-6-luna", input="Hello", instructions="Be kind.")
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["request"]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hello"},
    ]
    try:  # the replay branch's reader, when it is installed, accepts every line
        from thrifty.trace import read_trace
    except ImportError:
        return
    assert len(list(read_trace(path))) == 4


def test_agent_run_reserves_and_settles(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    with thrifty.agent_run(thrifty.AgentBudget(max_steps=3)) as run:
        chat(client, max_tokens=50)
        chat(client, max_tokens=50)  # a hit still counts as a step
        counters = run.counters
        assert counters["steps"] == 2
        assert counters["cost_usd"] == pytest.approx(client.thrifty_stats()["cost_usd"])
        chat(client, "third", max_tokens=50)
        with pytest.raises(thrifty.AgentLimitError):
            chat(client, "fourth", max_tokens=50)
    assert server.count() == 2


def test_client_budget_refuses_before_sending(server, oai):
    client = thrifty.wrap(oai, budget=thrifty.AgentBudget(max_cost_usd=1e-9))
    with pytest.raises(thrifty.BudgetExceededError):
        chat(client, max_tokens=1000)
    assert server.count() == 0


class RecordingLedger:
    def __init__(self, refuse=False):
        self.records, self.checks, self.refuse = [], [], refuse

    def record(
        self, model, usage, tags=None, cost_usd=None, latency_s=None, cache=None, savings=None
    ):
        self.records.append((model, usage, tags, cost_usd, cache, savings))

    def check(self, tags, estimated_cost_usd):
        self.checks.append((tags, estimated_cost_usd))
        if self.refuse:
            raise thrifty.BudgetExceededError("ledger budget exceeded")


def test_ledger_records_and_checks(server, oai):
    ledger = RecordingLedger()
    client = thrifty.wrap(oai, cache=thrifty.ExactCache(), ledger=ledger)
    chat(client, thrifty={"tags": {"team": "a"}})
    chat(client, thrifty={"tags": {"team": "a"}})
    assert len(ledger.checks) == 1 and ledger.checks[0][0] == {"team": "a"}
    assert [r[4] for r in ledger.records] == ["miss", "exact"]
    assert ledger.records[1][5]["exact"] == pytest.approx(ledger.records[0][3])
    assert ledger.records[0][3] > 0 and ledger.records[1][3] == 0
    refusing = thrifty.wrap(oai, ledger=RecordingLedger(refuse=True))
    with pytest.raises(thrifty.BudgetExceededError):
        chat(refusing, "new question")
    assert server.count() == 1


def test_with_the_real_ledger(server, oai):
    ledger = thrifty.Ledger()
    client = thrifty.wrap(oai, cache=thrifty.ExactCache(), ledger=ledger)
    chat(client, thrifty={"tags": {"team": "a"}})
    chat(client, thrifty={"tags": {"team": "a"}})
    snapshot = ledger.snapshot()
    assert snapshot["by_model"]["gpt-6-luna"]["calls"] == 2
    assert snapshot["total_cost_usd"] == pytest.approx(client.thrifty_stats()["cost_usd"])
    assert snapshot["by_tag"]["team"]["a"]["cache"]["exact"] == 1
    ledger.add_budget("team", "b", limit_usd=1e-9, hard=True)
    with pytest.raises(thrifty.BudgetExceededError):
        chat(client, "new", thrifty={"tags": {"team": "b"}})
    assert server.count() == 1


def test_refresh_stores_into_the_semantic_cache_too(server, oai):
    semantic = thrifty.SemanticCache(thrifty.HashingEmbedder(), threshold=0.8)
    client = thrifty.wrap(oai, semantic_cache=semantic)
    chat(client, "What is the capital of France?", thrifty={"cache": "refresh"})
    chat(client, "what is the capital of France")
    assert server.count() == 1 and thrifty.last_call().cache == "semantic"


class StubPlan:
    def __init__(self, request):
        self.request = {**request, "prompt_cache_key": "thrifty-test"}


class StubBuilder:
    """The interface of thrifty.PromptBuilder that wrap uses: from_request(...).build()."""

    calls = []
    fail = False

    def __init__(self, provider, model, request):
        self.args = (provider, model, request)

    @classmethod
    def from_request(cls, provider, model, request, catalog=None):
        cls.calls.append((provider, model))
        if cls.fail:
            raise RuntimeError("builder bug")
        return cls(provider, model, request)

    def build(self, api=None):
        assert api == "chat.completions"
        return StubPlan(self.args[2])


class StubTracker:
    def __init__(self):
        self.observed = []

    def observe(self, provider, model, request, usage, now=None):
        self.observed.append((provider, model, request, usage))


def test_prompt_assembly_and_tracker_see_the_request_sent(server, oai, monkeypatch):
    monkeypatch.setattr(thrifty, "PromptBuilder", StubBuilder, raising=False)
    StubBuilder.calls, StubBuilder.fail = [], False
    tracker = StubTracker()
    client = thrifty.wrap(oai, cache=thrifty.ExactCache(), tracker=tracker)
    chat(client)
    chat(client)
    assert StubBuilder.calls == [("openai", "gpt-6-luna")]  # the hit was not assembled
    assert server.bodies("chat")[0]["prompt_cache_key"] == "thrifty-test"
    provider, model, request, usage = tracker.observed[0]
    assert (provider, model) == ("openai", "gpt-6-luna") and len(tracker.observed) == 1
    assert request["prompt_cache_key"] == "thrifty-test"
    assert usage.input_tokens > 0
    StubBuilder.fail = True
    with pytest.warns(thrifty.DegradedWarning, match="builder bug"):
        chat(client, "something new")
    assert "prompt_cache_key" not in server.bodies("chat")[1]
    assert client.thrifty_stats()["failures"]["prompt"] == 1
    plain = thrifty.wrap(oai, assemble=False)
    chat(plain, "unassembled")
    assert "prompt_cache_key" not in server.bodies("chat")[2]
