"""Prefix-cache-aware prompt assembly (PromptBuilder) and prompt-cache prediction (PrefixTracker).

Both read the provider's prompt-cache rules from the catalog (the ``providers:`` section of
the policy); see docs/prompt_cache.md.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from thrifty import _core
from thrifty._core import (
    Breakpoint,
    CacheObservation,
    CachePrediction,
    LintWarning,
    Plan,
)
from thrifty.catalog import Catalog

__all__ = [
    "Breakpoint",
    "CacheObservation",
    "CachePrediction",
    "LintWarning",
    "Plan",
    "PrefixTracker",
    "PromptBuilder",
]

Content = Union[str, Sequence[Mapping[str, Any]]]


class PromptBuilder:
    """Assembles a chat request so the provider's prompt cache hits, by construction.

    ::

        plan = (
            thrifty.PromptBuilder("anthropic", "claude-sonnet-5-5")
            .add_tools(tools)
            .add_system("You are ...")
            .add_documents(docs)
            .add_history(messages)
            .add_user("What changed?")
            .build()
        )
        client.messages.create(**plan.request)

    Segments render as tools, system, documents, history, user whatever order they were
    added in; the user turn must come last. ``build(api=...)`` picks the SDK shape:
    "chat.completions" or "responses" (OpenAI) or "messages" (Anthropic); the default follows
    the provider (explicit-breakpoint providers: messages).

    Options (keyword-only): ``ttl`` ("auto" or a TTL name such as "5m"/"1h"),
    ``request_interval_s`` and ``expected_reuse`` (drive the write/read trade-off and the TTL),
    ``followup`` (None = auto: a later call extends this conversation when there is history or
    tools), ``max_breakpoints`` (at most the provider's limit), ``move_volatile`` (move lines
    with dates, times, ids out of static segments to the tail), ``cache_key_shards`` /
    ``expected_rpm`` / ``session`` (OpenAI prompt_cache_key sharding), ``max_tokens``
    (Anthropic's required field when the request has none).

    Not thread-safe: build a plan in one thread (plans themselves are immutable).
    """

    def __init__(
        self,
        provider: str,
        model: str,
        catalog: Optional[Catalog] = None,
        **options: Any,
    ):
        self._builder = _core._PromptBuilder(
            catalog if catalog is not None else Catalog.default(), provider, model, **options
        )

    @classmethod
    def from_request(
        cls,
        provider: str,
        model: str,
        request: Mapping[str, Any],
        catalog: Optional[Catalog] = None,
        **options: Any,
    ) -> PromptBuilder:
        """A builder holding the conversation of an SDK-shaped request.

        ``request`` is OpenAI chat.completions / responses kwargs or Anthropic messages kwargs.
        Leading system messages become the system segment, the last user message the user
        turn, the rest the history; other fields (temperature, max_tokens, ...) are kept.
        ``build()`` returns the same conversation, cache-friendly: tools sorted and canonical,
        breakpoints placed (Anthropic), prompt_cache_key set (OpenAI) unless the request has one.
        """
        self = cls.__new__(cls)
        self._builder = _core._PromptBuilder.from_request(
            catalog if catalog is not None else Catalog.default(),
            provider,
            model,
            dict(request),
            **options,
        )
        return self

    def add_tools(self, tools: Iterable[Mapping[str, Any]]) -> PromptBuilder:
        """Tool definitions (OpenAI chat, OpenAI responses or Anthropic form)."""
        self._builder.add_tools(list(tools))
        return self

    def add_system(self, text: str) -> PromptBuilder:
        self._builder.add_system(text)
        return self

    def add_documents(self, documents: Iterable[str]) -> PromptBuilder:
        """Static reference texts (rendered after the system prompt, before the history)."""
        if isinstance(documents, str):
            documents = [documents]
        self._builder.add_documents(list(documents))
        return self

    def add_history(self, messages: Iterable[Mapping[str, Any]]) -> PromptBuilder:
        """Earlier turns, in OpenAI chat or Anthropic form (tool calls and results included)."""
        self._builder.add_history(list(messages))
        return self

    def add_user(self, content: Content) -> PromptBuilder:
        """The new user turn: a string or a list of content blocks. It comes last."""
        self._builder.add_user(content)
        return self

    def build(self, api: Optional[str] = None) -> Plan:
        return self._builder.build(api)


class PrefixTracker(_core._PrefixTracker):
    """Predicts the input tokens a provider will serve from its prompt cache.

    ``observe(provider, model, request, usage)`` after every call records the prompt sent
    (chained XXH3 hashes over ~64-token chunks, per provider, model and prompt_cache_key,
    alive for the provider's TTL) and reconciles the prediction with the reported usage
    (``stats()``). ``predict(provider, model, request)`` returns a CachePrediction: cached
    tokens, predicted cache writes (``.usage`` prices them with ``Catalog.cost``) and, on a
    miss, why (cold, prefix_changed at ``.segment``, ttl_lapsed, under_minimum, ...).
    ``provider=None`` takes the model's provider.

    Time: ``now=`` (seconds) on predict/observe, else ``clock()`` if given, else wall time --
    so replay can simulate time. Memory: at most ``max_entries`` hashes (~48 bytes each).
    Thread-safe; a subclass of CachedTokensPredictor, so ``Router(tracker=...)`` takes it.
    """

    def __init__(
        self,
        catalog: Optional[Catalog] = None,
        *,
        max_entries: int = 1 << 20,
        clock: Optional[Callable[[], float]] = None,
    ):
        super().__init__(
            catalog if catalog is not None else Catalog.default(),
            max_entries=max_entries,
            clock=clock,
        )
