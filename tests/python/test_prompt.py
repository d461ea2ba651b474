"""PromptBuilder, PrefixTracker and the provider prompt-cache rules (binding contract + SDKs)."""

import json

import anthropic
import openai
import pytest

import thrifty
from wire_server import WireServer

SONNET = "claude-sonnet-5-5"
HAIKU = "claude-haiku-4-5"
GPT = "gpt-6.1-terra"


def words(n, seed="w"):
    return " ".join(f"{seed}{i % 97}" for i in range(n))


SYSTEM = "You are a support agent for Acme.\n" + words(3000)
TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the knowledge base",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_ticket",
            "description": "Open a ticket",
            "parameters": {"properties": {"title": {"type": "string"}}, "type": "object"},
        },
    },
]
TOOLS_ANTHROPIC = [
    {
        "name": t["function"]["name"],
        "description": t["function"]["description"],
        "input_schema": t["function"]["parameters"],
    }
    for t in TOOLS_OPENAI
]


def history(turns):
    out = []
    for t in range(turns):
        out.append({"role": "user", "content": f"question {t}"})
        out.append({"role": "assistant", "content": f"answer {t} " + words(30, "a")})
    return out


def anthropic_plan(turns=2, tools=TOOLS_ANTHROPIC, **options):
    return (
        thrifty.PromptBuilder("anthropic", SONNET, **options)
        .add_tools(tools)
        .add_system(SYSTEM)
        .add_history(history(turns))
        .add_user(f"question {turns}")
        .build()
    )


# --- provider rules in the catalog -------------------------------------------------------


def test_default_catalog_has_provider_rules_read_on_a_date():
    catalog = thrifty.Catalog.default()
    rules = {r.provider: r for r in catalog.providers()}
    assert {"openai", "anthropic", "google", "deepseek"} <= set(rules)
    a = catalog.provider_rules("anthropic")
    assert a.mode == "explicit" and a.max_breakpoints == 4 and a.lookback_blocks == 20
    assert a.min_tokens_for("claude-haiku-4-5") == 4096
    assert a.min_tokens_for("claude-fable-5-1") == 512
    assert a.ttl_seconds("1h") == 3600
    o = catalog.provider_rules("openai")
    assert o.mode == "automatic" and o.block_tokens == 128 and o.cache_key_rpm == 15
    assert o.cached_from_matched(GPT, 1300) == 1280
    assert catalog.provider_rules("gemini").provider == "google"  # alias
    assert catalog.provider_rules("mistral").mode == "none"
    for r in rules.values():
        assert r.read_on == "2026-11-22" and r.source.startswith("https://")


def test_unknown_provider_rules_is_a_key_error():
    with pytest.raises(KeyError, match="providers with prompt-cache rules: .*anthropic"):
        thrifty.Catalog.default().provider_rules("nope")


def test_policy_file_provider_errors_name_file_and_line(write):
    base = (
        "models:\n"
        "  - {name: m, provider: openai, input_per_mtok: 1, output_per_mtok: 2}\n"
        "providers:\n"
        "  openai:\n"
        "    mode: automatic\n"
        "    min_tokens:\n"
        "      - {models: ['*'], tokens: 1024}\n"
    )
    path = write("p.yaml", base + "    ttls: [{name: x, seconds: 60}]\n    block_tokns: 128\n")
    with pytest.raises(
        thrifty.InvalidArgumentError, match=r"p.yaml:9: .*unknown field 'block_tokns'.*block_tokens"
    ):
        thrifty.Catalog.from_yaml(path)
    path = write(
        "q.yaml", base + "    ttls: [{name: x, seconds: -5}]\n    source: s\n    read_on: d\n"
    )
    with pytest.raises(thrifty.InvalidArgumentError, match=r"q.yaml:8: providers.openai.ttls\[0\]"):
        thrifty.Catalog.from_yaml(path)
    ok = thrifty.Catalog.from_yaml(
        write(
            "r.yaml", base + "    ttls: [{name: x, seconds: 60}]\n    source: s\n    read_on: d\n"
        )
    )
    assert [r.provider for r in ok.providers()] == ["openai"]


def test_catalog_without_providers_section_takes_the_shipped_rules():
    catalog = thrifty.Catalog([thrifty.ModelSpec("m", "openai", 1.0, 2.0)])
    assert catalog.provider_rules("openai").block_tokens == 128


# --- PromptBuilder -----------------------------------------------------------------------


def test_anthropic_plan_places_breakpoints_and_sorts_tools():
    plan = anthropic_plan()
    req = plan.request
    assert plan.api == "messages"
    assert [t["name"] for t in req["tools"]] == ["create_ticket", "search"]
    assert req["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert req["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [b.why for b in plan.breakpoints] == ["static_prefix", "conversation_tail"]
    assert plan.cacheable_tokens == plan.breakpoints[-1].tokens > plan.static_tokens > 3000
    assert req["max_tokens"] == 1024 and req["model"] == SONNET
    # Whatever order the tools came in, the static prefix is byte-identical.
    again = anthropic_plan(turns=3, tools=list(reversed(TOOLS_ANTHROPIC)))
    assert json.dumps(again.request["tools"]) == json.dumps(req["tools"])
    assert json.dumps(again.request["system"]) == json.dumps(req["system"])


def test_segments_render_static_first_whatever_the_call_order():
    plan = (
        thrifty.PromptBuilder("openai", GPT)
        .add_history(history(1))
        .add_documents(["doc one " + words(50)])
        .add_system("sys")
        .add_tools(TOOLS_OPENAI)
        .add_user("q")
        .build()
    )
    msgs = plan.request["messages"]
    assert msgs[0]["role"] == "system"
    assert [p["text"][:8] for p in msgs[0]["content"]] == ["sys", "doc one "]
    assert msgs[-1] == {"content": "q", "role": "user"}


def test_openai_plan_sets_a_stable_cache_key_and_can_shard_it():
    def plan(turns, **options):
        return (
            thrifty.PromptBuilder("openai", GPT, **options)
            .add_tools(TOOLS_OPENAI)
            .add_system(SYSTEM)
            .add_history(history(turns))
            .add_user("next")
            .build()
        )

    a, b = plan(1), plan(4)
    assert a.cache_key and a.cache_key == b.cache_key == a.request["prompt_cache_key"]
    assert a.cacheable_tokens >= 1024 and (a.cacheable_tokens - 1024) % 128 == 0
    sharded = plan(1, expected_rpm=100)  # 100/min over 15/min per key: 7 shards
    assert sharded.cache_key.startswith(a.cache_key + "-")
    assert plan(1, expected_rpm=100).cache_key == sharded.cache_key  # same session, same shard
    responses = (
        thrifty.PromptBuilder("openai", GPT)
        .add_tools(TOOLS_OPENAI)
        .add_system(SYSTEM)
        .add_user("x")
    ).build(api="responses")
    assert responses.request["instructions"].startswith("You are")
    assert responses.request["tools"][0] == {
        "type": "function",
        "name": "create_ticket",
        "description": "Open a ticket",
        "parameters": {"properties": {"title": {"type": "string"}}, "type": "object"},
    }


def test_lint_warns_with_segment_and_text_and_moves_on_request():
    system = "Be brief.\nCurrent time: 2026-11-22 10:31:07\n" + words(2000)
    plan = thrifty.PromptBuilder("anthropic", SONNET).add_system(system).add_user("hi").build()
    [w] = plan.warnings
    assert (w.segment, w.kind, w.text, w.moved) == (
        "system[0]",
        "date",
        "2026-11-22 10:31:07",
        False,
    )
    assert "system[0]" in str(w) and "2026-11-22 10:31:07" in str(w)
    moved = (
        thrifty.PromptBuilder("anthropic", SONNET, move_volatile=True)
        .add_system(system)
        .add_user("hi")
        .build()
    )
    assert moved.warnings[0].moved
    assert "10:31" not in moved.request["system"][0]["text"]
    assert (
        moved.request["messages"][-1]["content"][0]["text"] == "Current time: 2026-11-22 10:31:07"
    )


def test_long_ttl_for_sparse_traffic():
    plan = anthropic_plan(request_interval_s=1200)
    assert plan.breakpoints[0].ttl == "1h"
    assert plan.request["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_no_breakpoint_under_the_model_minimum():
    plan = thrifty.PromptBuilder("anthropic", HAIKU).add_system(words(500)).add_user("hi").build()
    assert plan.breakpoints == [] and plan.cacheable_tokens == 0
    assert "cache_control" not in json.dumps(plan.request)


def test_from_request_openai_chat_is_the_same_conversation_made_cache_friendly():
    request = {
        "model": GPT,
        "temperature": 0,
        "tools": TOOLS_OPENAI,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "find it"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"z": 1, "a": [2, 1]}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
            {"role": "user", "content": "thanks"},
        ],
    }
    plan = thrifty.PromptBuilder.from_request("openai", GPT, request).build()
    out = plan.request
    assert plan.api == "chat.completions"
    assert out["temperature"] == 0 and out["model"] == GPT
    assert [t["function"]["name"] for t in out["tools"]] == ["create_ticket", "search"]
    assert out["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"a":[2,1],"z":1}'
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert out["messages"][0]["content"] == SYSTEM
    assert out["prompt_cache_key"] == plan.cache_key
    # The application's own key wins.
    keyed = thrifty.PromptBuilder.from_request(
        "openai", GPT, {**request, "prompt_cache_key": "mine"}
    ).build()
    assert keyed.request["prompt_cache_key"] == "mine"


def test_from_request_anthropic_replans_breakpoints():
    request = {
        "model": SONNET,
        "max_tokens": 300,
        "system": SYSTEM,
        "tools": list(reversed(TOOLS_ANTHROPIC)),
        "messages": history(2)
        + [
            {
                "role": "user",
                "content": [{"type": "text", "text": "go", "cache_control": {"type": "ephemeral"}}],
            }
        ],
    }
    plan = thrifty.PromptBuilder.from_request("anthropic", SONNET, request).build()
    out = plan.request
    assert out["max_tokens"] == 300
    assert [t["name"] for t in out["tools"]] == ["create_ticket", "search"]
    assert out["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert out["messages"][-1]["content"] == [
        {"cache_control": {"type": "ephemeral"}, "text": "go", "type": "text"}
    ]
    assert len(plan.breakpoints) == 2


# --- bad input ---------------------------------------------------------------------------


def test_unknown_provider_or_model():
    with pytest.raises(thrifty.NotFoundError, match="unknown provider 'nope'"):
        thrifty.PromptBuilder("nope", GPT)
    with pytest.raises(KeyError, match="unknown model 'gpt-nope'"):
        thrifty.PromptBuilder("openai", "gpt-nope")
    with pytest.raises(ValueError, match="is a openai model, not a anthropic"):
        thrifty.PromptBuilder("anthropic", GPT)


def test_segments_after_the_user_turn():
    b = thrifty.PromptBuilder("openai", GPT).add_user("hi")
    with pytest.raises(thrifty.FailedPreconditionError, match=r"add_system\(\) after add_user\(\)"):
        b.add_system("late")
    with pytest.raises(thrifty.FailedPreconditionError, match="add_history"):
        b.add_history(history(1))


def test_tool_schemas_must_be_json_objects():
    bad = [{"type": "function", "function": {"name": "f", "parameters": ["q"]}}]
    with pytest.raises(ValueError, match=r"tools\[0\] 'f': parameters must be a JSON object"):
        thrifty.PromptBuilder("openai", GPT).add_tools(bad)
    with pytest.raises(ValueError, match=r"tools\[0\]: a tool definition must be a JSON object"):
        thrifty.PromptBuilder("openai", GPT).add_tools(["search"])
    with pytest.raises(ValueError, match="duplicate tool name 'search'"):
        thrifty.PromptBuilder("openai", GPT).add_tools(TOOLS_OPENAI + TOOLS_OPENAI[:1])


def test_more_breakpoints_than_the_provider_allows():
    with pytest.raises(
        thrifty.InvalidArgumentError, match="max_breakpoints=5 exceeds anthropic's limit of 4"
    ):
        thrifty.PromptBuilder("anthropic", SONNET, max_breakpoints=5)
    marked = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    request = {
        "model": SONNET,
        "max_tokens": 10,
        "system": [marked, marked, marked],
        "messages": [{"role": "user", "content": [marked, marked]}],
    }
    with pytest.raises(
        thrifty.InvalidArgumentError,
        match="5 cache_control breakpoints; anthropic allows at most 4",
    ):
        thrifty.PromptBuilder.from_request("anthropic", SONNET, request)


def test_bad_api_and_ttl_names():
    with pytest.raises(ValueError, match="unknown api 'chat2'"):
        thrifty.PromptBuilder("openai", GPT).add_user("x").build(api="chat2")
    with pytest.raises(ValueError, match="ttl '2h' is not offered by anthropic"):
        thrifty.PromptBuilder("anthropic", SONNET, ttl="2h")


# --- PrefixTracker -----------------------------------------------------------------------


def test_tracker_is_a_cached_tokens_predictor_and_predicts_warm_prefixes():
    tracker = thrifty.PrefixTracker()
    assert isinstance(tracker, thrifty.CachedTokensPredictor)
    turn1, turn2 = anthropic_plan(1), anthropic_plan(2)
    cold = tracker.predict("anthropic", SONNET, turn1.request, now=0)
    assert (cold.cached_tokens, cold.reason) == (0, "cold")
    assert cold.usage.cache_write_5m_tokens == turn1.cacheable_tokens
    obs = tracker.observe("anthropic", SONNET, turn1.request, {"input_tokens": 5}, now=0)
    assert obs.reported_cached_tokens == 0 and obs.error_tokens == 0
    warm = tracker.predict(None, SONNET, turn2.request, now=20)
    assert warm.reason == "hit" and warm.cached_tokens == turn1.cacheable_tokens
    catalog = thrifty.Catalog.default()
    cost = catalog.cost(SONNET, warm.usage)
    assert cost < catalog.cost(SONNET, thrifty.Usage(input_tokens=warm.prompt_tokens))
    assert tracker.predict(None, SONNET, turn2.request, now=1000).reason == "ttl_lapsed"
    # The router's seam: a ModelSpec and a request.
    assert tracker.predict_cached_tokens(catalog.get(SONNET), turn2.request) >= 0


def test_tracker_reconciles_with_reported_usage_and_explains_changes():
    tracker = thrifty.PrefixTracker()
    first = {
        "model": GPT,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "a"}],
    }
    tracker.observe("openai", GPT, first, {"prompt_tokens": 8000}, now=0)
    second = {**first, "messages": first["messages"] + [{"role": "user", "content": "b"}]}
    p = tracker.predict("openai", GPT, second, now=5)
    assert p.reason == "hit" and p.cached_tokens >= 1024
    obs = tracker.observe(
        "openai",
        GPT,
        second,
        {
            "prompt_tokens": p.prompt_tokens,
            "prompt_tokens_details": {"cached_tokens": p.cached_tokens},
        },
        now=5,
    )
    assert obs.error_tokens == 0
    stats = tracker.stats()
    assert (
        stats["observations"] == 2 and stats["exact"] == 2 and stats["entries"] == len(tracker) > 0
    )
    changed = {**first, "messages": [{"role": "system", "content": "Now 10:31. " + SYSTEM}]}
    miss = tracker.predict("openai", GPT, changed, now=6)
    assert (miss.reason, miss.segment) == ("prefix_changed", "messages[0].content")
    short = {"model": GPT, "messages": [{"role": "system", "content": "hi"}]}
    tracker.observe("openai", GPT, short, None, now=7)
    assert tracker.predict("openai", GPT, short, now=8).reason == "under_minimum"


def test_tracker_clock_and_bad_input():
    t = [100.0]
    tracker = thrifty.PrefixTracker(clock=lambda: t[0], max_entries=1000)
    req = {"model": GPT, "messages": [{"role": "user", "content": SYSTEM}]}
    tracker.observe("openai", GPT, req)
    assert tracker.predict("openai", GPT, req).cached_tokens >= 1024
    t[0] += 10_000
    assert tracker.predict("openai", GPT, req).reason == "ttl_lapsed"
    with pytest.raises(KeyError, match="unknown model"):
        tracker.predict("openai", "gpt-nope", req)
    with pytest.raises(KeyError, match="unknown provider"):
        tracker.predict("nope", GPT, req)
    with pytest.raises(TypeError, match="request must be a dict"):
        tracker.predict("openai", GPT, "hello")
    with pytest.raises(ValueError, match="messages"):
        tracker.predict("openai", GPT, {"messages": 3})


# --- through the real SDKs ---------------------------------------------------------------


def test_anthropic_sdk_sends_breakpoints_and_sorted_tools():
    plan = anthropic_plan(turns=2, tools=list(reversed(TOOLS_ANTHROPIC)), request_interval_s=1200)
    with WireServer() as server:
        client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="test", max_retries=0)
        response = client.messages.create(**plan.request)
        assert response.content[0].text == "ok"
    [(path, body)] = server.bodies
    assert path == "/v1/messages"
    assert [t["name"] for t in body["tools"]] == ["create_ticket", "search"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    marks = json.dumps(body).count('"cache_control"')
    assert marks == len(plan.breakpoints) <= 4
    assert list(body["tools"][0]["input_schema"]) == sorted(body["tools"][0]["input_schema"])


def test_openai_sdk_chat_and_responses_send_cache_key_and_sorted_tools():
    builder_args = dict(provider="openai", model=GPT)
    chat = (
        thrifty.PromptBuilder(**builder_args)
        .add_tools(list(reversed(TOOLS_OPENAI)))
        .add_system(SYSTEM)
        .add_history(history(1))
        .add_user("next")
        .build()
    )
    resp = (
        thrifty.PromptBuilder(**builder_args)
        .add_tools(TOOLS_OPENAI)
        .add_system(SYSTEM)
        .add_history(history(1))
        .add_user("next")
        .build(api="responses")
    )
    with WireServer() as server:
        client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        assert client.chat.completions.create(**chat.request).choices[0].message.content == "ok"
        assert client.responses.create(**resp.request).output_text == "ok"
    (chat_path, chat_body), (resp_path, resp_body) = server.bodies
    assert (chat_path, resp_path) == ("/v1/chat/completions", "/v1/responses")
    assert chat_body["prompt_cache_key"] == chat.cache_key
    assert resp_body["prompt_cache_key"] == resp.cache_key
    assert resp.cache_key.startswith("thrifty-")
    assert [t["function"]["name"] for t in chat_body["tools"]] == ["create_ticket", "search"]
    assert [t["name"] for t in resp_body["tools"]] == ["create_ticket", "search"]
    assert "cache_control" not in json.dumps(chat_body) + json.dumps(resp_body)
    assert resp_body["input"][-1] == {
        "content": [{"text": "next", "type": "input_text"}],
        "role": "user",
    }


def test_from_request_round_trip_through_the_sdk_and_tracker():
    """What wrap does: rewrite the app's request, send it, feed usage back to the tracker."""
    tracker = thrifty.PrefixTracker()
    with WireServer(usage=lambda path, body: {"cache_read_input_tokens": 0}) as server:
        client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="test", max_retries=0)
        messages = []
        for turn in range(3):
            messages.append({"role": "user", "content": f"turn {turn}"})
            app_request = {
                "model": SONNET,
                "max_tokens": 50,
                "system": SYSTEM,
                "tools": TOOLS_ANTHROPIC,
                "messages": list(messages),
            }
            plan = thrifty.PromptBuilder.from_request("anthropic", SONNET, app_request).build()
            prediction = tracker.predict("anthropic", SONNET, plan.request, now=turn * 10)
            if turn > 0:
                assert prediction.cached_tokens >= plan.static_tokens
            response = client.messages.create(**plan.request)
            tracker.observe("anthropic", SONNET, plan.request, response.usage, now=turn * 10)
            messages.append({"role": "assistant", "content": response.content[0].text})
    assert len(server.bodies) == 3
    assert tracker.stats()["observations"] == 3


# --- cache-aware routing (the router's CachedTokensPredictor seam) ------------------------


def routing_catalog():
    quality = {c: 0.9 for c in ("chat", "code", "math", "reasoning", "extraction", "long_context")}
    return thrifty.Catalog(
        [
            thrifty.ModelSpec(
                "big-claude",
                "anthropic",
                3.0,
                15.0,
                cached_input_per_mtok=0.3,
                cache_write_5m_per_mtok=3.75,
                quality=quality,
            ),
            thrifty.ModelSpec(
                "small-gpt", "openai", 1.0, 15.0, cached_input_per_mtok=0.1, quality=quality
            ),
        ]
    )


def test_a_warm_prefix_flips_the_router_to_the_warm_expensive_model():
    catalog = routing_catalog()
    tracker = thrifty.PrefixTracker(catalog)
    router = thrifty.Router(catalog, predictor="prior", tracker=tracker, quality_threshold=0.5)

    def turn(n):
        return (
            thrifty.PromptBuilder("anthropic", "big-claude", catalog=catalog)
            .add_tools(TOOLS_ANTHROPIC)
            .add_system(SYSTEM)
            .add_history(history(n))
            .add_user(f"question {n}")
            .build()
            .request
        )

    cold = router.route(turn(1))
    assert cold.model == "small-gpt" and cold.cached_tokens["big-claude"] == 0
    tracker.observe("anthropic", "big-claude", turn(1))  # the session ran on big-claude
    warm = router.route(turn(2))
    assert warm.cached_tokens["big-claude"] > 8000
    assert warm.cached_tokens["small-gpt"] == 0
    assert warm.model == "big-claude"
    assert warm.expected_cost["big-claude"] < warm.expected_cost["small-gpt"]
    # Without the tracker the router only sees list prices.
    router.attach_tracker(None)
    assert router.route(turn(2)).model == "small-gpt"
