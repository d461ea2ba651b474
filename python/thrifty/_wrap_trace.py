"""One trace line (docs/trace_format.md) for a call made through thrifty.wrap(record=path).

The request is written as the provider received it (its SDK's shape, the model that answered),
without SDK transport options (headers, query, timeout): nothing that could hold a credential.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Dict, List

_SECRET_WORDS = ("api_key", "apikey", "authorization", "secret", "password", "token_key")


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _scrub(v)
            for k, v in value.items()
            if not any(w in str(k).lower() for w in _SECRET_WORDS)
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _answer(api: str, response: Dict[str, Any]) -> Dict[str, Any]:
    """text and tool calls of a response in its own shape."""
    text: List[str] = []
    calls: List[Dict[str, Any]] = []
    if api == "chat":
        choices = response.get("choices") or [{}]
        message = choices[0].get("message") or {}
        text.append(message.get("content") or "")
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            calls.append(
                {
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
    elif api == "messages":
        for block in response.get("content") or []:
            if block.get("type") == "text":
                text.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                calls.append(
                    {
                        "id": block.get("id"),
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}),
                    }
                )
    else:
        for item in response.get("output") or []:
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        text.append(part.get("text", ""))
            elif item.get("type") == "function_call":
                calls.append(
                    {
                        "id": item.get("call_id"),
                        "name": item.get("name"),
                        "arguments": item.get("arguments"),
                    }
                )
    return {"text": "".join(text), "tool_calls": calls}


def _responses_as_chat(request: Dict[str, Any]) -> Dict[str, Any]:
    """A Responses API request in the chat shape the trace format wants (``messages``)."""
    out = {k: v for k, v in request.items() if k not in ("input", "instructions")}
    messages: List[Dict[str, Any]] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    value = request.get("input")
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
    else:
        for item in value or []:
            if isinstance(item, dict) and item.get("role") in (
                "system",
                "developer",
                "user",
                "assistant",
            ):
                content = item.get("content")
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
                messages.append({"role": item["role"], "content": content})
    out["messages"] = messages
    return out


def trace_line(call: Any, head: str, provider_response: Any = None) -> str:
    """`provider_response`: the provider's response dict on a miss (None on a cache hit, when
    `head`, the stored response in the caller's shape, is written instead)."""
    from thrifty._wrap_engine import _SDK_OPTIONS, plain

    outcome = call.outcome
    if provider_response is None:
        response = json.loads(head)
        request = plain(call.plain_body if call.plain_body is not None else call.body)
        api = call.api.name
    else:
        response = provider_response
        request = plain({k: v for k, v in call.send_kwargs.items() if k not in _SDK_OPTIONS})
        api = call.target_api.name
    request = _scrub(request)
    request.pop("stream_options", None)
    if api == "responses":
        request = _responses_as_chat(request)
    request["model"] = outcome.model or request.get("model")
    answer = _answer(api, response)
    line = {
        "id": response.get("id") or uuid.uuid4().hex,
        "ts": time.time(),
        "namespace": outcome.namespace,
        "tags": outcome.tags,
        "request": request,
        "response": {
            **answer,
            "usage": response.get("usage"),
            "provider": outcome.provider or call.api.kind,
            "model": response.get("model") or outcome.model,
        },
        "thrifty": {
            "api": api,
            "requested_model": outcome.requested_model,
            "cache": outcome.cache,
            "cost_usd": outcome.cost_usd,
            "saved_usd": outcome.saved_usd,
            "latency_s": outcome.latency_s,
        },
    }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))
