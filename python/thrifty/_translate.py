"""Translation between the OpenAI chat and the Anthropic messages shapes (requests and responses).

thrifty.wrap uses it when model="auto" routes a call written for one SDK to a model served by the
other. Everything here works on plain dicts (the JSON the SDKs send and receive). What cannot be
translated faithfully is refused with an InvalidArgumentError that names the field, never dropped
silently when it could change the answer.

Thread-safety: pure functions.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

from thrifty._core import InvalidArgumentError

__all__ = [
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
]

# The Anthropic API requires max_tokens; an OpenAI request may leave it out.
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096

# OpenAI chat fields with no Anthropic equivalent that cannot change what the answer says
# (billing, tracing, reproducibility hints): dropped when translating.
_OPENAI_DROPPED = {
    "user",
    "seed",
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "parallel_tool_calls",
    "stream_options",
}
_OPENAI_REFUSED = {
    "logprobs": "Anthropic returns no log-probabilities",
    "top_logprobs": "Anthropic returns no log-probabilities",
    "logit_bias": "Anthropic has no logit bias",
    "response_format": "Anthropic has no response_format (use a tool with an input schema)",
    "audio": "Anthropic has no audio output",
    "modalities": "Anthropic has no audio output",
    "prediction": "Anthropic has no predicted outputs",
    "functions": "the legacy `functions` field is not translated (use `tools`)",
    "function_call": "the legacy `function_call` field is not translated (use `tool_choice`)",
    "web_search_options": "web search options are provider-specific",
    "reasoning_effort": "reasoning_effort is OpenAI-specific",
}
_ANTHROPIC_DROPPED = {"metadata", "top_k", "service_tier", "container", "context_management"}
_ANTHROPIC_REFUSED = {
    "thinking": "extended thinking has no OpenAI chat equivalent",
    "mcp_servers": "MCP servers are Anthropic-specific",
}

_FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


def _refuse(where: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"cannot route across providers: {where}: {why}")


def _text_of(content: Any, where: str) -> str:
    """The text of a system/developer/tool content (a string or a list of text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(part.get("text", ""))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise _refuse(f"{where}[{i}]", f"only text parts are accepted here, got '{kind}'")
    return "\n\n".join(parts)


# -- OpenAI chat -> Anthropic messages ---------------------------------------------------------


def _image_to_anthropic(part: Dict[str, Any], where: str) -> Dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0]
        if ";base64" not in header or not data:
            raise _refuse(where, "an image data URL must be base64 encoded")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _refuse(where, "an image_url must be a data: URL or an http(s) URL")


def _user_content_to_anthropic(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    blocks = []
    for i, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_to_anthropic(part, f"{where}[{i}]"))
        else:
            raise _refuse(
                f"{where}[{i}]", f"content part '{kind}' is not accepted (text and image_url are)"
            )
    return blocks


def _append(messages: List[Dict[str, Any]], role: str, blocks: List[Dict[str, Any]]) -> None:
    """Anthropic wants alternating roles: consecutive same-role messages are merged."""
    if messages and messages[-1]["role"] == role:
        last = messages[-1]
        if isinstance(last["content"], str):
            last["content"] = [{"type": "text", "text": last["content"]}]
        last["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def openai_request_to_anthropic(request: Dict[str, Any], model: str) -> Dict[str, Any]:
    """OpenAI chat.completions.create kwargs -> Anthropic messages.create kwargs for `model`."""
    for field, why in _OPENAI_REFUSED.items():
        if request.get(field) is not None:
            raise _refuse(field, why)
    if (request.get("n") or 1) != 1:
        raise _refuse("n", f"Anthropic returns one answer per call, n={request['n']} was asked")
    system: List[str] = []
    messages: List[Dict[str, Any]] = []
    for i, message in enumerate(request.get("messages") or []):
        where = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content, f"{where}.content"))
        elif role == "user":
            converted = _user_content_to_anthropic(content, f"{where}.content")
            if isinstance(converted, str):
                if messages and messages[-1]["role"] == "user":
                    _append(messages, "user", [{"type": "text", "text": converted}])
                else:
                    messages.append({"role": "user", "content": converted})
            else:
                _append(messages, "user", converted)
        elif role == "assistant":
            blocks: List[Dict[str, Any]] = []
            text = _text_of(content, f"{where}.content") if content else ""
            if text:
                blocks.append({"type": "text", "text": text})
            for j, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError as e:
                    raise _refuse(
                        f"{where}.tool_calls[{j}].function.arguments", f"not JSON ({e})"
                    ) from None
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": arguments,
                    }
                )
            if not blocks:
                blocks.append({"type": "text", "text": ""})
            _append(messages, "assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text_of(content, f"{where}.content"),
            }
            _append(messages, "user", [result])
        else:
            raise _refuse(
                f"{where}.role", f"'{role}' (accepted: system, developer, user, assistant, tool)"
            )
    out: Dict[str, Any] = {"model": model, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    out["max_tokens"] = int(max_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS)
    if request.get("temperature") is not None:
        out["temperature"] = min(float(request["temperature"]), 1.0)  # Anthropic: 0..1
    if request.get("top_p") is not None:
        out["top_p"] = request["top_p"]
    stop = request.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("tools"):
        out["tools"] = [
            _tool_to_anthropic(t, f"tools[{i}]") for i, t in enumerate(request["tools"])
        ]
    choice = request.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice_to_anthropic(choice)
        if request.get("parallel_tool_calls") is False and out["tool_choice"]["type"] != "none":
            out["tool_choice"]["disable_parallel_tool_use"] = True
    if request.get("stream"):
        out["stream"] = True
    return out


def _tool_to_anthropic(tool: Dict[str, Any], where: str) -> Dict[str, Any]:
    if tool.get("type") != "function":
        raise _refuse(f"{where}.type", f"'{tool.get('type')}' (only function tools translate)")
    function = tool.get("function") or {}
    out = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice_to_anthropic(choice: Any) -> Dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise _refuse("tool_choice", f"{choice!r} (accepted: auto, none, required, a function)")


def anthropic_response_to_openai(message: Dict[str, Any], created: Optional[int] = None):
    """An Anthropic Message (dict) -> an OpenAI ChatCompletion (dict)."""
    texts = []
    calls = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
        # thinking / redacted_thinking blocks have no chat equivalent: not part of the answer.
    assistant: Dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        assistant["tool_calls"] = calls
    usage = message.get("usage") or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + written
    completion = int(usage.get("output_tokens") or 0)
    return {
        "id": message.get("id") or "",
        "object": "chat.completion",
        "created": int(created if created is not None else time.time()),
        "model": message.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": assistant,
                "logprobs": None,
                "finish_reason": _STOP_TO_FINISH.get(message.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


# -- Anthropic messages -> OpenAI chat ---------------------------------------------------------


def _image_to_openai(block: Dict[str, Any], where: str) -> Dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = source.get("url")
    else:
        raise _refuse(where, f"image source '{source.get('type')}' (base64 and url translate)")
    return {"type": "image_url", "image_url": {"url": url}}


def anthropic_request_to_openai(request: Dict[str, Any], model: str) -> Dict[str, Any]:
    """Anthropic messages.create kwargs -> OpenAI chat.completions.create kwargs for `model`."""
    for field, why in _ANTHROPIC_REFUSED.items():
        if request.get(field) is not None:
            raise _refuse(field, why)
    messages: List[Dict[str, Any]] = []
    system = request.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system, "system")})
    for i, message in enumerate(request.get("messages") or []):
        where = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant"):
            raise _refuse(f"{where}.role", f"'{role}' (accepted: user, assistant)")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        parts: List[Dict[str, Any]] = []
        calls: List[Dict[str, Any]] = []
        for j, block in enumerate(content or []):
            kind = block.get("type")
            bwhere = f"{where}.content[{j}]"
            if kind == "text":
                parts.append({"type": "text", "text": block.get("text", "")})
            elif kind == "image" and role == "user":
                parts.append(_image_to_openai(block, bwhere))
            elif kind == "tool_use" and role == "assistant":
                calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {
                            "name": block.get("name"),
                            "arguments": json.dumps(block.get("input") or {}),
                        },
                    }
                )
            elif kind == "tool_result" and role == "user":
                result = block.get("content")
                text = result if isinstance(result, str) else _text_of(result, f"{bwhere}.content")
                if block.get("is_error"):
                    text = f"Error: {text}"
                messages.append(
                    {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
                )
            elif kind in ("thinking", "redacted_thinking") and role == "assistant":
                continue
            else:
                raise _refuse(bwhere, f"a '{kind}' block in a {role} message does not translate")
        if role == "assistant":
            text = "".join(p["text"] for p in parts)
            out_message: Dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                out_message["tool_calls"] = calls
            messages.append(out_message)
        elif parts:
            if all(p["type"] == "text" for p in parts):
                messages.append({"role": "user", "content": "".join(p["text"] for p in parts)})
            else:
                messages.append({"role": "user", "content": parts})
    out: Dict[str, Any] = {"model": model, "messages": messages}
    if request.get("max_tokens") is not None:
        out["max_completion_tokens"] = int(request["max_tokens"])
    for field in ("temperature", "top_p"):
        if request.get(field) is not None:
            out[field] = request[field]
    if request.get("stop_sequences"):
        out["stop"] = list(request["stop_sequences"])
    if request.get("tools"):
        out["tools"] = [_tool_to_openai(t, f"tools[{i}]") for i, t in enumerate(request["tools"])]
    choice = request.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice_to_openai(choice)
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    if request.get("stream"):
        out["stream"] = True
    return out


def _tool_to_openai(tool: Dict[str, Any], where: str) -> Dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise _refuse(f"{where}.type", f"'{tool['type']}' (server tools do not translate)")
    function: Dict[str, Any] = {
        "name": tool.get("name"),
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice_to_openai(choice: Dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "none":
        return "none"
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise _refuse("tool_choice", f"{choice!r} (accepted: auto, none, any, tool)")


def openai_response_to_anthropic(completion: Dict[str, Any]) -> Dict[str, Any]:
    """An OpenAI ChatCompletion (dict, one choice) -> an Anthropic Message (dict)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: List[Dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {"_raw_arguments": function.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    if not content:
        content.append({"type": "text", "text": message.get("refusal") or ""})
    usage = completion.get("usage") or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    raw_id = str(completion.get("id") or "")
    return {
        "id": raw_id if raw_id.startswith("msg") else f"msg_{raw_id}",
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or "",
        "content": content,
        "stop_reason": _FINISH_TO_STOP.get(choice.get("finish_reason") or "", "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt - cached,
            "output_tokens": int(usage.get("completion_tokens") or 0),
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        },
    }
