"""A local server that speaks the OpenAI Chat Completions wire format, driven by a scripted brain.

Tests point the real ``openai`` SDK at it and decide, request by request, what the "model"
answers: call a tool, answer in text, call the same tool forever, fail with an HTTP error.
Every request is recorded, with the response that was sent back, so a test can prove what was
(and what was never) sent.

    def brain(request):                       # the request body, as JSON
        if not tool_results(request):
            return tool_call("get_temperature", {"city": "Paris"})
        return "It is 18 °C in Paris."

    with FakeOpenAI(brain) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-6-luna", messages=[...], tools=[...])
        server.requests        # [request body, ...] in arrival order
        server.exchanges       # [Exchange(request, status, response), ...]

What a brain may return:

- a ``str``: the assistant's text answer (``finish_reason`` "stop");
- a ``dict``: the assistant message itself (``{"content": ...}`` and/or ``{"tool_calls": [...]}``;
  build tool calls with :func:`tool_call`), ``finish_reason`` "tool_calls" when it has any;
- a :class:`Reply`: a message plus explicit ``usage`` (a partial override of the computed one),
  ``finish_reason`` or ``model``;
- or raise :class:`FakeAPIError` to answer with an OpenAI-style error (status, type, message).

Any other exception in the brain becomes a 500 ``server_error`` whose message names it, and is
kept in ``server.errors`` so a test can re-raise it.

Usage: unless a reply says otherwise, ``prompt_tokens`` and ``completion_tokens`` come from
:func:`count_tokens`, a crude, deterministic word-and-punctuation count (not a real tokenizer),
and ``cached_tokens`` is 0. Pass ``usage=callable(request, message) -> dict`` to the server to
compute usage another way for every reply.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``. Streaming (``"stream": true``) is
answered with a 400 for now; streaming and the Anthropic Messages format are planned.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

__all__ = [
    "Exchange",
    "FakeAPIError",
    "FakeOpenAI",
    "Reply",
    "count_tokens",
    "default_usage",
    "scripted",
    "tool_call",
    "tool_results",
]

Message = dict[str, Any]
BrainResult = Union[str, Message, "Reply"]
Brain = Callable[[dict[str, Any]], BrainResult]
UsageFn = Callable[[dict[str, Any], Message], dict[str, Any]]

_ids = itertools.count(1)  # tool-call ids unique across servers, so replays cannot collide


@dataclass
class Reply:
    """An assistant message with explicit usage, finish reason or model name.

    ``usage`` keys override the computed ones: ``prompt_tokens``, ``completion_tokens``,
    ``cached_tokens`` (goes to ``prompt_tokens_details``) and ``reasoning_tokens`` (goes to
    ``completion_tokens_details``). ``total_tokens`` is always recomputed.
    """

    message: Union[str, Message]
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: Optional[str] = None
    model: Optional[str] = None


class FakeAPIError(Exception):
    """Raised by a brain to answer with an HTTP error in OpenAI's error format."""

    def __init__(self, status: int, message: str, type: str = "server_error", code: Any = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type, code


@dataclass
class Exchange:
    """One request and what the server answered (``response`` is the JSON body sent back)."""

    request: dict[str, Any]
    status: int
    response: dict[str, Any]

    @property
    def usage(self) -> Optional[dict[str, Any]]:
        return self.response.get("usage")


def tool_call(name: str, arguments: Union[dict, str] = "{}", id: Optional[str] = None) -> Message:
    """An assistant message calling one tool. Put several in one message with ``tool_calls``."""
    return {"tool_calls": [_tool_call_item(name, arguments, id)]}


def _tool_call_item(name: str, arguments: Union[dict, str], id: Optional[str] = None) -> Message:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": id or f"call_fake_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def tool_results(request: dict[str, Any]) -> list[Message]:
    """The ``role: tool`` messages of a request, in order: what the agent's tools returned."""
    return [m for m in request.get("messages", []) if m.get("role") == "tool"]


def scripted(*replies: Union[BrainResult, Brain]) -> Brain:
    """A brain that gives ``replies`` in order (a callable is called with the request).

    Asking for more replies than scripted is an error (HTTP 500), so a test notices an agent that
    made more calls than expected.
    """
    queue = list(replies)
    lock = threading.Lock()

    def brain(request: dict[str, Any]) -> BrainResult:
        with lock:
            if not queue:
                raise FakeAPIError(500, f"scripted brain exhausted after {len(replies)} replies")
            reply = queue.pop(0)
        return reply(request) if callable(reply) else reply

    return brain


_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def count_tokens(value: Any) -> int:
    """A crude, deterministic token count: words and punctuation marks of the JSON text.

    Close enough to a BPE count for English to make realistic usage numbers; tests that need
    exact figures should read them from ``server.exchanges`` rather than recompute them.
    """
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return len(_TOKEN.findall(text))


def default_usage(request: dict[str, Any], message: Message) -> dict[str, int]:
    """Usage for a reply: tokens of the messages and tools sent, and of the message written."""
    prompt = count_tokens(request.get("messages", [])) + count_tokens(request.get("tools", []))
    completion = count_tokens(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        completion += count_tokens(call["function"]["name"]) + count_tokens(
            call["function"]["arguments"]
        )
    return {"prompt_tokens": prompt, "completion_tokens": max(1, completion), "cached_tokens": 0}


class FakeOpenAI:
    """An OpenAI-compatible Chat Completions server on 127.0.0.1, in a background thread.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). ``base_url`` is what
    to give ``openai.OpenAI(base_url=...)``. Thread-safe: the SDK may send requests from several
    threads; ``requests`` and ``exchanges`` are appended under a lock in arrival order.
    """

    def __init__(self, brain: Brain, *, usage: Optional[UsageFn] = None, port: int = 0):
        self.brain = brain
        self.usage = usage or default_usage
        self.requests: list[dict[str, Any]] = []
        self.exchanges: list[Exchange] = []
        self.errors: list[BaseException] = []  # exceptions raised by the brain (not FakeAPIError)
        self._port = port
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._responses = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            raise RuntimeError("FakeOpenAI is already running")
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name=f"fake-openai:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, for ``openai.OpenAI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Forgets recorded requests, exchanges and errors (the brain is kept)."""
        with self._lock:
            self.requests.clear()
            self.exchanges.clear()
            self.errors.clear()

    # -- request handling (called from the server's threads) ---------------------------------

    def _record_request(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)

    def _record(self, request: dict[str, Any], status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self.exchanges.append(Exchange(request, status, body))

    def _chat_completion(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not isinstance(request.get("messages"), list) or not request.get("model"):
            return _error(400, "'model' and 'messages' are required", "invalid_request_error")
        if request.get("stream"):
            return _error(
                400, "streaming is not supported by this fake yet", "invalid_request_error"
            )
        try:
            result = self.brain(request)
            reply = result if isinstance(result, Reply) else Reply(result)
            message = _assistant_message(reply.message)
            usage = dict(self.usage(request, message))
            usage.update(reply.usage)
            usage_block = _usage_block(usage)
        except FakeAPIError as e:
            return _error(e.status, e.message, e.type, e.code)
        except Exception as e:  # a bug in the test's brain: answer, and keep it for the test
            with self._lock:
                self.errors.append(e)
            return _error(500, f"the fake's brain raised {type(e).__name__}: {e}")
        finish_reason = reply.finish_reason or (
            "tool_calls" if message.get("tool_calls") else "stop"
        )
        return 200, {
            "id": f"chatcmpl-fake-{next(self._responses)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage_block,
            "system_fingerprint": "fp_fake",
        }


def _assistant_message(message: Union[str, Message]) -> Message:
    if isinstance(message, str):
        message = {"content": message}
    out: Message = {"role": "assistant", "content": message.get("content"), "refusal": None}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            c if "id" in c else _tool_call_item(c["function"]["name"], c["function"]["arguments"])
            for c in calls
        ]
    return out


def _usage_block(usage: dict[str, int]) -> dict[str, Any]:
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    cached = int(usage.get("cached_tokens", 0))
    reasoning = int(usage.get("reasoning_tokens", 0))
    if not 0 <= cached <= prompt or not 0 <= reasoning <= completion:
        raise ValueError(f"inconsistent usage {usage}: cached <= prompt, reasoning <= completion")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error(status: int, message: str, type: str = "server_error", code: Any = None):
    return status, {"error": {"message": message, "type": type, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's HTTP client expects
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait 40 ms

    def do_POST(self) -> None:
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(*_error(404, f"no route POST {self.path}", "invalid_request_error"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            request = json.loads(raw or b"null")
        except ValueError as e:
            self._send(*_error(400, f"the body is not JSON: {e}", "invalid_request_error"))
            return
        if not isinstance(request, dict):
            self._send(*_error(400, "the body must be a JSON object", "invalid_request_error"))
            return
        fake._record_request(request)
        status, body = fake._chat_completion(request)
        fake._record(request, status, body)
        self._send(status, body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            models = [{"id": "fake", "object": "model", "created": 0, "owned_by": "fake"}]
            self._send(200, {"object": "list", "data": models})
        else:
            self._send(*_error(404, f"no route GET {self.path}", "invalid_request_error"))

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("x-should-retry", "false")  # the SDK must not resend a scripted error
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `exchanges`
        pass
