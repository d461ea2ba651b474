"""thrifty.wrap streaming: misses stream through and are stored only when complete; hits replay
as streams of the SDK's own chunk / event objects."""

import json

import anthropic
import openai
import pytest
from anthropic.types import RawMessageStartEvent, RawMessageStopEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import thrifty
from fake_llm_server import Answer

MESSAGES = [{"role": "user", "content": "Tell me a short story about a cat."}]


def stream_chat(client, **kwargs):
    return client.chat.completions.create(
        model="gpt-6-luna", messages=MESSAGES, stream=True, **kwargs
    )


def stream_messages(client, **kwargs):
    return client.messages.create(
        model="claude-haiku-5-5", max_tokens=300, messages=MESSAGES, stream=True, **kwargs
    )


def text_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_chat_stream_replays_identically(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    direct = list(stream_chat(oai))
    first = list(stream_chat(client))
    assert all(isinstance(c, ChatCompletionChunk) for c in first)
    # thrifty asked for usage to count the call, the caller did not: they get no usage chunk.
    assert all(c.choices for c in first) and len(first) == len(direct)
    assert thrifty.last_call().cost_usd > 0 and thrifty.last_call().complete
    assert server.bodies("chat")[-1]["stream_options"] == {"include_usage": True}
    second = list(stream_chat(client))
    assert server.count("chat") == 2  # direct + first
    assert [c.model_dump() for c in second] == [c.model_dump() for c in first]
    assert thrifty.last_call().cache == "exact"
    # The stored stream answers a non-streaming call too, with the assembled completion.
    whole = client.chat.completions.create(model="gpt-6-luna", messages=MESSAGES)
    assert isinstance(whole, ChatCompletion)
    assert whole.choices[0].message.content == text_of(first)
    assert whole.usage.prompt_tokens > 0
    assert server.count("chat") == 2


def test_chat_stream_with_usage_requested_keeps_the_usage_chunk(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    options = {"include_usage": True}
    first = list(stream_chat(client, stream_options=options))
    assert first[-1].usage is not None and not first[-1].choices
    second = list(stream_chat(client, stream_options=options))
    assert [c.model_dump() for c in second] == [c.model_dump() for c in first]


def test_non_stream_entry_replays_as_a_stream(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    whole = client.chat.completions.create(model="gpt-6-luna", messages=MESSAGES)
    chunks = list(stream_chat(client))
    assert server.count() == 1
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert text_of(chunks) == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_tool_calls(server, oai):
    server.brain = lambda api, request: Answer(tool_calls=[("lookup", {"q": "cats"})])
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    first = list(stream_chat(client))
    whole = client.chat.completions.create(model="gpt-6-luna", messages=MESSAGES)
    call = whole.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and call.function.arguments == '{"q": "cats"}'
    assert whole.choices[0].finish_reason == "tool_calls"
    assert [c.model_dump() for c in list(stream_chat(client))] == [c.model_dump() for c in first]
    assert server.count() == 1


def test_broken_stream_is_never_stored(server, oai, ant):
    server.brain = lambda api, request: Answer(text="one two three four five", fail_stream_after=3)
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    with pytest.raises(openai.APIError):
        list(stream_chat(client))
    assert thrifty.last_call().complete is False
    server.brain = lambda api, request: "fine now"
    assert text_of(stream_chat(client)) == "fine now"
    assert server.count("chat") == 2
    assert client.thrifty_stats()["errors"] == 1

    server.brain = lambda api, request: Answer(text="one two three", fail_stream_after=3)
    aclient = thrifty.wrap(ant, cache=thrifty.ExactCache())
    with pytest.raises(anthropic.APIError):
        list(stream_messages(aclient))
    server.brain = lambda api, request: "fine"
    list(stream_messages(aclient))
    assert server.count("messages") == 2


def test_stream_closed_early_is_not_stored(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    stream = stream_chat(client)
    next(stream)
    stream.close()
    list(stream_chat(client))
    assert server.count() == 2


def test_anthropic_stream_replays_identically(server, ant):
    client = thrifty.wrap(ant, cache=thrifty.ExactCache())
    first = list(stream_messages(client))
    assert isinstance(first[0], RawMessageStartEvent) and isinstance(first[-1], RawMessageStopEvent)
    outcome = thrifty.last_call()
    assert outcome.cost_usd > 0 and outcome.usage.output_tokens > 1
    second = list(stream_messages(client))
    assert [e.model_dump() for e in second] == [e.model_dump() for e in first]
    whole = client.messages.create(model="claude-haiku-5-5", max_tokens=300, messages=MESSAGES)
    text = "".join(e.delta.text for e in first if e.type == "content_block_delta")
    assert whole.content[0].text == text
    assert server.count("messages") == 1


def test_anthropic_non_stream_entry_replays_as_events(server, ant):
    server.brain = lambda api, request: Answer(text="Here you go.", tool_calls=[("f", {"a": 1})])
    client = thrifty.wrap(ant, cache=thrifty.ExactCache())
    whole = client.messages.create(model="claude-haiku-5-5", max_tokens=300, messages=MESSAGES)
    events = list(stream_messages(client))
    assert server.count() == 1
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-2].delta.stop_reason == "tool_use"
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == whole.content[0].text
    arguments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert json.loads("".join(arguments)) == {"a": 1}
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [b.type for b in starts] == ["text", "tool_use"] and starts[1].name == "f"


def test_responses_api(server, oai):
    client = thrifty.wrap(oai, cache=thrifty.ExactCache())
    first = client.responses.create(model="gpt-6-luna", input="Say hi")
    assert first.output_text.startswith("You said: Say hi")
    second = client.responses.create(model="gpt-6-luna", input="Say hi")
    assert second.model_dump() == first.model_dump()
    assert server.count("responses") == 1
    events = list(client.responses.create(model="gpt-6-luna", input="Stream hi", stream=True))
    assert events[-1].type == "response.completed"
    again = list(client.responses.create(model="gpt-6-luna", input="Stream hi", stream=True))
    assert [e.model_dump() for e in again] == [e.model_dump() for e in events]
    assert server.count("responses") == 2
    # An entry stored without its events is not replayed as a stream: the call goes out.
    list(client.responses.create(model="gpt-6-luna", input="Say hi", stream=True))
    assert server.count("responses") == 3
