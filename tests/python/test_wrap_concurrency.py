"""thrifty.wrap with AsyncOpenAI / AsyncAnthropic, and under threads and asyncio tasks:
last_call() belongs to each thread / task, stats add up, hits never reach the server."""

import asyncio
import threading

import anthropic
import openai
import pytest
from anthropic.types import Message, RawMessageStartEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import thrifty
from fake_llm_server import Answer, FakeAPIError


def run(coro):
    return asyncio.run(coro)


def test_async_openai_hits_and_streams(server):
    async def main():
        raw = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client = thrifty.wrap(raw, cache=thrifty.ExactCache())
        messages = [{"role": "user", "content": "async hello"}]
        first = await client.chat.completions.create(model="gpt-6-luna", messages=messages)
        second = await client.chat.completions.create(model="gpt-6-luna", messages=messages)
        assert isinstance(second, ChatCompletion)
        assert first.model_dump() == second.model_dump()
        stream = await client.chat.completions.create(
            model="gpt-6-luna", messages=[{"role": "user", "content": "s"}], stream=True
        )
        chunks = [c async for c in stream]
        assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
        replay = await client.chat.completions.create(
            model="gpt-6-luna", messages=[{"role": "user", "content": "s"}], stream=True
        )
        async with replay:
            again = [c async for c in replay]
        assert [c.model_dump() for c in again] == [c.model_dump() for c in chunks]
        assert server.count() == 2
        await raw.close()

    run(main())


def test_async_anthropic_and_errors(server):
    async def main():
        raw = anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0)
        client = thrifty.wrap(raw, cache=thrifty.ExactCache())
        kwargs = {
            "model": "claude-haiku-5-5",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        }
        first = await client.messages.create(**kwargs)
        assert isinstance(first, Message)
        events = [e async for e in await client.messages.create(**kwargs, stream=True)]
        assert isinstance(events[0], RawMessageStartEvent)
        assert server.count() == 1

        def brain(api, request):
            raise FakeAPIError(429, "slow down", "rate_limit_error")

        server.brain = brain
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.create(
                **{**kwargs, "messages": [{"role": "user", "content": "x"}]}
            )
        await raw.close()

    run(main())


def test_threads_share_a_client_safely(server):
    server.brain = lambda api, request: Answer(text=f"answer {request['messages'][0]['content']}")
    raw = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    client = thrifty.wrap(raw, cache=thrifty.ExactCache())
    errors = []
    barrier = threading.Barrier(8)

    def worker(i):
        try:
            barrier.wait()
            for round_ in range(3):
                question = f"q{i % 4}"
                response = client.chat.completions.create(
                    model="gpt-6-luna", messages=[{"role": "user", "content": question}]
                )
                assert response.choices[0].message.content == f"answer {question}"
                outcome = thrifty.last_call()
                assert outcome.requested_model == "gpt-6-luna"
                if round_ > 0:  # this thread stored or saw it in round 0
                    assert outcome.cache == "exact"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    stats = client.thrifty_stats()
    assert stats["calls"] == 24
    assert stats["misses"] + stats["hits"]["exact"] == 24
    assert stats["misses"] == server.count()  # every miss reached the server, no hit did
    assert 4 <= server.count() <= 8


def test_asyncio_tasks_see_their_own_last_call(server):
    async def main():
        raw = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client = thrifty.wrap(raw, cache=thrifty.ExactCache())

        async def task(i):
            tag = {"task": str(i)}
            await client.chat.completions.create(
                model="gpt-6-luna",
                messages=[{"role": "user", "content": f"task {i}"}],
                thrifty={"tags": tag},
            )
            await asyncio.sleep(0)
            return thrifty.last_call().tags

        tags = await asyncio.gather(*(task(i) for i in range(10)))
        assert tags == [{"task": str(i)} for i in range(10)]
        assert client.thrifty_stats()["misses"] == 10
        await raw.close()

    run(main())
