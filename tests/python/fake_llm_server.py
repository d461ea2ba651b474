"""A local server speaking OpenAI Chat Completions, OpenAI Responses and Anthropic Messages.

Tests point the real ``openai`` and ``anthropic`` SDKs at it (``base_url=server.base_url`` for
OpenAI, ``base_url=server.anthropic_url`` for Anthropic) and script what the "model" answers.
Every request is counted per route, so a test can prove a cache hit never reached it.

    with FakeLLMServer() as server:          # default brain: echoes the last user message
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        server.count("chat")                 # requests to /v1/chat/completions so far

Routes: POST /v1/chat/completions (JSON, or SSE with ``stream``; a final usage chunk when
``stream_options.include_usage``), POST /v1/responses (JSON or SSE), POST /v1/messages (JSON, or
the Anthropic SSE event sequence). Usage is realistic: prompt tokens counted from the request
(a crude word-and-punctuation count), cached-token fields filled from ``cached_tokens``
(a callable of (api, request) -> int; default: none cached).

A brain is ``brain(api, request) -> str | Answer``; raising :class:`FakeAPIError` answers with
that provider's error format; ``Answer(fail_stream_after=n)`` breaks a stream after n events with
an in-stream error, as providers do when overloaded.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from fake_openai import count_tokens

__all__ = ["Answer", "FakeAPIError", "FakeLLMServer", "echo"]

_ids = itertools.count(1)


@dataclass
class Answer:
    text: str = ""
    tool_calls: Sequence[Tuple[str, Dict[str, Any]]] = ()  # (name, arguments)
    fail_stream_after: Optional[int] = None
    model: Optional[str] = None
    delay_s: float = 0.0


class FakeAPIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type


def _last_user_text(api: str, request: Dict[str, Any]) -> str:
    if api == "responses":
        value = request.get("input")
        return value if isinstance(value, str) else json.dumps(value)
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(
                p.get("text", "") for p in content or [] if isinstance(p, dict) and "text" in p
            )
    return ""


def echo(api: str, request: Dict[str, Any]) -> str:
    return f"You said: {_last_user_text(api, request)}. That is all I know, friend."


class FakeLLMServer:
    """An OpenAI- and Anthropic-compatible server on 127.0.0.1 in a background thread.

    Thread-safe: requests are recorded under a lock.
    """

    def __init__(
        self,
        brain: Callable[[str, Dict[str, Any]], Union[str, Answer]] = echo,
        cached_tokens: Optional[Callable[[str, Dict[str, Any]], int]] = None,
    ):
        self.brain = brain
        self.cached_tokens = cached_tokens or (lambda api, request: 0)
        self.requests: List[Tuple[str, Dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> FakeLLMServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        """For openai.OpenAI(base_url=...)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def anthropic_url(self) -> str:
        """For anthropic.Anthropic(base_url=...) (the SDK appends /v1/messages)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, api: Optional[str] = None) -> int:
        with self._lock:
            return sum(1 for a, _ in self.requests if api is None or a == api)

    def bodies(self, api: str) -> List[Dict[str, Any]]:
        with self._lock:
            return [r for a, r in self.requests if a == api]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- building responses -------------------------------------------------------------------

    def _answer(self, api: str, request: Dict[str, Any]) -> Answer:
        with self._lock:
            self.requests.append((api, request))
        result = self.brain(api, request)
        answer = Answer(text=result) if isinstance(result, str) else result
        if answer.delay_s:
            time.sleep(answer.delay_s)
        return answer

    def _usage(self, api: str, request: Dict[str, Any], answer: Answer) -> Tuple[int, int, int]:
        if api == "responses":
            prompt = count_tokens(request.get("input")) + count_tokens(request.get("instructions"))
        else:
            prompt = count_tokens(request.get("messages", [])) + count_tokens(
                request.get("system") or ""
            )
        prompt += count_tokens(request.get("tools", [])) if request.get("tools") else 0
        completion = count_tokens(answer.text) if answer.text else 0
        for name, arguments in answer.tool_calls:
            completion += count_tokens(name) + count_tokens(arguments)
        cached = min(prompt, max(0, int(self.cached_tokens(api, request))))
        return prompt, max(1, completion), cached


def _openai_calls(answer: Answer) -> List[Dict[str, Any]]:
    return [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for name, args in answer.tool_calls
    ]


def _chat(fake: FakeLLMServer, request: Dict[str, Any], answer: Answer):
    prompt, completion, cached = fake._usage("chat", request, answer)
    model = answer.model or request["model"]
    calls = _openai_calls(answer)
    n = int(request.get("n") or 1)
    message: Dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else "stop"
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion * n,
        "total_tokens": prompt + completion * n,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    base = {
        "id": f"chatcmpl-fake-{next(_ids)}",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }
    if not request.get("stream"):
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            for i in range(n)
        ]
        return {**base, "object": "chat.completion", "choices": choices, "usage": usage}
    chunks: List[Dict[str, Any]] = []

    def chunk(i: int, delta: Dict[str, Any], finish_reason: Optional[str] = None) -> None:
        choice = {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [choice]})

    for i in range(n):
        chunk(i, {"role": "assistant", "content": ""})
        words = answer.text.split(" ") if answer.text else []
        for j, word in enumerate(words):
            chunk(i, {"content": word + (" " if j < len(words) - 1 else "")})
        for k, call in enumerate(calls):
            head = {"index": k, "id": call["id"], "type": "function"}
            chunk(i, {"tool_calls": [{**head, "function": {"name": call["function"]["name"]}}]})
            arguments = call["function"]["arguments"]
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
        chunk(i, {}, finish)
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return [(None, c) for c in chunks] + [(None, "[DONE]")]


def _messages(fake: FakeLLMServer, request: Dict[str, Any], answer: Answer):
    prompt, completion, cached = fake._usage("messages", request, answer)
    content: List[Dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for name, args in answer.tool_calls:
        content.append(
            {"type": "tool_use", "id": f"toolu_{next(_ids)}", "name": name, "input": args}
        )
    usage = {
        "input_tokens": prompt - cached,
        "output_tokens": completion,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }
    message = {
        "id": f"msg_fake_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": answer.model or request["model"],
        "content": content,
        "stop_reason": "tool_use" if answer.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not request.get("stream"):
        return message
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(content):
        if block["type"] == "text":
            start_block = {"type": "text", "text": ""}
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start_block},
                )
            )
            words = block["text"].split(" ")
            for j, word in enumerate(words):
                delta = {"type": "text_delta", "text": word + (" " if j < len(words) - 1 else "")}
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": i, "delta": delta},
                    )
                )
        else:
            start_block = {**block, "input": {}}
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start_block},
                )
            )
            arguments = json.dumps(block["input"])
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": i, "delta": delta},
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": completion}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _responses(fake: FakeLLMServer, request: Dict[str, Any], answer: Answer):
    prompt, completion, cached = fake._usage("responses", request, answer)
    item_id = f"msg_{next(_ids)}"
    output: List[Dict[str, Any]] = []
    if answer.text:
        part = {"type": "output_text", "text": answer.text, "annotations": []}
        output.append(
            {
                "type": "message",
                "id": item_id,
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for name, args in answer.tool_calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{next(_ids)}",
                "call_id": f"call_{next(_ids)}",
                "name": name,
                "arguments": json.dumps(args),
                "status": "completed",
            }
        )
    response = {
        "id": f"resp_fake_{next(_ids)}",
        "object": "response",
        "created_at": time.time(),
        "status": "completed",
        "model": answer.model or request["model"],
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }
    if not request.get("stream"):
        return response
    seq = itertools.count()
    events = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": next(seq),
                "response": {**response, "status": "in_progress", "output": [], "usage": None},
            },
        )
    ]
    for word in answer.text.split(" ") if answer.text else []:
        delta = {
            "type": "response.output_text.delta",
            "sequence_number": next(seq),
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": word + " ",
            "logprobs": [],
        }
        events.append(("response.output_text.delta", delta))
    events.append(
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": next(seq), "response": response},
        )
    )
    return events


_ROUTES = {
    "/v1/chat/completions": ("chat", _chat),
    "/v1/messages": ("messages", _messages),
    "/v1/responses": ("responses", _responses),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        fake: FakeLLMServer = self.server.fake  # type: ignore[attr-defined]
        route = _ROUTES.get(self.path.split("?")[0].rstrip("/"))
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if route is None:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        api, build = route
        try:
            answer = fake._answer(api, request)
        except FakeAPIError as e:
            if api == "messages":
                body = {"type": "error", "error": {"type": e.type, "message": e.message}}
            else:
                body = {
                    "error": {"message": e.message, "type": e.type, "param": None, "code": None}
                }
            self._json(e.status, body)
            return
        result = build(fake, request, answer)
        if not request.get("stream"):
            self._json(200, result)
            return
        lines = []
        for i, (event, data) in enumerate(result):
            if answer.fail_stream_after is not None and i == answer.fail_stream_after:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                if api == "messages":
                    lines.append(
                        f"event: error\ndata: {json.dumps({'type': 'error', 'error': error})}\n\n"
                    )
                else:
                    lines.append(
                        f"data: {json.dumps({'error': {'message': 'Overloaded', 'type': 'server_error'}})}\n\n"
                    )
                break
            text = data if isinstance(data, str) else json.dumps(data)
            lines.append((f"event: {event}\n" if event else "") + f"data: {text}\n\n")
        payload = "".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self._end_with(payload)

    def _json(self, status: int, body: Dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("x-should-retry", "false")
        self._end_with(data)

    def _end_with(self, body: bytes) -> None:
        """Headers and body in one write: two small writes cost a delayed-ACK wait (~40 ms)
        on some requests, which would drown the latencies the benchmark compares."""
        self._headers_buffer.append(b"\r\n" + body)  # what end_headers() adds, plus the body
        self.flush_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
