"""thrifty.wrap routing: model="auto" across an OpenAI and an Anthropic client, with request and
response translation; router failure falls back; routing savings are counted."""

import json
from dataclasses import dataclass, field

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import thrifty
from fake_llm_server import Answer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@dataclass
class Decision:
    model: str
    predicted_quality: dict = field(default_factory=dict)
    expected_cost: dict = field(default_factory=dict)
    reason: str = "test double"


class StubRouter:
    """Implements the interface thrifty.wrap uses: route(request, quality_threshold=None)."""

    def __init__(self, model, qualities=None, costs=None, fail=False):
        self.model, self.fail, self.calls = model, fail, []
        self.qualities = qualities or {model: 0.9, "gpt-6.2-astra": 0.95}
        self.costs = costs or {}

    def route(self, request, quality_threshold=None):
        self.calls.append((request, quality_threshold))
        if self.fail:
            raise RuntimeError("router exploded")
        return Decision(self.model, self.qualities, self.costs)


@pytest.fixture
def clients(server):
    return {
        "openai": openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0),
        "anthropic": anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0),
    }


def test_auto_routes_openai_call_to_anthropic_with_translation(server, clients):
    server.brain = lambda api, request: Answer(
        text="Checking.", tool_calls=[("get_weather", {"city": "Paris"})]
    )
    router = StubRouter("claude-haiku-5-5")
    # assemble=False: the translation itself, without cache breakpoints on top.
    client = thrifty.wrap(clients, router=router, cache=thrifty.ExactCache(), assemble=False)
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    response = client.chat.completions.create(
        model="auto", messages=messages, tools=TOOLS, tool_choice="auto"
    )
    assert isinstance(response, ChatCompletion)
    assert server.count("messages") == 1 and server.count("chat") == 0
    sent = server.bodies("messages")[0]
    assert sent["model"] == "claude-haiku-5-5"
    assert sent["system"] == "You are terse."
    assert sent["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert sent["tool_choice"] == {"type": "auto"}
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    outcome = thrifty.last_call()
    assert outcome.model == "claude-haiku-5-5" and outcome.provider == "anthropic"
    assert outcome.translated and outcome.decision.model == "claude-haiku-5-5"
    assert outcome.savings["routing"] > 0  # against gpt-6.2-astra, the best candidate
    # The tool result goes back translated too.
    followup = [
        *messages,
        choice.message,
        {"role": "tool", "tool_call_id": call.id, "content": "18 C"},
    ]
    server.brain = lambda api, request: "It is 18 C."
    final = client.chat.completions.create(model="auto", messages=followup, tools=TOOLS)
    assert final.choices[0].message.content == "It is 18 C."
    sent = server.bodies("messages")[1]["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"][-1]["type"] == "tool_use"
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}],
    }
    # Same request again: an exact hit, not routed at all.
    client.chat.completions.create(model="auto", messages=followup, tools=TOOLS)
    assert server.count() == 2 and len(router.calls) == 2
    assert client.thrifty_stats()["routed"] == 2


def test_auto_routes_anthropic_call_to_openai(server, clients):
    client = thrifty.wrap(clients, router=StubRouter("gpt-6-luna"))
    response = client.messages.create(
        model="auto",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
    )
    assert isinstance(response, Message)
    assert response.content[0].text.startswith("You said: Hi there")
    assert response.stop_reason == "end_turn"
    sent = server.bodies("chat")[0]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 100
    assert response.usage.input_tokens > 0


def test_translated_stream_is_delivered_as_sdk_chunks(server, clients):
    client = thrifty.wrap(clients, router=StubRouter("claude-haiku-5-5"))
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "stream it"}], stream=True
        )
    )
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("You said: stream it")
    assert "stream" not in server.bodies("messages")[0]


def test_router_choice_not_served_falls_to_cheapest_served_candidate(server, clients):
    router = StubRouter(
        "gemini-2.5-flash",
        qualities={"gemini-2.5-flash": 0.9, "gpt-6-luna": 0.85, "claude-haiku-5-5": 0.88},
        costs={"gemini-2.5-flash": 0.0001, "gpt-6-luna": 0.0002, "claude-haiku-5-5": 0.001},
    )
    client = thrifty.wrap(clients, router=router)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert thrifty.last_call().model == "gpt-6-luna"
    assert server.count("chat") == 1


def test_router_failure_goes_to_the_fallback_model(server, clients):
    client = thrifty.wrap(
        clients, router=StubRouter("x", fail=True), fallback_model="claude-haiku-5-5"
    )
    with pytest.warns(thrifty.DegradedWarning, match="router exploded"):
        response = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}]
        )
    assert isinstance(response, ChatCompletion)
    assert server.bodies("messages")[0]["model"] == "claude-haiku-5-5"
    assert client.thrifty_stats()["failures"]["router"] == 1


def test_auto_without_router_uses_the_policy_fallback(server, clients):
    client = thrifty.wrap(clients["openai"])
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert server.bodies("chat")[0]["model"] == "gpt-6-luna"  # routing.fallback_model


def test_explicit_model_skips_routing_but_goes_to_its_provider(server, clients):
    router = StubRouter("gpt-6-luna")
    client = thrifty.wrap(clients, router=router, cache=thrifty.ExactCache())
    client.chat.completions.create(
        model="claude-haiku-5-5", messages=[{"role": "user", "content": "x"}]
    )
    assert router.calls == []
    # An Anthropic model named in an OpenAI-shaped call goes to the Anthropic client.
    assert server.count("messages") == 1 and thrifty.last_call().translated
    client.chat.completions.create(model="gpt-6-luna", messages=[{"role": "user", "content": "x"}])
    assert server.count("chat") == 1
    # A model the catalog does not know stays on the client of the caller's SDK.
    client.chat.completions.create(model="my-finetune", messages=[{"role": "user", "content": "x"}])
    assert server.bodies("chat")[-1]["model"] == "my-finetune"


def test_quality_threshold_reaches_the_router(server, clients):
    router = StubRouter("gpt-6-luna")
    client = thrifty.wrap(clients, router=router, quality_threshold=0.7)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "a"}])
    client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "b"}],
        thrifty={"quality_threshold": 0.9},
    )
    assert [t for _, t in router.calls] == [0.7, 0.9]


def test_untranslatable_requests_are_refused_clearly(server, clients):
    client = thrifty.wrap(clients, router=StubRouter("claude-haiku-5-5"))
    with pytest.raises(thrifty.InvalidArgumentError, match="n=3"):
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}], n=3
        )
    with pytest.raises(thrifty.InvalidArgumentError, match="messages\\[0\\].content\\[0\\]"):
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
        )
    assert server.count() == 0


def test_images_are_translated(server, clients):
    client = thrifty.wrap(clients, router=StubRouter("claude-haiku-5-5"))
    client.chat.completions.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    )
    content = server.bodies("messages")[0]["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"},
    }
    assert content[2]["source"] == {"type": "url", "url": "https://example.com/cat.png"}


def test_mixed_sync_and_async_clients_are_refused(clients, server):
    with pytest.raises(thrifty.InvalidArgumentError, match="mix of sync and async"):
        thrifty.wrap(
            {
                "openai": clients["openai"],
                "anthropic": anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k"),
            }
        )


def _served_catalog():
    """The default catalog's OpenAI and Anthropic models: what the two wrapped clients serve."""
    default = thrifty.Catalog.default()
    models = [
        m for m in default.models() if m.provider in ("openai", "anthropic") and not m.deprecated
    ]
    return thrifty.Catalog(models, policy=default.policy)


def test_with_the_real_router(server, clients):
    catalog = _served_catalog()
    router = thrifty.Router(catalog, predictor="prior")
    client = thrifty.wrap(clients, policy=catalog, router=router, cache=thrifty.ExactCache())
    messages = [{"role": "user", "content": "Say hello to the team in one line."}]
    response = client.chat.completions.create(model="auto", messages=messages)
    assert isinstance(response, ChatCompletion)
    outcome = thrifty.last_call()
    assert outcome.decision is not None and outcome.model == outcome.decision.model
    assert outcome.model in catalog and outcome.route_reason
    assert server.count() == 1
    # Loose bar: a cheap model; strict bar: a pricier one (never cheaper).
    cheap = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        thrifty={"quality_threshold": 0.5},
    )
    cheap_model = thrifty.last_call().model
    strict = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        thrifty={"quality_threshold": 0.94, "cache": "no-cache"},
    )
    strict_model = thrifty.last_call().model
    assert isinstance(cheap, ChatCompletion) and isinstance(strict, ChatCompletion)
    spec = catalog.get
    assert spec(cheap_model).input_per_mtok <= spec(strict_model).input_per_mtok
    assert client.thrifty_stats()["routed"] == 3


def test_with_the_real_prompt_builder_and_prefix_tracker(server, clients):
    catalog = _served_catalog()
    tracker = thrifty.PrefixTracker(catalog)
    router = thrifty.Router(catalog, predictor="prior", tracker=tracker)
    client = thrifty.wrap(clients, policy=catalog, router=router, tracker=tracker)
    system = "You are the support bot of a bookshop. " + " ".join(
        f"Policy {i}: books may be returned within {i + 10} days with a receipt."
        for i in range(300)
    )
    tools = [
        {
            "type": "function",
            "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
        }
        for name in ("zeta_lookup", "alpha_lookup")
    ]
    for question in ("Can I return a book?", "Do you ship abroad?"):
        response = client.messages.create(
            model="claude-haiku-5-5",
            max_tokens=100,
            system=system,
            messages=[{"role": "user", "content": question}],
            tools=[
                {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]}
                for t in tools
            ],
        )
        assert response.content[0].text.startswith("You said")
    sent = server.bodies("messages")
    # Assembled for Anthropic's prompt cache: tools in canonical order, a breakpoint placed.
    assert [t["name"] for t in sent[0]["tools"]] == ["alpha_lookup", "zeta_lookup"]
    assert "cache_control" in json.dumps(sent[0])
    # The tracker saw both prompts: the second shares the long static prefix of the first.
    assert len(tracker) > 0
    prediction = tracker.predict("anthropic", "claude-haiku-5-5", sent[1])
    assert prediction.cached_tokens > 1000
    response = client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "Hi"}],
    )
    assert "prompt_cache_key" in server.bodies("chat")[0]
