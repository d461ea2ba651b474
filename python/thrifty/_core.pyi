"""Type stubs for thrifty's C++ core (thrifty._core). Import from `thrifty`, not from here."""

from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

import numpy as np
import numpy.typing as npt

__version__: str

class Error(Exception): ...
class InvalidArgumentError(Error, ValueError): ...
class NotFoundError(Error, KeyError): ...
class AlreadyExistsError(Error, ValueError): ...
class FailedPreconditionError(Error, RuntimeError): ...
class OutOfRangeError(Error, IndexError): ...
class ResourceExhaustedError(Error, RuntimeError): ...
class DeadlineExceededError(Error, TimeoutError): ...
class UnavailableError(Error, ConnectionError): ...
class PermissionDeniedError(Error, PermissionError): ...
class UnimplementedError(Error, NotImplementedError): ...
class InternalError(Error, RuntimeError): ...
class DataLossError(Error, OSError): ...

class ModelSpec:
    """One model's prices (USD per million tokens), limits and quality priors. Immutable."""

    def __init__(
        self,
        name: str,
        provider: str,
        input_per_mtok: float,
        output_per_mtok: float,
        *,
        cached_input_per_mtok: Optional[float] = None,
        cache_write_5m_per_mtok: Optional[float] = None,
        cache_write_1h_per_mtok: Optional[float] = None,
        context_window: Optional[int] = None,
        max_output_tokens: Optional[int] = None,
        quality: Optional[Mapping[str, float]] = None,
        aliases: Sequence[str] = (),
        deprecated: bool = False,
        source: str = "",
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def input_per_mtok(self) -> float: ...
    @property
    def output_per_mtok(self) -> float: ...
    @property
    def cached_input_per_mtok(self) -> Optional[float]: ...
    @property
    def cache_write_5m_per_mtok(self) -> Optional[float]: ...
    @property
    def cache_write_1h_per_mtok(self) -> Optional[float]: ...
    @property
    def context_window(self) -> Optional[int]: ...
    @property
    def max_output_tokens(self) -> Optional[int]: ...
    @property
    def quality(self) -> Dict[str, float]: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def deprecated(self) -> bool: ...
    @property
    def source(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Usage:
    """One call's token counts, normalized across providers. Immutable."""

    def __init__(
        self,
        input_tokens: int = 0,
        cached_input_tokens: int = 0,
        cache_write_5m_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        output_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None: ...
    input_tokens: int
    cached_input_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...
    @staticmethod
    def from_openai(usage: Any) -> Usage: ...
    @staticmethod
    def from_anthropic(usage: Any) -> Usage: ...
    @staticmethod
    def from_gemini(usage: Any) -> Usage: ...
    @staticmethod
    def from_deepseek(usage: Any) -> Usage: ...
    @staticmethod
    def from_provider(provider: str, usage: Any) -> Usage: ...
    def to_dict(self) -> Dict[str, int]: ...
    def __add__(self, other: Usage) -> Usage: ...

class Catalog:
    """The models a router may choose from. Immutable; thread-safe."""

    def __init__(
        self, models: Sequence[ModelSpec], providers: Sequence[ProviderCacheRules] = ...
    ) -> None: ...
    def get(self, name_or_alias: str) -> ModelSpec: ...
    def provider_rules(self, provider: str) -> ProviderCacheRules: ...
    def providers(self) -> List[ProviderCacheRules]: ...
    def find(self, name_or_alias: str) -> Optional[ModelSpec]: ...
    def models(self) -> List[ModelSpec]: ...
    def names(self) -> List[str]: ...
    def cost(self, model: Union[str, ModelSpec], usage: Any) -> float: ...
    def cost_breakdown(self, model: Union[str, ModelSpec], usage: Any) -> Dict[str, float]: ...
    def __len__(self) -> int: ...
    def __contains__(self, name_or_alias: str) -> bool: ...
    def __iter__(self) -> Iterator[ModelSpec]: ...

class CachedTokensPredictor:
    def predict_cached_tokens(self, model: ModelSpec, request: Mapping[str, Any]) -> int: ...

def request_key(request: Mapping[str, Any], namespace: str = "") -> str: ...
def canonical_request(request: Mapping[str, Any]) -> str: ...
def estimate_tokens(
    text_or_request: Union[str, Mapping[str, Any]], model: Optional[str] = None
) -> int: ...
def tokenizer_family(model: str) -> str: ...
def _token_features(text: str) -> List[float]: ...

# --- embed -----------------------------------------------------------------------------------

class Embedder:
    """Turns texts into L2-normalized float32 vectors. Thread-safe."""

    @property
    def dim(self) -> int: ...
    @property
    def name(self) -> str: ...
    def embed(self, text: str) -> npt.NDArray[np.float32]: ...
    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...

class HashingEmbedder(Embedder):
    def __init__(
        self,
        dim: int = 256,
        *,
        word_weight: float = ...,
        bigram_weight: float = ...,
        char_weight: float = ...,
        stopword_weight: float = ...,
        char_ngram_min: int = ...,
        char_ngram_max: int = ...,
    ) -> None: ...

class StaticEmbedder(Embedder):
    def __init__(self, table: Any, tokenize: Any = None, *, name: str = "static") -> None: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def has_tokenizer(self) -> bool: ...
    def embed_token_ids(self, ids: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]: ...

class CallableEmbedder(Embedder):
    def __init__(self, fn: Any, dim: int, *, name: Optional[str] = None) -> None: ...

# --- cache -----------------------------------------------------------------------------------

class ExactCache:
    """Exact-match response cache: sharded LRU, TTL, namespaces, snapshots. Thread-safe."""

    def __init__(
        self,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        ttl_seconds: Optional[float] = None,
        *,
        backend: Optional[str] = None,
    ) -> None: ...
    def get(self, key: str, namespace: str = "") -> Optional[Union[str, bytes]]: ...
    def get_many(
        self, keys: Iterable[str], namespace: str = ""
    ) -> List[Optional[Union[str, bytes]]]: ...
    def put_many(
        self,
        items: Iterable[tuple[str, Union[str, bytes]]],
        namespace: str = "",
        ttl_seconds: Optional[float] = None,
    ) -> None: ...
    @property
    def backend(self) -> str: ...
    def get_entry(self, key: str, namespace: str = "") -> Optional[Dict[str, Any]]: ...
    def put(
        self,
        key: str,
        value: Union[str, bytes],
        namespace: str = "",
        ttl_seconds: Optional[float] = None,
        cost_usd: float = 0.0,
        model: str = "",
        usage: Optional[Mapping[str, Any]] = None,
    ) -> None: ...
    def delete(self, key: str, namespace: str = "") -> bool: ...
    def stats(self) -> Dict[str, Any]: ...
    def clear(self) -> None: ...
    def save(self, path: str) -> None: ...
    def load(self, path: str) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: Any) -> bool: ...

class CacheBackendWarning(RuntimeWarning): ...

class Hit:
    response: Union[str, bytes]
    similarity: float
    matched_query: str
    model: str
    cost_usd: float
    created_at: float

class SemanticCache:
    """Answers a query from a stored one that means the same, within one (context, namespace)."""

    def __init__(
        self,
        embedder: Optional[Embedder] = None,
        *,
        threshold: float = 0.9,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        ttl_seconds: Optional[float] = None,
        index: str = "auto",
        dim: Optional[int] = None,
        ann_min_entries: int = 2048,
        hnsw_m: int = 32,
        ef_search: int = 64,
        backend: Optional[str] = None,
    ) -> None: ...
    def sync(self, timeout_seconds: float = 5.0) -> bool: ...
    @property
    def backend(self) -> str: ...
    def put(
        self,
        query: str,
        response: Union[str, bytes],
        *,
        context: str = "",
        namespace: str = "",
        ttl_seconds: Optional[float] = None,
        cost_usd: float = 0.0,
        model: str = "",
    ) -> None: ...
    def get(
        self,
        query: str,
        *,
        context: str = "",
        namespace: str = "",
        threshold: Optional[float] = None,
    ) -> Optional[Hit]: ...
    def put_vector(
        self,
        vector: npt.NDArray[np.float32],
        query: str,
        response: Union[str, bytes],
        *,
        context: str = "",
        namespace: str = "",
        ttl_seconds: Optional[float] = None,
        cost_usd: float = 0.0,
        model: str = "",
    ) -> None: ...
    def put_vectors(
        self,
        vectors: npt.NDArray[np.float32],
        queries: Sequence[str],
        responses: Sequence[Union[str, bytes]],
        *,
        context: str = "",
        namespace: str = "",
        ttl_seconds: Optional[float] = None,
    ) -> None: ...
    def get_vector(
        self,
        vector: npt.NDArray[np.float32],
        *,
        context: str = "",
        namespace: str = "",
        threshold: Optional[float] = None,
    ) -> Optional[Hit]: ...
    def search(
        self,
        query: Union[str, npt.NDArray[np.float32]],
        k: int = 5,
        *,
        context: str = "",
        namespace: str = "",
    ) -> List[tuple[float, str]]: ...
    def delete(self, query: str, *, context: str = "", namespace: str = "") -> int: ...
    def clear(self) -> None: ...
    def purge_expired(self) -> int: ...
    def stats(self) -> Dict[str, Any]: ...
    def save(self, path: str) -> None: ...
    def load(self, path: str) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def threshold(self) -> float: ...
    def __len__(self) -> int: ...

def _best_matches(
    queries: npt.NDArray[np.float32], stored: npt.NDArray[np.float32], k: int = 1
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...

# -- route (cpp/bindings/route.cc) ---------------------------------------------------------

class Decision:
    @property
    def model(self) -> str: ...
    @property
    def predicted_quality(self) -> Dict[str, float]: ...
    @property
    def expected_cost(self) -> Dict[str, float]: ...
    @property
    def output_tokens(self) -> Dict[str, float]: ...
    @property
    def input_tokens(self) -> Dict[str, int]: ...
    @property
    def cached_tokens(self) -> Dict[str, int]: ...
    @property
    def category(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def met_threshold(self) -> bool: ...
    @property
    def reason(self) -> str: ...

class Router:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        *,
        predictor: str = "knn",
        knn: Dict[str, Any] = ...,
        logistic: Dict[str, Any] = ...,
        threshold: float = 0.8,
        relative: bool = False,
        include_deprecated: bool = False,
        long_context_tokens: int = 8000,
        embed_head_chars: int = 256,
        embed_tail_chars: int = 1024,
    ) -> None: ...
    @property
    def models(self) -> List[str]: ...
    @property
    def predictor(self) -> str: ...
    @property
    def examples(self) -> int: ...
    @property
    def include_deprecated(self) -> bool: ...
    @property
    def default_threshold(self) -> tuple[float, bool]: ...
    def _set_tracker(self, tracker: Optional[CachedTokensPredictor]) -> None: ...
    def fit(self, examples: Sequence[Sequence[Any]]) -> None: ...
    def feedback(
        self,
        prompt_or_request: Union[str, Dict[str, Any]],
        model: str,
        quality: Optional[float] = None,
        output_tokens: Optional[float] = None,
    ) -> None: ...
    def route(
        self,
        prompt_or_request: Union[str, Dict[str, Any]],
        quality_threshold: Optional[float] = None,
        *,
        relative_threshold: Optional[float] = None,
        embedding: Optional[npt.NDArray[np.float32]] = None,
    ) -> Decision: ...
    def predict(
        self, prompts: Sequence[Union[str, Dict[str, Any]]], *, with_cost: bool = False
    ) -> tuple[npt.NDArray[np.float64], ...]: ...
    def save(self, path: str) -> None: ...
    def _neighbours(
        self, embedding: npt.NDArray[np.float32], k: int
    ) -> List[tuple[float, int]]: ...
    @staticmethod
    def _load(path: str, catalog: Catalog, embedder: Embedder) -> Router: ...

# --- ledger ----------------------------------------------------------------------------------

class _Ledger:
    """The C++ ledger behind thrifty.Ledger. Thread-safe; record() releases the GIL."""

    def __init__(
        self,
        catalog: Optional[Catalog] = None,
        *,
        bucket_seconds: float = 3600.0,
        max_time_buckets: int = 168,
        max_tag_keys: int = 32,
        max_tag_values: int = 1000,
        max_models: int = 256,
        shards: int = 0,
        clock: Optional[Callable[[], float]] = None,
        on_alert: Optional[Callable[[Dict[str, Any]], None]] = None,
        anomaly: bool = True,
        anomaly_baseline_buckets: int = 24,
        anomaly_min_history: int = 6,
        anomaly_k: float = 4.0,
        anomaly_min_relative: float = 0.1,
        anomaly_min_usd: float = 0.01,
        budget_backend: Optional[str] = None,
    ) -> None: ...
    def record(
        self,
        model: str,
        usage: Any = None,
        tags: Optional[Mapping[str, Any]] = None,
        cost_usd: Optional[float] = None,
        latency_s: Optional[float] = None,
        cache: Union[str, bool, None] = None,
        savings: Optional[Mapping[str, float]] = None,
        ts: Optional[float] = None,
        reservation: int = 0,
    ) -> float: ...
    def check(self, tags: Optional[Mapping[str, Any]], estimated_cost_usd: float) -> None: ...
    def reserve(self, tags: Optional[Mapping[str, Any]], estimated_cost_usd: float) -> int: ...
    def release(self, reservation: int) -> None: ...
    def add_budget(
        self,
        tag: str,
        value: Any,
        limit_usd: float,
        period: Union[str, float] = "day",
        on_alert: Optional[Callable[[Dict[str, Any]], None]] = None,
        hard: bool = False,
    ) -> int: ...
    def remove_budget(self, budget_id: int) -> None: ...
    def budgets(self) -> List[Dict[str, Any]]: ...
    def add_spike_alert(
        self,
        tag: str = "*",
        absolute_usd: Optional[float] = None,
        k: Optional[float] = None,
        min_calls: int = 20,
        on_alert: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> int: ...
    def add_drift_alert(
        self,
        window_seconds: float = 3600.0,
        points: float = 10.0,
        min_calls: int = 50,
        on_alert: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> int: ...
    def alerts(self) -> List[Dict[str, Any]]: ...
    def anomalies(self) -> List[Dict[str, Any]]: ...
    def on_record(self, callback: Callable[[Dict[str, Any]], None]) -> None: ...
    def log_to(self, path: Any) -> None: ...
    def snapshot(self) -> Dict[str, Any]: ...
    def prometheus(self) -> str: ...
    def save(self, path: Any) -> None: ...
    def load(self, path: Any) -> None: ...
    def now(self) -> float: ...
    @property
    def bucket_seconds(self) -> float: ...
    @property
    def shared_errors(self) -> int: ...

# replay (cpp/bindings/replay.cc); use thrifty.replay() instead of _replay.
def _replay(
    path: str,
    catalog: Catalog,
    *,
    exact: bool = ...,
    exact_ttl_seconds: Optional[float] = ...,
    exact_max_entries: Optional[int] = ...,
    semantic: bool = ...,
    semantic_threshold: float = ...,
    semantic_ttl_seconds: Optional[float] = ...,
    semantic_max_entries: Optional[int] = ...,
    semantic_namespaces: List[str] = ...,
    embedder: Optional[Embedder] = ...,
    routing: str = ...,
    quality_threshold: float = ...,
    candidate_models: List[str] = ...,
    router: Optional[Callable[[Dict[str, Any], int], Any]] = ...,
    prefix_cache: bool = ...,
    prefix_ttl_seconds: float = ...,
    prefix_min_tokens: int = ...,
    prefix_tracker: bool = ...,
    threads: int = ...,
    batch_size: int = ...,
    max_batches_in_flight: int = ...,
    limit: Optional[int] = ...,
    skip_invalid: bool = ...,
    audit_sample_size: int = ...,
    seed: int = ...,
    bucket_seconds: float = ...,
    progress: Optional[Callable[[int, int, int], Any]] = ...,
    progress_every: int = ...,
    ledger: Optional[_Ledger] = ...,
    semantic_lookahead: bool = ...,
) -> Dict[str, Any]: ...
def _parse_trace_line(line: str, where: str = ...) -> Dict[str, Any]: ...

# --- prompt-cache rules, prompt assembly, prefix tracking ----------------------------------

class ProviderCacheRules:
    """One provider's prompt-cache rules (policy providers.<name>). Immutable."""

    provider: str
    mode: str
    block_tokens: int
    max_breakpoints: int
    lookback_blocks: int
    read_multiplier: float
    cache_key_field: str
    cache_key_rpm: int
    source: str
    read_on: str
    @staticmethod
    def from_dict(provider: str, entry: Mapping[str, Any]) -> ProviderCacheRules: ...
    def min_tokens_for(self, model: str) -> int: ...
    def cached_from_matched(self, model: str, matched_tokens: int) -> int: ...
    def ttl_seconds(self, name: str = "") -> Optional[int]: ...
    def to_dict(self) -> Dict[str, Any]: ...

class LintWarning:
    segment: str
    kind: str
    text: str
    moved: bool
    message: str

class Breakpoint:
    label: str
    block: int
    tokens: int
    ttl: str
    why: str

class Plan:
    @property
    def request(self) -> Dict[str, Any]: ...
    @property
    def api(self) -> str: ...
    breakpoints: List[Breakpoint]
    prompt_tokens: int
    static_tokens: int
    cacheable_tokens: int
    warnings: List[LintWarning]
    @property
    def cache_key(self) -> Optional[str]: ...

class _PromptBuilder:
    def __init__(self, catalog: Catalog, provider: str, model: str, **options: Any) -> None: ...
    @staticmethod
    def from_request(
        catalog: Catalog, provider: str, model: str, request: Mapping[str, Any], **options: Any
    ) -> _PromptBuilder: ...
    def add_tools(self, tools: Sequence[Mapping[str, Any]]) -> None: ...
    def add_system(self, text: str) -> None: ...
    def add_documents(self, documents: Sequence[str]) -> None: ...
    def add_history(self, messages: Sequence[Mapping[str, Any]]) -> None: ...
    def add_user(self, content: Any) -> None: ...
    def build(self, api: Optional[str] = None) -> Plan: ...

class CachePrediction:
    provider: str
    model: str
    prompt_tokens: int
    cached_tokens: int
    matched_tokens: int
    write_5m_tokens: int
    write_1h_tokens: int
    reason: str
    segment: str
    detail: str
    @property
    def usage(self) -> Usage: ...

class CacheObservation:
    predicted: CachePrediction
    reported_cached_tokens: int
    @property
    def error_tokens(self) -> int: ...

class _PrefixTracker(CachedTokensPredictor):
    def __init__(
        self, catalog: Catalog, *, max_entries: int = ..., clock: Optional[Any] = None
    ) -> None: ...
    def predict(
        self,
        provider: Optional[str],
        model: str,
        request: Mapping[str, Any],
        now: Optional[float] = None,
    ) -> CachePrediction: ...
    def observe(
        self,
        provider: Optional[str],
        model: str,
        request: Mapping[str, Any],
        usage: Any = None,
        now: Optional[float] = None,
    ) -> CacheObservation: ...
    def stats(self) -> Dict[str, int]: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
