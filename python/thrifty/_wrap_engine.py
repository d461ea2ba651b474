"""The pipeline behind thrifty.wrap: one call from the SDK's kwargs to the SDK's response object.

    begin(api, kwargs)  -> a hit (the SDK response / replayed stream), or a _Call to send
    _Call.send()        -> the provider SDK call (sync), or `await _Call.send_async()`
    finish(call, raw)   -> the SDK response / pass-through stream, with accounting done

begin: per-call options, request key (C++), exact cache, semantic cache, routing, prompt
assembly, agent reservation and ledger check. finish: usage and cost, cache store (complete
responses only), agent settle, prefix tracker, ledger, trace, stats, on_call. Every optional part
(cache, semantic cache, router, prompt builder, tracker, ledger, trace file, on_call) that fails
degrades to a pass-through call with a DegradedWarning and a counter in thrifty_stats();
provider errors and limit refusals reach the caller unchanged.

Thread-safety: an Engine is thread-safe (stats and the trace file are guarded by a lock; the
caches, router and ledger are thread-safe themselves). A _Call belongs to one call.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from thrifty import _stream, _translate
from thrifty._core import InvalidArgumentError, NotFoundError, Usage, request_key
from thrifty.agent import AgentRun, current_run
from thrifty.catalog import Catalog

_SDK_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")
_MODES = (None, "default", "no-cache", "no-store", "refresh")
_OPTION_KEYS = ("cache", "ttl", "namespace", "quality_threshold", "tags")
_ZERO = Usage()


class DegradedWarning(UserWarning):
    """An optional part of thrifty.wrap failed; the call went through without it."""


@dataclasses.dataclass
class CallOutcome:
    """What thrifty did with one call (thrifty.last_call(), on_call).

    ``cache`` is "exact", "semantic", "miss" or "off" (caching disabled for the call);
    ``decision`` is the router's decision when model="auto" was routed; ``savings`` splits
    ``saved_usd`` by lever: exact, semantic, routing, prefix_cache. For a stream the cost fields
    are filled in when the stream ends (``complete`` then says whether it ran to its end).
    """

    api: str
    requested_model: str
    model: str = ""
    provider: str = ""
    cache: str = "miss"
    similarity: Optional[float] = None
    decision: Any = None
    route_reason: str = ""
    translated: bool = False
    stream: bool = False
    usage: Optional[Usage] = None
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    savings: Dict[str, float] = dataclasses.field(default_factory=dict)
    latency_s: float = 0.0
    namespace: str = ""
    tags: Dict[str, Any] = dataclasses.field(default_factory=dict)
    complete: bool = True
    error: Optional[str] = None
    warnings: List[str] = dataclasses.field(default_factory=list)


_LAST: contextvars.ContextVar[Optional[CallOutcome]] = contextvars.ContextVar(
    "thrifty_last_call", default=None
)


def last_call() -> Optional[CallOutcome]:
    """The outcome of the last wrapped call made in this thread / asyncio task, or None."""
    return _LAST.get()


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """The per-call ``thrifty=`` keyword, validated."""

    cache: Optional[str] = None
    ttl: Optional[float] = None
    namespace: Optional[str] = None
    quality_threshold: Optional[float] = None
    tags: Optional[Mapping[str, Any]] = None

    @property
    def read(self) -> bool:
        return self.cache not in ("no-cache", "refresh")

    @property
    def write(self) -> bool:
        return self.cache not in ("no-cache", "no-store")

    @staticmethod
    def parse(value: Any) -> CallOptions:
        if value is None:
            return _DEFAULT_OPTIONS
        if isinstance(value, CallOptions):
            return value
        if not isinstance(value, Mapping):
            raise InvalidArgumentError(
                f"thrifty=: expected a dict of options ({', '.join(_OPTION_KEYS)}), "
                f"got {type(value).__name__}"
            )
        unknown = sorted(set(value) - set(_OPTION_KEYS))
        if unknown:
            raise InvalidArgumentError(
                f"thrifty=: unknown option {unknown[0]!r}; accepted: {', '.join(_OPTION_KEYS)}"
            )
        if value.get("cache") not in _MODES:
            raise InvalidArgumentError(
                f"thrifty={{'cache': {value.get('cache')!r}}}: accepted modes are "
                "'no-cache' (neither read nor store), 'no-store' (read only), "
                "'refresh' (store only), 'default'"
            )
        ttl = value.get("ttl")
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise InvalidArgumentError(f"thrifty={{'ttl': {ttl!r}}}: expected seconds > 0")
        threshold = value.get("quality_threshold")
        if threshold is not None and not (
            isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0
        ):
            raise InvalidArgumentError(
                f"thrifty={{'quality_threshold': {threshold!r}}}: expected a number in [0, 1]"
            )
        namespace = value.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidArgumentError(f"thrifty={{'namespace': {namespace!r}}}: expected a str")
        tags = value.get("tags")
        if tags is not None and not isinstance(tags, Mapping):
            raise InvalidArgumentError(f"thrifty={{'tags': {tags!r}}}: expected a dict")
        return CallOptions(
            cache=value.get("cache"),
            ttl=None if ttl is None else float(ttl),
            namespace=namespace,
            quality_threshold=None if threshold is None else float(threshold),
            tags=dict(tags) if tags else None,
        )


_DEFAULT_OPTIONS = CallOptions()


# -- the SDK surfaces -----------------------------------------------------------------------------


class _Api:
    """One SDK method thrifty wraps: its response and stream item types, how to parse usage."""

    def __init__(self, name: str, kind: str, path: Tuple[str, ...]):
        self.name, self.kind, self.path = name, kind, path
        self._types: Optional[Tuple[Any, Callable[[Any], Any], Callable[[str], Any]]] = None

    def _load(self):
        if self._types is None:
            import pydantic

            if self.name == "chat":
                from openai.types.chat import ChatCompletion, ChatCompletionChunk

                self._types = (
                    ChatCompletion,
                    ChatCompletionChunk.model_validate,
                    ChatCompletionChunk.model_validate_json,
                )
            elif self.name == "messages":
                from anthropic.types import Message, RawMessageStreamEvent

                adapter = pydantic.TypeAdapter(RawMessageStreamEvent)
                self._types = (Message, adapter.validate_python, adapter.validate_json)
            else:
                from openai.types.responses import Response, ResponseStreamEvent

                adapter = pydantic.TypeAdapter(ResponseStreamEvent)
                self._types = (Response, adapter.validate_python, adapter.validate_json)
        return self._types

    def response_from_json(self, text: str) -> Any:
        model = self._load()[0]
        try:
            return model.model_validate_json(text)
        except Exception:  # the SDKs accept what their types do not: build it as they do
            return self._construct(model, json.loads(text))

    def response_from_dict(self, value: Dict[str, Any]) -> Any:
        model = self._load()[0]
        try:
            return model.model_validate(value)
        except Exception:
            return self._construct(model, value)

    def item_from_json(self, text: str) -> Any:
        try:
            return self._load()[2](text)
        except Exception:
            return self._construct(self._item_type(), json.loads(text))

    def item_from_dict(self, value: Dict[str, Any]) -> Any:
        try:
            return self._load()[1](value)
        except Exception:
            return self._construct(self._item_type(), value)

    def _item_type(self) -> Any:
        if self.name == "chat":
            from openai.types.chat import ChatCompletionChunk

            return ChatCompletionChunk
        if self.name == "messages":
            from anthropic.types import RawMessageStreamEvent

            return RawMessageStreamEvent
        from openai.types.responses import ResponseStreamEvent

        return ResponseStreamEvent

    def _construct(self, model: Any, value: Dict[str, Any]) -> Any:
        if self.kind == "anthropic":
            from anthropic._models import construct_type
        else:
            from openai._models import construct_type
        return construct_type(type_=model, value=value)

    def usage_of(self, obj: Any) -> Usage:
        """Usage of an SDK response object (the parsers read SDK objects too)."""
        usage = getattr(obj, "usage", None)
        if usage is None:
            return Usage()
        return Usage.from_anthropic(usage) if self.kind == "anthropic" else Usage.from_openai(usage)

    def usage(self, response: Dict[str, Any]) -> Usage:
        usage = response.get("usage") or {}
        return Usage.from_anthropic(usage) if self.kind == "anthropic" else Usage.from_openai(usage)

    def accumulator(self):
        if self.name == "chat":
            return _stream.ChatAccumulator()
        if self.name == "messages":
            return _stream.MessageAccumulator()
        return _ResponsesAccumulator()

    def synthesize(self, response: Dict[str, Any], include_usage: bool) -> Optional[List[Dict]]:
        if self.name == "chat":
            return _stream.chat_chunks(response, include_usage)
        if self.name == "messages":
            return _stream.message_events(response)
        return None  # a Responses stream is replayed only from the events it was stored from


class _ResponsesAccumulator:
    def __init__(self) -> None:
        self.response: Optional[Dict[str, Any]] = None

    def add(self, event: Dict[str, Any]) -> None:
        if event.get("type") == "response.completed":
            self.response = event.get("response")

    @property
    def complete(self) -> bool:
        return self.response is not None

    def result(self) -> Dict[str, Any]:
        return dict(self.response or {})


APIS = {
    "chat": _Api("chat", "openai", ("chat", "completions", "create")),
    "messages": _Api("messages", "anthropic", ("messages", "create")),
    "responses": _Api("responses", "openai", ("responses", "create")),
}


def _dump(obj: Any) -> Dict[str, Any]:
    return obj.model_dump(mode="json", by_alias=True, exclude_unset=True)


def plain(value: Any) -> Any:
    """`value` with SDK model objects (a previous response's message, ...) turned into dicts."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not _is_not_given(v)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return plain(dict(value))
    if hasattr(value, "__iter__"):
        return [plain(v) for v in value]
    return value


def _is_not_given(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit")


def _last_user_text(api: str, body: Dict[str, Any]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(the final user question, the request without it) when the semantic cache applies."""
    if api == "responses":
        value = body.get("input")
        return (value, {**body, "input": None}) if isinstance(value, str) and value else None
    messages = body.get("messages")
    if not messages or not isinstance(messages, list):
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, list):
        if not content or not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            return None
        content = "\n".join(p.get("text", "") for p in content)
    if not isinstance(content, str) or not content.strip():
        return None
    return content, {**body, "messages": messages[:-1]}


# -- accounting -----------------------------------------------------------------------------------


class Stats:
    """Totals over every call of one wrapped client. Thread-safe."""

    LEVERS = ("exact", "semantic", "routing", "prefix_cache")
    FAILURES = (
        "cache",
        "semantic_cache",
        "router",
        "prompt",
        "tracker",
        "ledger",
        "record",
        "on_call",
        "unpriced",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.calls = 0
            self.hits = {"exact": 0, "semantic": 0}
            self.misses = 0
            self.uncached = 0
            self.errors = 0
            self.incomplete_streams = 0
            self.routed = 0
            self.translated = 0
            self.cost_usd = 0.0
            self.savings = dict.fromkeys(self.LEVERS, 0.0)
            self.usage = Usage()
            self.by_model: Dict[str, Dict[str, Any]] = {}
            self.failures = dict.fromkeys(self.FAILURES, 0)

    def failure(self, part: str) -> None:
        with self._lock:
            self.failures[part] = self.failures.get(part, 0) + 1

    def add(self, outcome: CallOutcome) -> None:
        with self._lock:
            self.calls += 1
            if outcome.error is not None:
                self.errors += 1
                return
            if not outcome.complete:
                self.incomplete_streams += 1
                return
            if outcome.cache in ("exact", "semantic"):
                self.hits[outcome.cache] += 1
            elif outcome.cache == "miss":
                self.misses += 1
            else:
                self.uncached += 1
            if outcome.decision is not None:
                self.routed += 1
            if outcome.translated:
                self.translated += 1
            self.cost_usd += outcome.cost_usd
            for lever, value in outcome.savings.items():
                self.savings[lever] += value
            if outcome.usage is not None and outcome.cache not in ("exact", "semantic"):
                self.usage = self.usage + outcome.usage
            row = self.by_model.setdefault(
                outcome.model or outcome.requested_model, {"calls": 0, "hits": 0, "cost_usd": 0.0}
            )
            row["calls"] += 1
            row["hits"] += outcome.cache in ("exact", "semantic")
            row["cost_usd"] += outcome.cost_usd

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            answered = self.calls - self.errors - self.incomplete_streams
            hits = self.hits["exact"] + self.hits["semantic"]
            return {
                "calls": self.calls,
                "hits": dict(self.hits),
                "misses": self.misses,
                "uncached": self.uncached,
                "hit_rate": hits / answered if answered else 0.0,
                "errors": self.errors,
                "incomplete_streams": self.incomplete_streams,
                "routed": self.routed,
                "translated": self.translated,
                "cost_usd": self.cost_usd,
                "saved_usd": sum(self.savings.values()),
                "savings_usd": dict(self.savings),
                "usage": self.usage.to_dict(),
                "by_model": {k: dict(v) for k, v in self.by_model.items()},
                "failures": dict(self.failures),
            }


# -- one call -------------------------------------------------------------------------------------


class _Call:
    """The state of one call between begin() and the end of its response or stream."""

    __slots__ = (
        "engine",
        "api",
        "body",
        "sdk_options",
        "opts",
        "outcome",
        "key",
        "semantic",
        "stream",
        "target_api",
        "client",
        "send_kwargs",
        "reservations",
        "start",
        "namespace",
        "include_usage",
        "injected_usage",
        "est_input",
        "max_output",
        "plain_body",
        "ledger_reservation",
    )

    def send(self) -> Any:
        method = self.client
        for part in self.target_api.path:
            method = getattr(method, part)
        return method(**self.send_kwargs)

    async def send_async(self) -> Any:
        return await self.send()


class _StreamCollector(_stream._Collector):
    def __init__(self, engine: Engine, call: _Call):
        self.engine, self.call = engine, call
        self.acc = call.target_api.accumulator()
        self.lines: List[str] = []

    def item(self, item: Any) -> bool:
        value = _dump(item)
        self.acc.add(value)
        self.lines.append(json.dumps(value, separators=(",", ":")))
        # Hide the usage chunk thrifty asked for and the caller did not.
        return not (self.call.injected_usage and not value.get("choices") and value.get("usage"))

    def done(self) -> None:
        if not self.acc.complete:
            self.engine._end_incomplete(self.call, None)
            return
        self.engine._complete(self.call, self.acc.result(), stream_lines=self.lines)

    def failed(self, error: BaseException) -> None:
        self.engine._end_incomplete(self.call, error)

    def aborted(self) -> None:
        self.engine._end_incomplete(self.call, None)


# -- the engine -----------------------------------------------------------------------------------


class Engine:
    """Everything one wrapped client (or dict of clients) shares. Thread-safe."""

    def __init__(
        self,
        clients: Dict[str, Any],
        kinds: Dict[str, str],
        *,
        catalog: Catalog,
        cache: Any = None,
        semantic_cache: Any = None,
        router: Any = None,
        tracker: Any = None,
        budget_run: Optional[AgentRun] = None,
        ledger: Any = None,
        record: Any = None,
        namespace: str = "",
        ttl: Optional[float] = None,
        quality_threshold: Optional[float] = None,
        fallback_model: Optional[str] = None,
        baseline_model: Optional[str] = None,
        on_call: Optional[Callable[[CallOutcome], Any]] = None,
        assemble: bool = True,
    ):
        self.clients = clients
        self.kinds = kinds
        self.catalog = catalog
        self.cache = cache
        self.semantic_cache = semantic_cache
        self.router = router
        self.tracker = tracker
        self.budget_run = budget_run
        self.ledger = ledger
        self.namespace = namespace
        self.ttl = ttl
        routing = catalog.policy.get("routing") or {}
        self.quality_threshold = (
            quality_threshold if quality_threshold is not None else routing.get("quality_threshold")
        )
        self.fallback_model = fallback_model or routing.get("fallback_model")
        self.baseline_model = baseline_model
        self.on_call = on_call
        self.stats = Stats()
        self._record_lock = threading.Lock()
        # Open for the engine's life (closed by WrappedClient.close / __exit__).
        self._record_file = (
            open(record, "a", encoding="utf-8")  # noqa: SIM115
            if record is not None
            else None
        )
        self._default_client = {}
        for key, kind in kinds.items():
            self._default_client.setdefault(kind, key)
        self._prompt_builder = None
        if assemble:
            import thrifty

            self._prompt_builder = getattr(thrifty, "PromptBuilder", None)

    # -- helpers -------------------------------------------------------------------------------

    def _warn(self, part: str, what: str, error: BaseException, outcome: Optional[CallOutcome]):
        self.stats.failure(part)
        message = f"thrifty.wrap: {what} failed ({type(error).__name__}: {error}); {_NEXT[part]}"
        if outcome is not None:
            outcome.warnings.append(message)
        warnings.warn(message, DegradedWarning, stacklevel=4)

    def _cost(self, model: str, usage: Usage, outcome: Optional[CallOutcome]) -> Optional[float]:
        spec = self.catalog.find(model) if model else None
        if spec is None:
            if outcome is not None:
                self.stats.failure("unpriced")
                outcome.warnings.append(f"model '{model}' is not in the catalog: cost counted 0")
            return None
        return self.catalog.cost(spec, usage)

    def _available(self, model: str, api: _Api) -> Optional[str]:
        """The client key that serves `model` for a routed call, or None."""
        spec = self.catalog.find(model)
        if spec is None or spec.deprecated:
            return None
        key = spec.provider
        if key not in self.clients:
            return None
        if api.name == "responses" and self.kinds[key] != "openai":
            return None
        return key

    # -- begin ---------------------------------------------------------------------------------

    def begin(self, api_name: str, kwargs: Dict[str, Any]) -> Tuple[Optional[_Call], Any]:
        """(None, response) on a cache hit; (call, None) when the call must be sent."""
        start = time.perf_counter()
        api = APIS[api_name]
        opts = CallOptions.parse(kwargs.pop("thrifty", None))
        sdk_options = {k: kwargs.pop(k) for k in _SDK_OPTIONS if k in kwargs}
        body = kwargs
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            raise InvalidArgumentError(f"{'.'.join(api.path)}: 'model' is required (a str)")
        namespace = opts.namespace if opts.namespace is not None else self.namespace
        stream = bool(body.get("stream"))
        outcome = CallOutcome(
            api=api_name,
            requested_model=requested,
            stream=stream,
            namespace=namespace,
            tags=dict(opts.tags) if opts.tags else {},
        )
        _LAST.set(outcome)
        call = _Call()
        call.engine, call.api, call.body, call.sdk_options = self, api, body, sdk_options
        call.opts, call.outcome, call.stream, call.start = opts, outcome, stream, start
        call.namespace, call.key, call.semantic, call.plain_body = namespace, None, None, None
        call.reservations, call.injected_usage, call.ledger_reservation = [], False, 0
        caching = (self.cache is not None or self.semantic_cache is not None) and (
            opts.read or opts.write
        )
        if caching:
            try:
                self._keys(call)
            except Exception as e:  # e.g. a NaN temperature: no key, so no caching for it
                self._warn("cache", "computing the request key", e, outcome)
                caching = False
        if not caching:
            outcome.cache = "off"
        else:
            if opts.read:
                hit = self._lookup(call)
                if hit is not None:
                    return None, hit
        return self._prepare(call), None

    def _keys(self, call: _Call) -> None:
        """The exact key, and the semantic cache's (question, context) when it applies."""
        body, api_name = call.body, call.api.name
        try:
            call.key = request_key({**body, "_thrifty_api": api_name}, call.namespace)
        except (TypeError, ValueError):  # SDK objects in the request (a previous response's ...)
            body = call.plain_body = plain(body)
            call.key = request_key({**body, "_thrifty_api": api_name}, call.namespace)
        if self.semantic_cache is not None:
            found = _last_user_text(api_name, body)
            if found is not None:
                query, rest = found
                context = request_key({**rest, "_thrifty_api": api_name + "/semantic"})
                call.semantic = (query, context)

    def _lookup(self, call: _Call) -> Any:
        outcome = call.outcome
        if self.cache is not None:
            try:
                entry = self.cache.get_entry(call.key, call.namespace)
            except Exception as e:
                self._warn("cache", "the exact cache lookup", e, outcome)
                entry = None
            if entry is not None:
                value = entry["value"]
                return self._serve_hit(
                    call, value if isinstance(value, str) else value.decode(), "exact",
                    entry.get("cost_usd", 0.0), None, entry.get("model", ""),
                )  # fmt: skip
        if self.semantic_cache is not None and call.semantic is not None:
            query, context = call.semantic
            try:
                hit = self.semantic_cache.get(query, context=context, namespace=call.namespace)
            except Exception as e:
                self._warn("semantic_cache", "the semantic cache lookup", e, outcome)
                hit = None
            if hit is not None:
                value = hit.response
                return self._serve_hit(
                    call, value if isinstance(value, str) else value.decode(), "semantic",
                    hit.cost_usd, hit.similarity, hit.model,
                )  # fmt: skip
        return None

    def _serve_hit(self, call, value, lever, stored_cost, similarity, model) -> Any:
        outcome = call.outcome
        api = call.api
        head, _, tail = value.partition("\n")
        if call.stream:
            include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
            if tail:
                items = [api.item_from_json(line) for line in tail.split("\n")]
                if api.name == "chat" and not include_usage:
                    items = [c for c in items if c.choices or c.usage is None]
            else:
                dicts = api.synthesize(json.loads(head), include_usage)
                if dicts is None:
                    return None  # cannot replay this entry as a stream: treat as a miss
                items = [api.item_from_dict(d) for d in dicts]
            result: Any = (
                _stream.AsyncReplayStream(items)
                if self._is_async
                else _stream.ReplayStream(items)  # fmt: skip
            )
        else:
            result = api.response_from_json(head)
        outcome.cache = lever
        outcome.similarity = similarity
        outcome.model = model or outcome.requested_model
        outcome.cost_usd = 0.0
        outcome.saved_usd = stored_cost
        outcome.savings = {lever: stored_cost}
        for run in self._runs():
            self._agent_hit(run, outcome)
        outcome.latency_s = time.perf_counter() - call.start
        self._after(call, None, _ZERO, head)
        return result

    @property
    def _is_async(self) -> bool:
        return self.is_async

    def _runs(self) -> List[AgentRun]:
        run = current_run()
        if run is None:
            return [self.budget_run] if self.budget_run is not None else []
        return [run, self.budget_run] if self.budget_run is not None else [run]

    def _agent_hit(self, run: AgentRun, outcome: CallOutcome) -> None:
        """A cache hit still counts as a step of the agent (a looping agent must stop even
        when every answer comes from the cache); it costs nothing."""
        model = outcome.model
        if self.catalog.find(model) is None:
            return
        reservation = run.before_call(model, 0, 1)  # the core needs a positive cap
        run.after_call(model, _ZERO, reservation=reservation)

    # -- the miss path --------------------------------------------------------------------------

    def _prepare(self, call: _Call) -> _Call:
        api, body, outcome, _opts = call.api, call.body, call.outcome, call.opts
        requested = outcome.requested_model
        if requested == "auto":
            model, key = self._route(call)
        else:
            model = requested
            spec = self.catalog.find(model)
            # The model's provider when a client for it was wrapped (translating if needed);
            # else the client of the caller's SDK (an OpenAI-compatible endpoint, a proxy).
            key = spec.provider if spec is not None and spec.provider in self.clients else None
            if key is None:
                key = self._default_client.get(api.kind) or next(iter(self.clients))
            if api.name == "responses" and self.kinds[key] != "openai":
                key = self._default_client.get("openai", key)
        kind = self.kinds[key]
        outcome.model, outcome.provider = model, key
        call.client = self.clients[key]
        send = dict(body)
        send["model"] = model
        if kind == api.kind:
            call.target_api = api
        else:
            if api.name == "responses":
                raise InvalidArgumentError(
                    "responses.create: only OpenAI clients serve the Responses API"
                )
            source = call.plain_body if call.plain_body is not None else plain(body)
            translate = (
                _translate.openai_request_to_anthropic
                if api.kind == "openai"
                else _translate.anthropic_request_to_openai
            )
            send = translate(source, model)
            send.pop("stream", None)  # sent whole, replayed as a stream in the caller's shape
            call.target_api = APIS["messages" if kind == "anthropic" else "chat"]
            outcome.translated = True
        if (
            self._prompt_builder is not None
            and call.target_api.name != "responses"
            and self.catalog.find(model) is not None  # no prompt-cache rules for unknown models
        ):
            try:
                builder = self._prompt_builder.from_request(
                    self._provider_of(model, key), model, plain(send), catalog=self.catalog
                )
                plan = builder.build(
                    "messages" if call.target_api.name == "messages" else "chat.completions"
                )
                send = {**send, **plan.request}
            except Exception as e:
                self._warn("prompt", "prompt assembly", e, outcome)
        if (
            call.target_api.name == "chat"
            and send.get("stream")
            and not (send.get("stream_options") or {}).get("include_usage")
        ):
            send["stream_options"] = {**(send.get("stream_options") or {}), "include_usage": True}
            call.injected_usage = True
        call.send_kwargs = {**send, **call.sdk_options}
        self._reserve(call, send, model)
        return call

    def _provider_of(self, model: str, key: str) -> str:
        spec = self.catalog.find(model)
        return spec.provider if spec is not None else self.kinds[key]

    def _route(self, call: _Call) -> Tuple[str, str]:
        api, outcome, opts = call.api, call.outcome, call.opts
        threshold = (
            opts.quality_threshold if opts.quality_threshold is not None else self.quality_threshold
        )
        if threshold is not None:
            run = current_run() or self.budget_run
            if run is not None:
                threshold, _ = run.adjusted_threshold(threshold)
        if self.router is None:
            return self._fallback(
                call, "model='auto' but no router was given to thrifty.wrap(router=...)"
            )
        try:
            body = call.plain_body if call.plain_body is not None else plain(call.body)
            routed = body.get("input") if api.name == "responses" else body
            decision = self.router.route(routed, quality_threshold=threshold)
        except Exception as e:
            self._warn("router", "routing", e, outcome)
            return self._fallback(call, None)
        outcome.decision = decision
        outcome.route_reason = getattr(decision, "reason", "")
        model = decision.model
        key = self._available(model, api)
        if key is None:
            qualities = getattr(decision, "predicted_quality", {}) or {}
            costs = getattr(decision, "expected_cost", {}) or {}
            bar = threshold if threshold is not None else 0.0
            options = sorted(
                (costs.get(m, float("inf")), m)
                for m, q in qualities.items()
                if q >= bar and self._available(m, api) is not None
            )
            if not options:
                return self._fallback(
                    call, f"the router chose '{model}', which no wrapped client serves"
                )
            model = options[0][1]
            key = self._available(model, api)
            outcome.route_reason += f"; '{decision.model}' is not served here, took '{model}'"
        return model, key

    def _fallback(self, call: _Call, why: Optional[str]) -> Tuple[str, str]:
        model = self.fallback_model
        key = self._available(model, call.api) if model else None
        if key is None:
            raise InvalidArgumentError(
                (why + "; " if why else "")
                + "no fallback model: pass thrifty.wrap(fallback_model=...) naming a catalog "
                "model one of the wrapped clients serves"
            )
        call.outcome.route_reason = why or "fallback after a router failure"
        return model, key

    def _reserve(self, call: _Call, send: Dict[str, Any], model: str) -> None:
        runs = self._runs()
        if not runs and self.ledger is None:
            return
        spec = self.catalog.find(model)
        if spec is None:
            return
        max_output = (
            send.get("max_tokens")
            or send.get("max_completion_tokens")
            or send.get("max_output_tokens")
            or spec.max_output_tokens
            or 4096
        )
        estimate = 0
        try:
            from thrifty._core import estimate_tokens

            estimate = estimate_tokens(plain(send), model=model)
        except Exception:
            estimate = 0
        try:
            for run in runs:
                call.reservations.append((run, run.before_call(model, estimate, int(max_output))))
        except BaseException:
            self._cancel(call)  # a limit refused the call: nothing is sent, nothing stays reserved
            raise
        if self.ledger is not None:
            worst = self.catalog.cost(
                spec, Usage(input_tokens=estimate, output_tokens=int(max_output))
            )
            tags = call.outcome.tags or None
            try:
                # thrifty.Ledger holds the estimate until the call settles (calls in flight
                # count against hard budgets); a ledger with only check() is asked once.
                if hasattr(self.ledger, "reserve"):
                    call.ledger_reservation = self.ledger.reserve(tags, worst)
                else:
                    self.ledger.check(tags, worst)
            except Exception as e:
                if type(e).__name__ == "BudgetExceededError":
                    self._cancel(call)
                    raise
                self._warn("ledger", "the ledger budget check", e, call.outcome)

    def _cancel(self, call: _Call) -> None:
        for run, reservation in call.reservations:
            with contextlib.suppress(Exception):
                run.cancel(reservation)
        call.reservations = []
        if call.ledger_reservation:
            with contextlib.suppress(Exception):
                self.ledger.release(call.ledger_reservation)
            call.ledger_reservation = 0

    # -- finish --------------------------------------------------------------------------------

    def finish(self, call: _Call, raw: Any) -> Any:
        """The caller's response for the provider's `raw` response (sync or async client)."""
        if call.stream and not call.outcome.translated:
            collector = _StreamCollector(self, call)
            if self.is_async:
                return _stream.AsyncPassthroughStream(raw, collector)
            return _stream.PassthroughStream(raw, collector)
        if not call.outcome.translated:
            # The SDK's own object, serialized once (pydantic-core): no dict round trip.
            head = raw.model_dump_json(by_alias=True, exclude_unset=True)
            self._complete(call, None, head=head, raw=raw)
            return raw
        response = _dump(raw)
        if call.outcome.translated:
            if call.api.kind == "openai":
                caller = _translate.anthropic_response_to_openai(response)
            else:
                caller = _translate.openai_response_to_anthropic(response)
            head = self._complete(call, response, caller_dict=caller)
            if call.stream:
                items = [call.api.item_from_dict(d) for d in call.api.synthesize(caller, False)]
                return (
                    _stream.AsyncReplayStream(items)
                    if self.is_async
                    else _stream.ReplayStream(items)  # fmt: skip
                )
            return call.api.response_from_dict(json.loads(head))
        self._complete(call, response)
        return raw

    def fail(self, call: _Call, error: BaseException) -> None:
        """The provider call raised: nothing is stored; the reservation is released."""
        self._end_incomplete(call, error)

    def _end_incomplete(self, call: _Call, error: Optional[BaseException]) -> None:
        self._cancel(call)
        outcome = call.outcome
        outcome.complete = False
        if error is not None:
            outcome.error = f"{type(error).__name__}: {error}"
        outcome.latency_s = time.perf_counter() - call.start
        self.stats.add(outcome)
        self._notify(outcome)

    def _complete(
        self,
        call: _Call,
        response: Dict[str, Any],
        caller_dict: Optional[Dict[str, Any]] = None,
        stream_lines: Optional[List[str]] = None,
        head: Optional[str] = None,
        raw: Any = None,
    ) -> str:
        """Accounting and storage of a complete response (a dict, or else the SDK object `raw`
        already serialized as `head`); returns the stored JSON head."""
        outcome = call.outcome
        target = call.target_api
        if response is not None:
            usage = target.usage(response)
            served = response.get("model")
        else:
            usage = target.usage_of(raw)
            served = getattr(raw, "model", None)
        outcome.usage = usage
        model = outcome.model
        priced = self._cost(model, usage, outcome)
        if priced is None and served:
            priced = self._cost(served, usage, None)
        cost = priced or 0.0
        outcome.cost_usd = cost
        savings: Dict[str, float] = {}
        if priced is not None:
            uncached = Usage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
            prefix = self._cost(model, uncached, None)
            if prefix is not None and usage.prompt_tokens != usage.input_tokens:
                savings["prefix_cache"] = prefix - cost
            if outcome.decision is not None:
                baseline = self._baseline(outcome)
                if baseline and baseline != model:
                    base_cost = self._cost(baseline, uncached, None)
                    if base_cost is not None:
                        savings["routing"] = base_cost - (prefix if prefix is not None else cost)
        outcome.savings = savings
        outcome.saved_usd = sum(savings.values())
        for run, reservation in call.reservations:
            try:
                run.after_call(model, usage, reservation=reservation)
            except NotFoundError:
                run.cancel(reservation)
        call.reservations = []
        if head is None:
            head = json.dumps(
                caller_dict if caller_dict is not None else response, separators=(",", ":")
            )
        if call.opts.write and outcome.cache != "off":
            value = head if not stream_lines else head + "\n" + "\n".join(stream_lines)
            self._store(call, value, cost, model)
        if self.tracker is not None:
            try:
                self.tracker.observe(
                    self._provider_of(model, outcome.provider),
                    model,
                    plain({k: v for k, v in call.send_kwargs.items() if k not in _SDK_OPTIONS}),
                    usage,
                )
            except Exception as e:
                self._warn("tracker", "the prefix tracker", e, outcome)
        outcome.latency_s = time.perf_counter() - call.start
        self._after(call, response, usage, head)
        return head

    def _baseline(self, outcome: CallOutcome) -> Optional[str]:
        if self.baseline_model:
            return self.baseline_model
        qualities = getattr(outcome.decision, "predicted_quality", {}) or {}
        best = None
        for name, quality in qualities.items():
            spec = self.catalog.find(name)
            if spec is None or spec.deprecated:
                continue
            rank = (quality, spec.input_per_mtok + spec.output_per_mtok)
            if best is None or rank > best[0]:
                best = (rank, name)
        return best[1] if best else None

    def _store(self, call: _Call, value: str, cost: float, model: str) -> None:
        ttl = call.opts.ttl if call.opts.ttl is not None else self.ttl
        if self.cache is not None and call.key is not None:
            try:
                self.cache.put(
                    call.key, value, call.namespace, ttl_seconds=ttl, cost_usd=cost, model=model
                )
            except Exception as e:
                self._warn("cache", "the exact cache store", e, call.outcome)
        if self.semantic_cache is not None and call.semantic is not None:
            query, context = call.semantic
            try:
                self.semantic_cache.put(
                    query,
                    value,
                    context=context,
                    namespace=call.namespace,
                    ttl_seconds=ttl,
                    cost_usd=cost,
                    model=model,
                )
            except Exception as e:
                self._warn("semantic_cache", "the semantic cache store", e, call.outcome)

    def _after(self, call: _Call, response: Any, usage: Usage, head: str) -> None:
        """Stats, ledger, trace and on_call: for hits and misses alike."""
        outcome = call.outcome
        self.stats.add(outcome)
        if self.ledger is not None:
            try:
                extra = {}
                if call.ledger_reservation:
                    extra["reservation"] = call.ledger_reservation
                    call.ledger_reservation = 0
                self.ledger.record(
                    outcome.model,
                    usage,
                    tags=outcome.tags or None,
                    cost_usd=outcome.cost_usd,
                    latency_s=outcome.latency_s,
                    cache=outcome.cache if outcome.cache != "off" else None,
                    savings=dict(outcome.savings),
                    **extra,
                )
            except Exception as e:
                self._warn("ledger", "the ledger", e, outcome)
        if self._record_file is not None:
            try:
                if response is None and outcome.cache not in ("exact", "semantic"):
                    response = json.loads(head)  # a miss served as the SDK object
                self._write_trace(call, head, response)
            except Exception as e:
                self._warn("record", "writing the trace", e, outcome)
        self._notify(outcome)

    def _notify(self, outcome: CallOutcome) -> None:
        if self.on_call is not None:
            try:
                self.on_call(outcome)
            except Exception as e:
                self._warn("on_call", "the on_call callback", e, None)

    def _write_trace(self, call: _Call, head: str, response: Any) -> None:
        from thrifty._wrap_trace import trace_line

        line = trace_line(call, head, response)
        with self._record_lock:
            self._record_file.write(line + "\n")
            self._record_file.flush()

    def close(self) -> None:
        if self._record_file is not None:
            with self._record_lock:
                self._record_file.close()
                self._record_file = None

    is_async = False


_NEXT = {
    "cache": "the call went to the provider without the exact cache",
    "semantic_cache": "the call went on without the semantic cache",
    "router": "the call went to the fallback model",
    "prompt": "the request was sent as written",
    "tracker": "the prefix tracker missed this call",
    "ledger": "the ledger missed this call",
    "record": "the call is missing from the trace",
    "on_call": "the response was returned anyway",
}
