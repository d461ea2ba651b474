import json
import pickle

import pytest

import thrifty


def spec(name="m", provider="openai", inp=1.0, out=2.0, **kw):
    return thrifty.ModelSpec(name, provider, inp, out, **kw)


# --- ModelSpec -------------------------------------------------------------------------------


def test_model_spec_keyword_construction_and_fields():
    s = thrifty.ModelSpec(
        name="claude-x",
        provider="anthropic",
        input_per_mtok=3.0,
        output_per_mtok=15.0,
        cached_input_per_mtok=0.3,
        cache_write_5m_per_mtok=3.75,
        cache_write_1h_per_mtok=6.0,
        context_window=200_000,
        max_output_tokens=64_000,
        quality={"code": 0.9, "chat": 0.8},
        aliases=("claude-x-latest",),
    )
    assert (s.name, s.provider, s.input_per_mtok, s.output_per_mtok) == (
        "claude-x",
        "anthropic",
        3.0,
        15.0,
    )
    assert s.cached_input_per_mtok == 0.3 and s.cache_write_1h_per_mtok == 6.0
    assert s.context_window == 200_000 and s.max_output_tokens == 64_000
    assert s.quality == {"chat": 0.8, "code": 0.9}
    assert s.aliases == ("claude-x-latest",)
    assert s.to_dict()["cache_write_5m_per_mtok"] == 3.75
    assert pickle.loads(pickle.dumps(s)) == s


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(output_per_mtok=-0.5), "output_per_mtok"),
        (dict(cached_input_per_mtok=float("nan")), "cached_input_per_mtok"),
        (dict(cache_write_1h_per_mtok=float("inf")), "cache_write_1h_per_mtok"),
        (dict(context_window=0), "context_window"),
        (dict(quality={"code": 1.2}), "quality['code']"),
        (dict(provider=""), "provider"),
    ],
)
def test_model_spec_rejects_bad_values_naming_the_field(kwargs, field):
    base = dict(name="m", provider="openai", input_per_mtok=1.0, output_per_mtok=2.0)
    base.update(kwargs)
    with pytest.raises(thrifty.InvalidArgumentError, match=field.replace("[", r"\[")):
        thrifty.ModelSpec(**base)


def test_model_spec_requires_prices():
    with pytest.raises(TypeError):
        thrifty.ModelSpec("m", "openai")  # type: ignore[call-arg]


# --- Catalog ---------------------------------------------------------------------------------


def test_lookup_by_name_alias_case_and_provider_prefix():
    catalog = thrifty.Catalog(
        [spec("gpt-4o", aliases=("gpt-4o-2024-08-06",)), spec("claude-x", "anthropic")]
    )
    assert catalog.get("gpt-4o-2024-08-06").name == "gpt-4o"
    assert catalog.get("GPT-4O").name == "gpt-4o"
    assert catalog.get("anthropic/claude-x").name == "claude-x"
    assert catalog.find("openai/claude-x") is None
    assert "gpt-4o" in catalog and "gpt-5" not in catalog
    assert len(catalog) == 2 and [s.name for s in catalog] == ["gpt-4o", "claude-x"]


def test_unknown_model_lists_closest_names():
    catalog = thrifty.Catalog(
        [spec("gpt-4o-mini"), spec("gpt-4o"), spec("claude-sonnet-4-5", "anthropic")]
    )
    with pytest.raises(thrifty.NotFoundError) as info:
        catalog.get("claude-sonnet")
    assert "closest in the catalog: claude-sonnet-4-5" in str(info.value)


def test_duplicate_alias_is_rejected():
    with pytest.raises(
        thrifty.InvalidArgumentError, match="alias 'A' is already used by model 'a'"
    ):
        thrifty.Catalog([spec("a"), spec("b", aliases=("A",))])


def test_catalog_rejects_non_specs():
    with pytest.raises(TypeError, match=r"models\[1\] must be a thrifty.ModelSpec"):
        thrifty.Catalog([spec("a"), {"name": "b"}])


def test_default_catalog_is_realistic_and_current():
    catalog = thrifty.Catalog.default()
    models = catalog.models()
    active = [m for m in models if not m.deprecated]
    assert len(active) >= 12
    providers = {m.provider for m in active}
    assert {"openai", "anthropic", "google", "deepseek", "mistral"} <= providers
    assert providers & {"together", "groq", "fireworks"}, "an open-weights host"
    assert str(catalog.policy["read_on"]) >= "2026-01-01"
    for m in models:
        assert m.input_per_mtok > 0 and m.output_per_mtok >= m.input_per_mtok * 0.5, m.name
        if m.cached_input_per_mtok is not None:
            assert m.cached_input_per_mtok <= m.input_per_mtok, m.name
        assert set(m.quality) == {"chat", "code", "math", "reasoning", "extraction", "long_context"}
        assert m.source.startswith("http"), m.name
    anthropic = [m for m in active if m.provider == "anthropic"]
    for m in anthropic:  # Anthropic's published multipliers: 1.25x and 2x input for writes
        assert m.cache_write_5m_per_mtok == pytest.approx(1.25 * m.input_per_mtok)
        assert m.cache_write_1h_per_mtok == pytest.approx(2.0 * m.input_per_mtok)
    fallback = catalog.policy["routing"]["fallback_model"]
    assert not catalog.get(fallback).deprecated
    # The evaluation data's two RouteLLM models are priceable.
    assert catalog.get("gpt-4-1106-preview").input_per_mtok == 10.0
    assert "mistralai/Mixtral-8x7B-Instruct-v0.1" in catalog


def test_default_is_cached_and_immutable_object():
    assert thrifty.Catalog.default() is thrifty.Catalog.default()


# --- from_yaml -------------------------------------------------------------------------------

GOOD = """\
version: "test"
read_on: "2026-11-22"
models:
  - name: small
    provider: openai
    input_per_mtok: 0.10
    output_per_mtok: 0.40
    cached_input_per_mtok: 0.025
    quality: {chat: 0.7}
  - name: big
    provider: anthropic
    aliases: [big-latest]
    input_per_mtok: 3
    output_per_mtok: 15
routing:
  quality_threshold: 0.8
"""


def test_from_yaml_loads_models_and_sections(write):
    catalog = thrifty.Catalog.from_yaml(write("p.yaml", GOOD))
    assert catalog.get("big-latest").output_per_mtok == 15.0
    assert catalog.get("small").quality == {"chat": 0.7}
    assert catalog.policy["routing"] == {"quality_threshold": 0.8}
    assert catalog.source.endswith("p.yaml")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("models:\n  - name: a\n    provider: [x\n", r"p.yaml:\d+:\d+: malformed YAML"),
        (
            GOOD.replace("output_per_mtok: 15", "output_per_mtok: -15"),
            r"p.yaml:14: models\[1\]\.output_per_mtok: expected a number >= 0",
        ),
        (
            GOOD.replace("    output_per_mtok: 0.40\n", ""),
            r"p.yaml:4: models\[0\]: missing required field 'output_per_mtok'",
        ),
        (
            GOOD.replace("input_per_mtok: 3", "input_per_mtk: 3"),
            r"p.yaml:13: models\[1\]: unknown field 'input_per_mtk' \(did you mean 'input_per_mtok'\?\)",
        ),
        (
            GOOD.replace("input_per_mtok: 3", "input_per_mtok: three"),
            r"p.yaml:13: models\[1\]\.input_per_mtok: expected a number >= 0 .* got 'three'",
        ),
        (
            GOOD.replace("quality: {chat: 0.7}", "quality: {chat: 1.7}"),
            r"p.yaml:9: models\[0\]: model 'small': quality\['chat'\] must be in \[0, 1\]",
        ),
        (
            GOOD.replace("aliases: [big-latest]", "aliases: [small]"),
            r"p.yaml:10: models\[1\] 'big': alias 'small' is already used",
        ),
        (
            GOOD.replace("routing:", "routng:"),
            r"p.yaml:15: unknown top-level field 'routng' \(did you mean 'routing'\?\)",
        ),
        ("- just a list\n", r"p.yaml:1: a policy file must be a mapping"),
        ("models: []\n", r"p.yaml:1: 'models' must be a non-empty list"),
    ],
)
def test_from_yaml_errors_name_file_line_and_field(write, text, expected):
    with pytest.raises(thrifty.InvalidArgumentError, match=expected):
        thrifty.Catalog.from_yaml(write("p.yaml", text))


def test_from_yaml_missing_file(tmp_path):
    with pytest.raises(thrifty.InvalidArgumentError, match="cannot read policy file"):
        thrifty.Catalog.from_yaml(tmp_path / "absent.yaml")


# --- from_litellm ----------------------------------------------------------------------------

LITELLM = {
    "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "supports_vision": True,
        "some_future_field": {"x": 1},
    },
    "claude-sonnet-4-5": {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "max_input_tokens": 200000,
        "max_output_tokens": 64000,
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
    },
    "text-embedding-3-small": {
        "litellm_provider": "openai",
        "mode": "embedding",
        "input_cost_per_token": 2e-08,
        "output_cost_per_token": 0,
    },
    "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation"},
}


def test_from_litellm_converts_per_token_prices_exactly(write):
    catalog = thrifty.Catalog.from_litellm(write("prices.json", json.dumps(LITELLM, indent=4)))
    assert catalog.names() == ["gpt-4o", "claude-sonnet-4-5"]
    gpt = catalog.get("gpt-4o")
    assert (gpt.input_per_mtok, gpt.output_per_mtok, gpt.cached_input_per_mtok) == (2.5, 10.0, 1.25)
    sonnet = catalog.get("claude-sonnet-4-5")
    assert (sonnet.cache_write_5m_per_mtok, sonnet.cache_write_1h_per_mtok) == (3.75, 6.0)
    assert sonnet.context_window == 200000 and sonnet.provider == "anthropic"
    assert catalog.policy["skipped"]["not_a_chat_model"] == 2


def test_from_litellm_errors(write):
    with pytest.raises(thrifty.InvalidArgumentError, match=r"bad.json:3:\d+: malformed JSON"):
        thrifty.Catalog.from_litellm(write("bad.json", '{\n  "a": {\n    "x": ,\n  }\n}'))
    broken = dict(LITELLM)
    broken["gpt-4o"] = dict(LITELLM["gpt-4o"], output_cost_per_token=-1)
    with pytest.raises(
        thrifty.InvalidArgumentError,
        match=r"p.json:\d+: 'gpt-4o'.output_cost_per_token: expected a number >= 0",
    ):
        thrifty.Catalog.from_litellm(write("p.json", json.dumps(broken, indent=4)))
