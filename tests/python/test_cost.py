import pytest
from anthropic.types import Usage as AnthropicUsage
from openai.types import CompletionUsage
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails

import thrifty


def test_usage_defaults_math_and_validation():
    u = thrifty.Usage(input_tokens=10, cached_input_tokens=90, output_tokens=5, reasoning_tokens=2)
    assert u.prompt_tokens == 100 and u.total_tokens == 105
    assert (u + u).cached_input_tokens == 180
    assert thrifty.Usage() == thrifty.Usage(input_tokens=0)
    with pytest.raises(thrifty.InvalidArgumentError, match="input_tokens must be >= 0"):
        thrifty.Usage(input_tokens=-1)
    with pytest.raises(thrifty.InvalidArgumentError, match="reasoning_tokens"):
        thrifty.Usage(output_tokens=1, reasoning_tokens=2)


def test_from_openai_sdk_object_chat_completions():
    usage = CompletionUsage(
        prompt_tokens=2006,
        completion_tokens=300,
        total_tokens=2306,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=1920),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=128),
    )
    u = thrifty.Usage.from_openai(usage)
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (
        86,
        1920,
        300,
        128,
    )


def test_from_openai_responses_dict():
    u = thrifty.Usage.from_openai(
        {
            "input_tokens": 500,
            "input_tokens_details": {"cached_tokens": 256},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 8},
        }
    )
    assert (u.input_tokens, u.cached_input_tokens, u.reasoning_tokens) == (244, 256, 8)


def test_from_anthropic_sdk_object_with_ttl_split():
    usage = AnthropicUsage.model_validate(
        {
            "input_tokens": 50,
            "output_tokens": 200,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 10000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1000,
                "ephemeral_1h_input_tokens": 2000,
            },
        }
    )
    u = thrifty.Usage.from_anthropic(usage)
    assert (
        u.input_tokens,
        u.cached_input_tokens,
        u.cache_write_5m_tokens,
        u.cache_write_1h_tokens,
    ) == (50, 10000, 1000, 2000)


def test_from_gemini_and_deepseek():
    g = thrifty.Usage.from_gemini(
        {
            "usageMetadata": {
                "promptTokenCount": 1200,
                "cachedContentTokenCount": 1000,
                "candidatesTokenCount": 80,
                "thoughtsTokenCount": 120,
            }
        }
    )
    assert (g.input_tokens, g.cached_input_tokens, g.output_tokens, g.reasoning_tokens) == (
        200,
        1000,
        200,
        120,
    )
    d = thrifty.Usage.from_deepseek(
        {
            "prompt_tokens": 900,
            "prompt_cache_hit_tokens": 640,
            "prompt_cache_miss_tokens": 260,
            "completion_tokens": 70,
        }
    )
    assert (d.input_tokens, d.cached_input_tokens) == (260, 640)


def test_bad_usage_reports_field_and_value():
    with pytest.raises(
        thrifty.InvalidArgumentError,
        match=r"'prompt_tokens' must be a non-negative integer.*\"12\"",
    ):
        thrifty.Usage.from_openai({"prompt_tokens": "12"})
    with pytest.raises(TypeError, match=r"usage\['x'\]: cannot convert bytes to JSON"):
        thrifty.Usage.from_openai({"x": b"raw"})


def test_cost_is_exact_to_published_prices_for_every_default_model():
    catalog = thrifty.Catalog.default()
    million = thrifty.Usage(input_tokens=1_000_000)
    for spec in catalog.models():
        assert catalog.cost(spec.name, million) == spec.input_per_mtok
        out = thrifty.Usage(output_tokens=1_000_000)
        assert catalog.cost(spec, out) == spec.output_per_mtok
        cached = thrifty.Usage(cached_input_tokens=1_000_000)
        expected = (
            spec.cached_input_per_mtok
            if spec.cached_input_per_mtok is not None
            else spec.input_per_mtok
        )
        assert catalog.cost(spec, cached) == pytest.approx(expected, rel=1e-12)


def test_cost_parses_provider_usage_with_the_models_provider():
    catalog = thrifty.Catalog(
        [
            thrifty.ModelSpec(
                "sonnet",
                "anthropic",
                3.0,
                15.0,
                cached_input_per_mtok=0.3,
                cache_write_5m_per_mtok=3.75,
                cache_write_1h_per_mtok=6.0,
            ),
            thrifty.ModelSpec("mini", "openai", 0.15, 0.60, cached_input_per_mtok=0.075),
        ]
    )
    anthropic_report = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_read_input_tokens": 20000,
        "cache_creation_input_tokens": 4000,
    }
    expected = (1000 * 3.0 + 20000 * 0.3 + 4000 * 3.75 + 500 * 15.0) / 1e6
    assert catalog.cost("sonnet", anthropic_report) == pytest.approx(expected, rel=1e-15)
    breakdown = catalog.cost_breakdown("sonnet", anthropic_report)
    assert breakdown["cached_input_usd"] == pytest.approx(0.006)
    assert breakdown["uncached_usd"] == pytest.approx((25000 * 3.0 + 500 * 15.0) / 1e6)
    openai_usage = CompletionUsage(
        prompt_tokens=3000,
        completion_tokens=100,
        total_tokens=3100,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=2048),
    )
    assert catalog.cost("mini", openai_usage) == pytest.approx(
        (952 * 0.15 + 2048 * 0.075 + 100 * 0.6) / 1e6
    )


def test_cost_rejects_wrong_model_types():
    catalog = thrifty.Catalog.default()
    with pytest.raises(TypeError, match="model must be a model name"):
        catalog.cost(3, thrifty.Usage())
    with pytest.raises(thrifty.NotFoundError):
        catalog.cost("no-such-model", thrifty.Usage())


def test_cheapest_first_orders_by_cost():
    rows = thrifty.Catalog.default().cheapest_first(input_tokens=2000, output_tokens=500)
    costs = [c for c, _ in rows]
    assert costs == sorted(costs) and len(rows) >= 12
    assert all(not spec.deprecated for _, spec in rows)
