"""Streams for thrifty.wrap: pass-through streams that assemble what they carry, replayed streams.

- ``ChatAccumulator`` / ``MessageAccumulator`` rebuild a full ChatCompletion / Anthropic Message
  (as dicts) from the chunks / events of a stream, and say whether it ended properly.
- ``chat_chunks`` / ``message_events`` go the other way: the chunk / event dicts a stream of a
  stored response is replayed as (when the response was not stored from a stream itself).
- ``PassthroughStream`` / ``AsyncPassthroughStream`` wrap the SDK's Stream / AsyncStream: they
  yield the SDK's own chunk objects unchanged, hand each one to a collector, and tell it whether
  the stream completed, failed or was closed early (only a completed one is ever stored).
- ``ReplayStream`` / ``AsyncReplayStream`` yield already-built SDK chunk objects (a cache hit).

Thread-safety: a stream is consumed by one thread or task at a time, like the SDK's own streams.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterator, List, Optional

__all__ = [
    "AsyncPassthroughStream",
    "AsyncReplayStream",
    "ChatAccumulator",
    "MessageAccumulator",
    "PassthroughStream",
    "ReplayStream",
    "chat_chunks",
    "message_events",
]

_PIECES = re.compile(r"\s*\S+(?:\s+\S+){0,3}\s*|\s+")


def _pieces(text: str) -> List[str]:
    """Text split into pieces of up to four words, as a provider would stream it."""
    return _PIECES.findall(text) or [text]


class ChatAccumulator:
    """Assembles ChatCompletionChunk dicts into a ChatCompletion dict."""

    def __init__(self) -> None:
        self.base: Optional[Dict[str, Any]] = None
        self.choices: Dict[int, Dict[str, Any]] = {}
        self.usage: Optional[Dict[str, Any]] = None

    def add(self, chunk: Dict[str, Any]) -> None:
        if self.base is None:
            self.base = {k: chunk.get(k) for k in ("id", "created", "model", "system_fingerprint")}
            if chunk.get("service_tier") is not None:
                self.base["service_tier"] = chunk["service_tier"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            state = self.choices.get(choice.get("index", 0))
            if state is None:
                state = self.choices[choice.get("index", 0)] = {
                    "content": [],
                    "refusal": [],
                    "tool_calls": {},
                    "finish_reason": None,
                }
            delta = choice.get("delta") or {}
            if delta.get("content"):
                state["content"].append(delta["content"])
            if delta.get("refusal"):
                state["refusal"].append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                slot = state["tool_calls"].get(call.get("index", 0))
                if slot is None:
                    slot = state["tool_calls"][call.get("index", 0)] = {
                        "id": None,
                        "type": "function",
                        "function": {"name": "", "arguments": ""},
                    }
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                if function.get("name"):
                    slot["function"]["name"] += function["name"]
                if function.get("arguments"):
                    slot["function"]["arguments"] += function["arguments"]
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]

    @property
    def complete(self) -> bool:
        return bool(self.choices) and all(s["finish_reason"] for s in self.choices.values())

    def result(self) -> Dict[str, Any]:
        choices = []
        for index in sorted(self.choices):
            state = self.choices[index]
            message: Dict[str, Any] = {
                "role": "assistant",
                "content": "".join(state["content"]) if state["content"] else None,
                "refusal": "".join(state["refusal"]) if state["refusal"] else None,
            }
            if state["tool_calls"]:
                message["tool_calls"] = [
                    state["tool_calls"][i] for i in sorted(state["tool_calls"])
                ]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": state["finish_reason"],
                }
            )
        out = {**(self.base or {}), "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


class MessageAccumulator:
    """Assembles Anthropic raw stream event dicts into a Message dict."""

    def __init__(self) -> None:
        self.message: Optional[Dict[str, Any]] = None
        self.partial_json: Dict[int, List[str]] = {}
        self.complete = False

    def add(self, event: Dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.message = dict(event.get("message") or {})
            self.message["content"] = list(self.message.get("content") or [])
            self.message["usage"] = dict(self.message.get("usage") or {})
            return
        message = self.message
        if message is None:
            return
        if kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            message["content"].append(block)
            if block.get("type") in ("tool_use", "server_tool_use"):
                self.partial_json[len(message["content"]) - 1] = []
        elif kind == "content_block_delta":
            index = event.get("index", 0)
            if index >= len(message["content"]):
                return
            block = message["content"][index]
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif dtype == "input_json_delta":
                self.partial_json.setdefault(index, []).append(delta.get("partial_json", ""))
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif dtype == "signature_delta":
                block["signature"] = delta.get("signature")
            elif dtype == "citations_delta":
                block.setdefault("citations", []).append(delta.get("citation"))
        elif kind == "content_block_stop":
            index = event.get("index", 0)
            parts = self.partial_json.pop(index, None)
            if parts is not None and index < len(message["content"]):
                text = "".join(parts)
                message["content"][index]["input"] = json.loads(text) if text else {}
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            for field in ("stop_reason", "stop_sequence"):
                if field in delta:
                    message[field] = delta[field]
            for field, value in (event.get("usage") or {}).items():
                if value is not None:
                    message["usage"][field] = value
        elif kind == "message_stop":
            self.complete = True

    def result(self) -> Dict[str, Any]:
        return dict(self.message or {})


def chat_chunks(completion: Dict[str, Any], include_usage: bool) -> List[Dict[str, Any]]:
    """The chunk dicts a stream of `completion` (a ChatCompletion dict) is replayed as."""
    base = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
    }
    if completion.get("system_fingerprint") is not None:
        base["system_fingerprint"] = completion["system_fingerprint"]
    chunks = []

    def chunk(index: int, delta: Dict[str, Any], finish: Optional[str] = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunks.append({**base, "choices": [choice]})

    for choice in completion.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunk(index, {"role": "assistant", "content": ""})
        if message.get("content"):
            for piece in _pieces(message["content"]):
                chunk(index, {"content": piece})
        if message.get("refusal"):
            chunk(index, {"refusal": message["refusal"]})
        for i, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") or {}
            chunk(
                index,
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call.get("id"),
                            "type": "function",
                            "function": {
                                "name": function.get("name"),
                                "arguments": function.get("arguments", ""),
                            },
                        }
                    ]
                },
            )
        chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage and completion.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


def message_events(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The raw stream event dicts a stream of `message` (an Anthropic Message dict) replays as."""
    usage = dict(message.get("usage") or {})
    start_usage = {**usage, "output_tokens": min(1, int(usage.get("output_tokens") or 0))}
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events: List[Dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "text": ""},
                }
            )
            for piece in _pieces(block.get("text", "")):
                delta = {"type": "text_delta", "text": piece}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
        elif kind == "tool_use":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                }
            )
            delta = {
                "type": "input_json_delta",
                "partial_json": json.dumps(block.get("input") or {}),
            }
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        elif kind == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "thinking": "", "signature": ""},
                }
            )
            delta = {"type": "thinking_delta", "thinking": block.get("thinking", "")}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
            if block.get("signature"):
                delta = {"type": "signature_delta", "signature": block["signature"]}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": message.get("stop_reason"),
                "stop_sequence": message.get("stop_sequence"),
            },
            "usage": {"output_tokens": int(usage.get("output_tokens") or 0)},
        }
    )
    events.append({"type": "message_stop"})
    return events


class _Collector:
    """What a pass-through stream reports to (thrifty.wrap's call state implements it)."""

    def item(self, item: Any) -> bool:  # returns whether to yield the item to the caller
        raise NotImplementedError

    def done(self) -> None:
        raise NotImplementedError

    def failed(self, error: BaseException) -> None:
        raise NotImplementedError

    def aborted(self) -> None:
        raise NotImplementedError


class _PassthroughBase:
    """What the sync and async pass-through streams share: the collector's bookkeeping.

    Other attributes (``response``, ...) are the wrapped stream's.
    """

    def __init__(self, inner: Any, collector: _Collector, iterator: Any):
        self._inner = inner
        self._iter = iterator
        self._collector = collector
        self._finished = False

    def _finish(self, error: Optional[BaseException]) -> None:
        if self._finished:
            return
        self._finished = True
        if error is None:
            self._collector.done()
        else:
            self._collector.failed(error)

    def _abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._collector.aborted()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class PassthroughStream(_PassthroughBase):
    """The SDK's Stream, yielding its own chunk objects, reporting them to a collector."""

    def __init__(self, inner: Any, collector: _Collector):
        super().__init__(inner, collector, iter(inner))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = next(self._iter)
            except StopIteration:
                self._finish(None)
                raise
            except BaseException as e:
                self._finish(e)
                raise
            if self._collector.item(item):
                return item

    def close(self) -> None:
        self._abort()
        self._inner.close()

    def __enter__(self) -> PassthroughStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncPassthroughStream(_PassthroughBase):
    """The SDK's AsyncStream, yielding its own chunk objects, reporting them to a collector."""

    def __init__(self, inner: Any, collector: _Collector):
        super().__init__(inner, collector, inner.__aiter__())

    def __aiter__(self) -> AsyncPassthroughStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                item = await self._iter.__anext__()
            except StopAsyncIteration:
                self._finish(None)
                raise
            except BaseException as e:
                self._finish(e)
                raise
            if self._collector.item(item):
                return item

    async def close(self) -> None:
        self._abort()
        await self._inner.close()

    async def __aenter__(self) -> AsyncPassthroughStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


class ReplayStream:
    """A stream of SDK chunk / event objects replayed from the cache (no HTTP response)."""

    response = None

    def __init__(self, items: List[Any]):
        self._items = iter(items)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def close(self) -> None:
        self._items = iter(())

    def __enter__(self) -> ReplayStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncReplayStream:
    """An async stream of SDK chunk / event objects replayed from the cache."""

    response = None

    def __init__(self, items: List[Any]):
        self._items = iter(items)

    def __aiter__(self) -> AsyncReplayStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        self._items = iter(())

    async def __aenter__(self) -> AsyncReplayStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
