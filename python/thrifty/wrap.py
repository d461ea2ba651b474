"""thrifty.wrap: drop-in wrappers for the OpenAI and Anthropic Python SDK clients.

    from openai import OpenAI
    client = thrifty.wrap(OpenAI(), cache=thrifty.ExactCache())
    client.chat.completions.create(model="gpt-6-luna", messages=[...])   # a ChatCompletion

The wrapped client is used exactly like the original: the same methods, arguments and return
types (ChatCompletion, Message, Response, and streams that yield the SDK's own chunk / event
objects). Calls to ``chat.completions.create``, ``responses.create`` and ``messages.create`` go
through thrifty's caches, router, prompt assembly, agent limits and ledger; every other attribute
is the wrapped client's own. See docs/wrap.md.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from thrifty._core import AgentBudget, HashingEmbedder, InvalidArgumentError, SemanticCache
from thrifty._core import ExactCache as _ExactCache
from thrifty._wrap_engine import (
    CallOptions,
    CallOutcome,
    DegradedWarning,
    Engine,
    last_call,
)
from thrifty.agent import AgentRun
from thrifty.catalog import Catalog

__all__ = ["CallOptions", "CallOutcome", "DegradedWarning", "WrappedClient", "last_call", "wrap"]


def _kind(client: Any) -> Tuple[str, bool]:
    """("openai" | "anthropic", is_async) of an SDK client."""
    try:
        import openai

        if isinstance(client, openai.AsyncOpenAI):
            return "openai", True
        if isinstance(client, openai.OpenAI):
            return "openai", False
    except ImportError:
        pass
    try:
        import anthropic

        if isinstance(client, anthropic.AsyncAnthropic):
            return "anthropic", True
        if isinstance(client, anthropic.Anthropic):
            return "anthropic", False
    except ImportError:
        pass
    if isinstance(client, WrappedClient):
        raise TypeError("thrifty.wrap: this client is already wrapped (wrap the SDK client once)")
    raise TypeError(
        "thrifty.wrap: expected an openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic or "
        f"anthropic.AsyncAnthropic client (or a dict of them), got {type(client).__name__}"
    )


def _catalog(policy: Any) -> Catalog:
    if policy is None:
        return Catalog.default()
    if isinstance(policy, Catalog):
        return policy
    if isinstance(policy, (str, os.PathLike)):
        return Catalog.from_yaml(policy)
    raise InvalidArgumentError(
        "thrifty.wrap(policy=...): expected a thrifty.Catalog or the path of a policy YAML, "
        f"got {type(policy).__name__}"
    )


def wrap(
    client: Union[Any, Mapping[str, Any]],
    policy: Union[None, Catalog, str, os.PathLike] = None,
    cache: Any = None,
    semantic_cache: Any = None,
    router: Any = None,
    tracker: Any = None,
    budget: Union[None, AgentBudget, float] = None,
    ledger: Any = None,
    record: Union[None, str, os.PathLike] = None,
    *,
    namespace: str = "",
    ttl: Optional[float] = None,
    quality_threshold: Optional[float] = None,
    fallback_model: Optional[str] = None,
    baseline_model: Optional[str] = None,
    on_call: Optional[Callable[[CallOutcome], Any]] = None,
    assemble: bool = True,
) -> WrappedClient:
    """Wraps an SDK client (or a dict ``{provider: client}``) so its calls go through thrifty.

    client: openai.OpenAI / AsyncOpenAI, anthropic.Anthropic / AsyncAnthropic, or a dict of
        them keyed by the catalog's provider names (``{"openai": OpenAI(), "anthropic":
        Anthropic()}``), all sync or all async: model="auto" then routes across them,
        translating between the chat and messages shapes.
    policy: the catalog (prices, routing defaults): a thrifty.Catalog, a policy YAML path, or
        None for Catalog.default().
    cache: a thrifty.ExactCache (or True for a default one); semantic_cache: a
        thrifty.SemanticCache (or True for one over a HashingEmbedder).
    router: a thrifty.Router, used when model="auto"; tracker: a PrefixTracker observing every
        call sent; budget: an AgentBudget (or a dollar amount) limiting every call made through
        this client, on top of any open thrifty.agent_run; ledger: a thrifty.Ledger that records
        (and budget-checks) every call; record: a JSONL trace file appended with every call.
    namespace / ttl / quality_threshold: defaults of the per-call ``thrifty=`` options.
    fallback_model: where model="auto" goes when the router fails or is absent (default: the
        policy's routing.fallback_model); baseline_model: what routing savings are counted
        against (default: the routed call's highest-quality candidate).
    on_call: called with a CallOutcome after each call (when a stream ends, for streams).
    assemble: reorder / mark requests for provider prompt caches with thrifty.PromptBuilder
        (when available).

    Thread-safety: the wrapped client is as thread-safe as the SDK client (it is).
    """
    if isinstance(client, Mapping):
        if not client:
            raise InvalidArgumentError("thrifty.wrap: the dict of clients is empty")
        clients = dict(client)
    else:
        clients = {_kind(client)[0]: client}
    kinds: Dict[str, str] = {}
    modes = set()
    for key, value in clients.items():
        kind, is_async = _kind(value)
        kinds[key] = kind
        modes.add(is_async)
    if len(modes) > 1:
        raise InvalidArgumentError(
            "thrifty.wrap: mix of sync and async clients; wrap OpenAI with Anthropic, or "
            "AsyncOpenAI with AsyncAnthropic"
        )
    catalog = _catalog(policy)
    if cache is True:
        cache = _ExactCache()
    if semantic_cache is True:
        semantic_cache = SemanticCache(HashingEmbedder())
    budget_run = None
    if budget is not None:
        if isinstance(budget, (int, float)) and not isinstance(budget, bool):
            budget = AgentBudget(max_cost_usd=float(budget))
        budget_run = AgentRun(budget, catalog)
    engine = Engine(
        clients,
        kinds,
        catalog=catalog,
        cache=cache,
        semantic_cache=semantic_cache,
        router=router,
        tracker=tracker,
        budget_run=budget_run,
        ledger=ledger,
        record=record,
        namespace=namespace,
        ttl=ttl,
        quality_threshold=quality_threshold,
        fallback_model=fallback_model,
        baseline_model=baseline_model,
        on_call=on_call,
        assemble=assemble,
    )
    engine.is_async = modes.pop()
    return WrappedClient(engine, next(iter(clients.values())))


# -- the proxies -----------------------------------------------------------------------------------


def _create_sync(engine: Engine, api: str, kwargs: Dict[str, Any]) -> Any:
    call, hit = engine.begin(api, kwargs)
    if call is None:
        return hit
    try:
        raw = call.send()
    except BaseException as e:
        engine.fail(call, e)
        raise
    return engine.finish(call, raw)


async def _create_async(engine: Engine, api: str, kwargs: Dict[str, Any]) -> Any:
    call, hit = engine.begin(api, kwargs)
    if call is None:
        return hit
    try:
        raw = await call.send()
    except BaseException as e:
        engine.fail(call, e)
        raise
    return engine.finish(call, raw)


class _Proxy:
    """Attributes not overridden are the wrapped SDK object's (or absent when there is none)."""

    def __init__(self, engine: Engine, inner: Any, what: str):
        self._engine, self._inner, self._what = engine, inner, what

    def __getattr__(self, name: str) -> Any:
        if self._inner is None:
            raise AttributeError(f"{self._what}.{name}: no wrapped client has it")
        return getattr(self._inner, name)


class _Completions(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        """chat.completions.create, through thrifty; ``thrifty=`` holds per-call options."""
        if self._engine.is_async:
            return _create_async(self._engine, "chat", kwargs)
        return _create_sync(self._engine, "chat", kwargs)


class _Chat(_Proxy):
    @property
    def completions(self) -> _Completions:
        inner = getattr(self._inner, "completions", None)
        return _Completions(self._engine, inner, "chat.completions")


class _Messages(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        """messages.create, through thrifty; ``thrifty=`` holds per-call options."""
        if self._engine.is_async:
            return _create_async(self._engine, "messages", kwargs)
        return _create_sync(self._engine, "messages", kwargs)


class _Responses(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        """responses.create, through thrifty; ``thrifty=`` holds per-call options."""
        if self._engine.is_async:
            return _create_async(self._engine, "responses", kwargs)
        return _create_sync(self._engine, "responses", kwargs)


class WrappedClient:
    """An SDK client whose completion calls go through thrifty; everything else is the client's.

    Thread-safe (as the SDK clients are): share one across threads and asyncio tasks.
    """

    def __init__(self, engine: Engine, primary: Any):
        self._thrifty_engine = engine
        self._thrifty_client = primary

    def _first(self, kind: str, attr: str) -> Any:
        engine = self._thrifty_engine
        key = engine._default_client.get(kind)
        return getattr(engine.clients[key], attr, None) if key is not None else None

    @property
    def chat(self) -> _Chat:
        return _Chat(self._thrifty_engine, self._first("openai", "chat"), "chat")

    @property
    def messages(self) -> _Messages:
        return _Messages(self._thrifty_engine, self._first("anthropic", "messages"), "messages")

    @property
    def responses(self) -> _Responses:
        inner = self._first("openai", "responses")
        if inner is None:
            raise AttributeError(
                "responses: no wrapped OpenAI client with the Responses API (openai >= 1.66)"
            )
        return _Responses(self._thrifty_engine, inner, "responses")

    @property
    def unwrapped(self) -> Any:
        """The SDK client itself (the first one of a dict)."""
        return self._thrifty_client

    @property
    def clients(self) -> Dict[str, Any]:
        return dict(self._thrifty_engine.clients)

    def with_options(self, **options: Any) -> WrappedClient:
        """The SDK's ``with_options`` (timeouts, retries, headers...), still wrapped: the copy
        shares this client's caches, router, totals and trace file."""
        engine = copy.copy(self._thrifty_engine)
        engine.clients = {k: c.with_options(**options) for k, c in engine.clients.items()}
        return WrappedClient(engine, next(iter(engine.clients.values())))

    copy = with_options

    def thrifty_stats(self) -> Dict[str, Any]:
        """Totals of every call through this client: calls, hits (exact, semantic), misses,
        cost, savings by lever (exact, semantic, routing, prefix_cache), usage, failures."""
        return self._thrifty_engine.stats.snapshot()

    def thrifty_reset_stats(self) -> None:
        self._thrifty_engine.stats.reset()

    def close(self) -> Any:
        self._thrifty_engine.close()
        return self._thrifty_client.close()

    def __enter__(self) -> WrappedClient:
        self._thrifty_client.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._thrifty_engine.close()
        self._thrifty_client.__exit__(*exc_info)

    async def __aenter__(self) -> WrappedClient:
        await self._thrifty_client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._thrifty_engine.close()
        await self._thrifty_client.__aexit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._thrifty_client, name)

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={type(v).__name__}" for k, v in self.clients.items())
        return f"<thrifty.WrappedClient {names}>"
