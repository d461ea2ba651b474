import json
import re
import subprocess
import sys

import pytest

import thrifty
from thrifty import _samples


def chat(**overrides):
    request = {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "2+2?"},
        ],
    }
    request.update(overrides)
    return request


def test_key_is_32_hex_and_deterministic_across_processes():
    key = thrifty.request_key(chat())
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    # Keys are shared through Redis by many processes: they must not depend on the process.
    code = "import thrifty, json, sys; print(thrifty.request_key(json.loads(sys.argv[1])))"
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(chat())], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == key


@pytest.mark.parametrize(
    "field,value",
    [
        ("stream", True),
        ("stream_options", {"include_usage": True}),
        ("user", "u1"),
        ("metadata", {"a": 1}),
        ("timeout", 30),
        ("extra_headers", {"X": "1"}),
        ("prompt_cache_key", "k"),
        ("service_tier", "flex"),
        ("store", True),
        ("safety_identifier", "s"),
    ],
)
def test_fields_that_do_not_change_the_answer_are_ignored(field, value):
    assert thrifty.request_key(chat(**{field: value})) == thrifty.request_key(chat())


@pytest.mark.parametrize(
    "field,value",
    [
        ("model", "gpt-4o"),
        ("temperature", 0.3),
        ("top_p", 0.5),
        ("seed", 1),
        ("max_tokens", 5),
        ("n", 2),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("tool_choice", "required"),
        ("response_format", {"type": "json_object"}),
        ("stop", ["x"]),
        ("logprobs", True),
        ("new_param", 1),
    ],
)
def test_fields_that_change_the_answer_change_the_key(field, value):
    assert thrifty.request_key(chat(**{field: value})) != thrifty.request_key(chat())


def test_namespace_and_message_content_are_in_the_key():
    base = thrifty.request_key(chat())
    assert thrifty.request_key(chat(), namespace="tenant-a") != base
    assert thrifty.request_key(chat(), namespace="tenant-a") != thrifty.request_key(
        chat(), namespace="tenant-b"
    )
    other = chat()
    other["messages"][0]["content"] = "You are verbose."
    assert thrifty.request_key(other) != base


def test_normalization_key_order_numbers_tuples_and_text_blocks():
    a = {"model": "m", "temperature": 1, "messages": [{"role": "user", "content": "hi"}]}
    b = {
        "messages": ({"content": [{"type": "text", "text": "hi"}], "role": "user"},),
        "temperature": 1.0,
        "model": "m",
    }
    assert thrifty.request_key(a) == thrifty.request_key(b)
    assert (
        thrifty.canonical_request(a)
        == '{"messages":[{"content":"hi","role":"user"}],"model":"m","temperature":1}'
    )
    # true is not 1 in JSON; a different value must not collide.
    assert thrifty.request_key({"model": "m", "x": True}) != thrifty.request_key(
        {"model": "m", "x": 1}
    )


def test_anthropic_cache_control_markers_do_not_change_the_key():
    plain = {
        "model": "claude-x",
        "max_tokens": 10,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    marked = {
        "model": "claude-x",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "hi",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
            }
        ],
    }
    assert thrifty.request_key(plain) == thrifty.request_key(marked)


def test_sdk_objects_inside_requests_are_dumped():
    from openai.types.chat import ChatCompletionMessage

    message = ChatCompletionMessage(role="assistant", content="4")
    request = chat(messages=[{"role": "user", "content": "2+2?"}, message])
    as_dict = chat(messages=[{"role": "user", "content": "2+2?"}, message.model_dump(mode="json")])
    assert thrifty.request_key(request) == thrifty.request_key(as_dict)


def test_bad_requests_get_clear_errors():
    with pytest.raises(TypeError, match="request_key: request must be a dict"):
        thrifty.request_key([{"role": "user"}])
    with pytest.raises(
        TypeError, match=r"request\['messages'\]\[0\]\['content'\]: cannot convert bytes"
    ):
        thrifty.request_key({"messages": [{"content": b"x"}]})
    with pytest.raises(TypeError, match="dict key of type int"):
        thrifty.request_key({"logit_bias": {50256: -100}})
    with pytest.raises(thrifty.InvalidArgumentError, match="'temperature'.*finite"):
        thrifty.request_key(chat(temperature=float("nan")))
    cyclic = chat()
    cyclic["self"] = cyclic
    with pytest.raises(TypeError, match="deeper than 200"):
        thrifty.request_key(cyclic)


def test_estimate_tokens_tracks_a_real_tokenizer():
    bpe = pytest.importorskip("bpe_openai")
    enc = bpe.get_encoding("o200k_base")
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        _samples.SYSTEM_PROMPT,
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" * 20,
        json.dumps(_samples.TOOLS, indent=2),
        "Quelle est la meilleure façon d'apprendre le français rapidement ?",
        "東京は日本の首都であり、世界最大の都市圏の一つです。",
    ]
    for text in texts:
        real = len(enc.encode(text))
        estimate = thrifty.estimate_tokens(text)
        assert abs(estimate - real) <= max(3, 0.25 * real), (text[:40], estimate, real)


def test_estimate_tokens_for_requests_and_families():
    request = _samples.support_request()
    total = thrifty.estimate_tokens(request)
    system_only = thrifty.estimate_tokens(_samples.SYSTEM_PROMPT)
    assert total > system_only + 200  # tools and messages add up
    assert thrifty.estimate_tokens(request, model="claude-sonnet-4-5") > total  # documented factor
    assert thrifty.tokenizer_family("gpt-4-1106-preview") == "cl100k"
    assert thrifty.tokenizer_family("gpt-6-luna") == "o200k"
    with pytest.raises(TypeError, match="expected a str or a request dict"):
        thrifty.estimate_tokens(42)
    with pytest.raises(thrifty.InvalidArgumentError, match="'messages' must be a list"):
        thrifty.estimate_tokens({"messages": "hi"})


def test_estimate_tokens_releases_the_gil():
    from conftest import assert_releases_gil

    text = "lorem ipsum dolor sit amet, consectetur adipiscing elit 12345 " * 800_000  # ~50 MB
    assert_releases_gil(lambda: thrifty.estimate_tokens(text))
