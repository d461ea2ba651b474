"""OpenAI chat <-> Anthropic messages translation (thrifty._translate), with the SDKs' own types
as the judge of the translated responses."""

import json

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

import thrifty
from thrifty import _translate


def test_openai_request_to_anthropic_full_conversation():
    request = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "text", "text": "Rule two."}]},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"a":1}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"a":2}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
            {"role": "user", "content": "Thanks"},
        ],
        "temperature": 1.5,
        "stop": "END",
        "max_tokens": 77,
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "someone",
    }
    out = _translate.openai_request_to_anthropic(request, "claude-haiku-5-5")
    assert out["model"] == "claude-haiku-5-5"
    assert out["system"] == "Rule one.\n\nRule two."
    assert out["max_tokens"] == 77 and out["temperature"] == 1.0
    assert out["stop_sequences"] == ["END"]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user"]  # tool results and the next user turn merged
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"a": 1}},
        {"type": "tool_use", "id": "c2", "name": "w", "input": {"a": 2}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "rainy"},
        {"type": "text", "text": "Thanks"},
    ]
    assert "user" not in out


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("logprobs", True, "logprobs"),
        ("response_format", {"type": "json_object"}, "response_format"),
        ("n", 2, "n=2"),
    ],
)
def test_openai_fields_without_equivalent_are_refused(field, value, match):
    request = {"model": "auto", "messages": [{"role": "user", "content": "x"}], field: value}
    with pytest.raises(thrifty.InvalidArgumentError, match=match):
        _translate.openai_request_to_anthropic(request, "claude-haiku-5-5")


def test_bad_tool_arguments_name_the_field():
    request = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}],
            }
        ]
    }
    with pytest.raises(
        thrifty.InvalidArgumentError, match=r"messages\[0\].tool_calls\[0\].function.arguments"
    ):
        _translate.openai_request_to_anthropic(request, "m")


def test_anthropic_request_to_openai():
    request = {
        "model": "auto",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": True},
                    {"type": "text", "text": "go on"},
                ],
            },
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "stop_sequences": ["X"],
    }
    out = _translate.anthropic_request_to_openai(request, "gpt-6-luna")
    assert out["messages"][0] == {"role": "system", "content": "Sys"}
    assert out["messages"][2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x": 1}'}
    assert out["messages"][2]["content"] == "Calling."
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "Error: ok"}
    assert out["messages"][4] == {"role": "user", "content": "go on"}
    assert out["tools"][0]["function"]["parameters"] == {"type": "object"}
    assert out["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert out["stop"] == ["X"] and out["max_completion_tokens"] == 50
    with pytest.raises(thrifty.InvalidArgumentError, match="thinking"):
        _translate.anthropic_request_to_openai({**request, "thinking": {"type": "enabled"}}, "m")
    document = {"type": "document", "source": {"type": "text", "data": "x"}}
    with pytest.raises(thrifty.InvalidArgumentError, match=r"messages\[0\].content\[0\]"):
        _translate.anthropic_request_to_openai(
            {"messages": [{"role": "user", "content": [document]}]}, "m"
        )


def test_responses_translate_into_valid_sdk_types():
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-5-5",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 20,
            "cache_creation_input_tokens": 3,
        },
    }
    completion = ChatCompletion.model_validate(_translate.anthropic_response_to_openai(message))
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens == 33
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    call = completion.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    back = Message.model_validate(_translate.openai_response_to_anthropic(completion.model_dump()))
    assert back.stop_reason == "tool_use"
    assert back.content[0].text == "Let me check."
    assert back.content[1].input == {"city": "Oslo"}
    assert back.usage.cache_read_input_tokens == 20
