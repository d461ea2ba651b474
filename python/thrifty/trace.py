"""Replay traces: JSONL, one logged LLM call a line (docs/trace_format.md).

``read_trace(path)`` yields checked records, ``write_trace(path, records)`` and ``TraceWriter``
write them, ``validate_record(record)`` checks one, and ``import_openai_logs(...)`` converts
OpenAI Chat Completions request/response logs. The C++ replay engine reads the same format with
the same rules (cpp/src/replay/trace_record.cc); errors name ``file:line: field``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Union

from thrifty._core import InvalidArgumentError

__all__ = [
    "TraceWriter",
    "import_openai_logs",
    "read_trace",
    "record_from_call",
    "validate_record",
    "write_trace",
]

PathLike = Union[str, "os.PathLike[str]"]
_USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "promptTokenCount",
)


def _brief(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, field: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{where}: {field}: {message}")


def _number(value: Any, lo: float, hi: float) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and lo <= value <= hi
    )


def validate_record(record: Any, where: str = "<record>") -> Dict[str, Any]:
    """Checks one trace record (a dict) and returns it; InvalidArgumentError (a ValueError)
    naming ``where``, the field and what is accepted otherwise."""
    if not isinstance(record, dict):
        raise InvalidArgumentError(
            f"{where}: a trace line must be a JSON object, got {type(record).__name__}"
        )
    if "ts" not in record:
        raise _fail(where, "ts", "missing; expected the call's time in seconds (e.g. Unix seconds)")
    if not _number(record["ts"], 0, 1e13):
        raise _fail(
            where, "ts", f"expected a finite number of seconds >= 0, got {_brief(record['ts'])}"
        )
    rid = record.get("id")
    if rid is not None and (not isinstance(rid, (str, int)) or isinstance(rid, bool)):
        raise _fail(where, "id", f"expected a string, got {_brief(rid)}")
    ns = record.get("namespace")
    if ns is not None and not isinstance(ns, str):
        raise _fail(where, "namespace", "expected a string")
    tags = record.get("tags")
    if tags is not None and not isinstance(tags, dict):
        raise _fail(where, "tags", "expected an object of tag: value")
    request = record.get("request")
    if not isinstance(request, dict):
        raise _fail(
            where,
            "request",
            "missing or not an object; expected the OpenAI chat or Anthropic messages request, "
            'including "model"',
        )
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise _fail(where, "request.model", "missing; expected the model name the call was sent to")
    if not isinstance(request.get("messages"), list):
        raise _fail(where, "request.messages", "missing or not an array of messages")
    response = record.get("response")
    if response is not None:
        if not isinstance(response, dict):
            raise _fail(where, "response", "expected an object")
        provider = response.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise _fail(where, "response.provider", "expected a string")
        usage = response.get("usage")
        if usage is not None:
            if not isinstance(usage, dict):
                raise _fail(where, "response.usage", "expected the provider's usage object")
            for key in _USAGE_KEYS:
                value = usage.get(key)
                if value is not None and not (
                    _number(value, 0, 1e15) and float(value).is_integer()
                ):
                    raise _fail(
                        where,
                        f"response.usage.{key}",
                        f"expected a non-negative integer token count, got {_brief(value)}",
                    )
    labels = record.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            raise _fail(
                where,
                "labels",
                "expected an object {model: {quality, output_tokens, cost_usd}}, "
                f"got {_brief(labels)}",
            )
        for model, label in labels.items():
            field = f"labels.{model}"
            if not isinstance(label, dict):
                raise _fail(
                    where,
                    field,
                    f"expected an object with quality / output_tokens / cost_usd, got "
                    f"{_brief(label)}",
                )
            q = label.get("quality")
            if q is not None and not _number(q, 0, 1):
                raise _fail(where, f"{field}.quality", f"expected a number in [0, 1], got {q!r}")
            t = label.get("output_tokens")
            if t is not None and not (_number(t, 0, 1e12) and float(t).is_integer()):
                raise _fail(
                    where, f"{field}.output_tokens", f"expected a non-negative integer, got {t!r}"
                )
            c = label.get("cost_usd")
            if c is not None and not _number(c, 0, 1e12):
                raise _fail(
                    where, f"{field}.cost_usd", f"expected a non-negative number (USD), got {c!r}"
                )
    return record


def read_trace(path: PathLike, *, validate: bool = True) -> Iterator[Dict[str, Any]]:
    """Yields the records of a JSONL trace, streaming (blank lines are skipped).

    Errors are InvalidArgumentError naming ``path:line``; a missing file is NotFoundError.
    """
    lines = _json_lines(os.fspath(path), "cannot open trace: no such file", require_object=False)
    for record, where in lines:
        if validate:
            validate_record(record, where)
        yield record


class TraceWriter:
    """Appends records to a JSONL trace, one line each, flushed per record.

    Thread-safe (a lock around each write), so ``thrifty.wrap(record=path)`` can share one
    writer across threads. Records are validated before they are written.
    """

    def __init__(self, path: PathLike, *, append: bool = True):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._file: Optional[IO[str]] = open(  # noqa: SIM115  (closed by close())
            self.path, "a" if append else "w", encoding="utf-8"
        )

    def write(self, record: Dict[str, Any]) -> None:
        validate_record(record, f"{self.path}:<new record>")
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        with self._lock:
            if self._file is None:
                raise InvalidArgumentError(f"{self.path}: TraceWriter is closed")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_trace(path: PathLike, records: Iterable[Dict[str, Any]]) -> int:
    """Writes ``records`` to ``path`` (overwriting it); returns how many were written."""
    n = 0
    with TraceWriter(path, append=False) as writer:
        for record in records:
            writer.write(record)
            n += 1
    return n


def _dump(obj: Any) -> Any:
    """SDK objects (pydantic) to plain dicts; dicts and lists as they are."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


def _response_fields(response: Dict[str, Any], provider: str) -> Dict[str, Any]:
    """The trace's response object from an OpenAI chat.completion or Anthropic message dict."""
    text, tool_calls = "", []
    if "choices" in response:  # OpenAI chat.completion
        choices = response.get("choices") or [{}]
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        tool_calls = message.get("tool_calls") or []
    elif isinstance(response.get("content"), list):  # Anthropic message
        for block in response["content"]:
            if block.get("type") == "text":
                text += block.get("text", "")
            elif block.get("type") == "tool_use":
                tool_calls.append(block)
    out = {"text": text, "provider": provider}
    if tool_calls:
        out["tool_calls"] = tool_calls
    if response.get("usage") is not None:
        out["usage"] = response["usage"]
    if response.get("model"):
        out["model"] = response["model"]
    return out


_SECRET_KEYS = {"api_key", "authorization", "extra_headers", "headers"}


def record_from_call(
    request: Any,
    response: Any = None,
    *,
    provider: Optional[str] = None,
    ts: Optional[float] = None,
    id: Optional[str] = None,
    namespace: str = "",
    tags: Optional[Dict[str, Any]] = None,
    labels: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """One trace record from an SDK request (kwargs dict) and its response (SDK object or dict).

    ``provider`` defaults to "anthropic" for Anthropic-shaped requests (a top-level ``system``
    or a claude model) and "openai" otherwise. Transport fields that may carry secrets
    (api_key, headers) are dropped, never written.
    """
    request = {k: _dump(v) for k, v in dict(request).items() if k not in _SECRET_KEYS}
    response = _dump(response) if response is not None else None
    if provider is None:
        model = str(request.get("model", ""))
        provider = "anthropic" if "system" in request or model.startswith("claude") else "openai"
    record: Dict[str, Any] = {
        "id": id,
        "ts": time.time() if ts is None else ts,
        "namespace": namespace,
        "tags": dict(tags or {}),
        "request": request,
    }
    if id is None:
        record.pop("id")
    if isinstance(response, dict):
        record["response"] = _response_fields(response, provider)
    if labels:
        record["labels"] = labels
    return record


def _openai_pair_to_record(
    obj: Dict[str, Any], where: str, namespace: str
) -> Optional[Dict[str, Any]]:
    """A {"request", "response"} pair, or an OpenAI Batch API output line joined with its
    input (``body``), to a trace record; None for a failed call (never replayed)."""
    request = obj.get("request")
    response = obj.get("response")
    if isinstance(response, dict) and "body" in response and "status_code" in response:
        if response.get("status_code") != 200:
            return None
        response = response["body"]
    if isinstance(request, dict) and "body" in request and "url" in request:
        request = request["body"]
    if not isinstance(request, dict) or "messages" not in request:
        raise InvalidArgumentError(
            f"{where}: expected a request object with 'model' and 'messages' (accepted shapes: "
            '{"request": {...}, "response": {...}}, or an OpenAI Batch API output line with its '
            "input line)"
        )
    if response is not None and not isinstance(response, dict):
        raise InvalidArgumentError(f"{where}: response: expected a chat.completion object")
    if isinstance(response, dict) and response.get("error"):
        return None
    ts = obj.get("ts") or obj.get("timestamp")
    if ts is None and isinstance(response, dict):
        ts = response.get("created")
    if ts is None:
        raise InvalidArgumentError(
            f"{where}: no time: expected 'ts' or 'timestamp' on the line, or 'created' on the "
            "response"
        )
    request = dict(request)
    if "model" not in request and isinstance(response, dict) and response.get("model"):
        request["model"] = response["model"]
    rid = obj.get("id") or obj.get("custom_id") or (response or {}).get("id")
    return record_from_call(
        request,
        response,
        provider="openai",
        ts=float(ts),
        id=rid,
        namespace=obj.get("namespace", namespace),
        tags=obj.get("tags"),
    )


def import_openai_logs(
    source: PathLike,
    destination: PathLike,
    *,
    batch_input: Optional[PathLike] = None,
    namespace: str = "",
) -> int:
    """Converts OpenAI Chat Completions logs to a trace at ``destination``; returns the count.

    Accepted shapes of ``source`` (JSONL, one call a line):

    1. ``{"request": {chat.completions.create kwargs}, "response": {chat.completion object},
       "ts": 1732000000.0}`` -- what most logging middleware writes (``ts`` or ``timestamp``
       may be left out: the response's ``created`` is used). Optional ``id``, ``namespace``,
       ``tags`` are kept.
    2. OpenAI Batch API output lines ``{"custom_id", "response": {"status_code", "body"}}``,
       with ``batch_input`` the batch's input file (``{"custom_id", "method", "url", "body"}``):
       joined on ``custom_id``.

    Failed calls (non-200 status, ``error`` responses) are skipped: they are not traffic a
    policy could have served. Lines are written sorted by time (replay needs time order).
    """
    source = os.fspath(source)
    inputs: Dict[str, Dict[str, Any]] = {}
    if batch_input is not None:
        for record in _json_lines(os.fspath(batch_input)):
            line_obj, where = record
            inputs[str(line_obj.get("custom_id"))] = line_obj
    out: List[Dict[str, Any]] = []
    for obj, where in _json_lines(source):
        if batch_input is not None and "custom_id" in obj and "request" not in obj:
            matched = inputs.get(str(obj["custom_id"]))
            if matched is None:
                raise InvalidArgumentError(
                    f"{where}: custom_id {obj['custom_id']!r} is not in {os.fspath(batch_input)}"
                )
            obj = dict(obj, request=matched)
        record = _openai_pair_to_record(obj, where, namespace)
        if record is not None:
            validate_record(record, where)
            out.append(record)
    out.sort(key=lambda r: r["ts"])
    return write_trace(destination, out)


def _json_lines(path: str, missing: str = "no such file", require_object: bool = True):
    """Yields (object, "path:line") per non-blank line; errors name the line."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115  (closed by the with below)
    except FileNotFoundError:
        from thrifty._core import NotFoundError

        raise NotFoundError(f"{path}: {missing}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InvalidArgumentError(
                    f"{where}: malformed JSON (column {e.colno}): {e.msg}"
                ) from None
            if require_object and not isinstance(obj, dict):
                raise InvalidArgumentError(f"{where}: expected a JSON object per line")
            yield obj, where


def count_lines(path: PathLike) -> int:
    """Non-blank lines in a file (for progress totals)."""
    with Path(path).open("rb") as f:
        return sum(1 for line in f if line.strip())
