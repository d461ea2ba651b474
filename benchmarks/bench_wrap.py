"""thrifty.wrap overhead: a cache hit, and a miss (exact + semantic cache with HashingEmbedder),
against calling the SDK directly, for openai.OpenAI and anthropic.Anthropic.

Three transports, same SDK objects on both sides:
- "stub": the SDK's create() replaced by a function returning a ready response object: the
  difference is exactly thrifty's own work on a miss (the cleanest "excluding the round trip");
- "http": the local fake server of the tests (tests/python/fake_llm_server.py) over 127.0.0.1;
  the miss overhead is wrapped p50 - direct p50 (the HTTP round trip cancels out, its jitter
  does not quite);
- "inproc": an httpx.MockTransport answering with the same JSON in-process, so the SDK's own
  work is the baseline and thrifty's overhead on a miss is measured without network noise.

Targets (issue #7): hit <= 50 us p50; miss overhead <= 300 us p50 excluding the round trip.

    .venv/bin/python benchmarks/bench_wrap.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import anthropic
import openai

import thrifty
from _bench_util import ROOT, print_table, write_json

sys.path.insert(0, str(ROOT / "tests" / "python"))
from fake_llm_server import FakeLLMServer  # noqa: E402

SYSTEM = "You are a helpful assistant for an online bookshop. Answer in two sentences."
_WORDS = [
    "novel",
    "poetry",
    "history",
    "science",
    "garden",
    "cooking",
    "travel",
    "mystery",
    "romance",
    "fantasy",
    "biography",
    "children",
    "atlas",
    "drawing",
    "music",
    "physics",
    "chemistry",
    "ocean",
    "mountain",
    "river",
    "forest",
    "desert",
    "city",
    "village",
    "winter",
    "summer",
    "autumn",
    "spring",
    "painting",
    "theatre",
    "cinema",
    "football",
    "chess",
    "sailing",
    "astronomy",
    "medicine",
    "law",
    "economics",
    "philosophy",
    "language",
    "grammar",
    "dictionary",
    "recipe",
    "bread",
    "cheese",
    "wine",
    "coffee",
    "tea",
    "birds",
    "insects",
    "horses",
    "dragons",
    "pirates",
    "robots",
    "castles",
    "trains",
]


def _questions():
    """Distinct questions that share no more than chance words, so none is a semantic hit."""
    import random

    rng = random.Random(7)
    while True:
        yield " ".join(rng.sample(_WORDS, 8)) + "?"


def _median_us(fn, calls: int) -> float:
    for _ in range(min(200, calls)):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _chat_json(request: dict) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": request["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Sure, here it is. " * 8},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 60,
            "completion_tokens": 40,
            "total_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def _message_json(request: dict) -> dict:
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": [{"type": "text", "text": "Sure, here it is. " * 8}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 60,
            "output_tokens": 40,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def _httpx():
    """The HTTP library the installed SDKs are built on (httpx, or its successor httpx2)."""
    try:
        import httpx2 as module
    except ImportError:
        import httpx as module
    return module


def _mock_transport():
    httpx = _httpx()

    def handler(request):
        body = json.loads(request.content)
        payload = (
            _message_json(body) if request.url.path.endswith("/messages") else _chat_json(body)
        )
        return httpx.Response(200, json=payload)

    return httpx.MockTransport(handler)


def _clients(transport: str, server: FakeLLMServer):
    if transport == "http":
        return (
            openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0),
            anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0),
        )
    if transport == "stub":
        # No HTTP and no SDK request building: create() returns a ready response object, so
        # "wrapped - direct" is thrifty's own work on a miss and nothing else.
        from anthropic.types import Message
        from openai.types.chat import ChatCompletion

        oai = openai.OpenAI(base_url="http://stub/v1", api_key="k")
        ant = anthropic.Anthropic(base_url="http://stub", api_key="k")
        completion = ChatCompletion.model_validate(_chat_json({"model": "gpt-6-luna"}))
        message = Message.model_validate(_message_json({"model": "claude-haiku-5-5"}))
        oai.chat.completions.create = lambda **kwargs: completion
        ant.messages.create = lambda **kwargs: message
        return oai, ant
    mock = _mock_transport()
    httpx = _httpx()
    return (
        openai.OpenAI(
            base_url="http://mock/v1",
            api_key="k",
            max_retries=0,
            http_client=httpx.Client(transport=mock),
        ),
        anthropic.Anthropic(
            base_url="http://mock",
            api_key="k",
            max_retries=0,
            http_client=httpx.Client(transport=mock),
        ),
    )


def _call(sdk: str, client, question: str, model: str = "gpt-6-luna"):
    if sdk == "openai":
        return client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        )
    return client.messages.create(
        model="claude-haiku-5-5",
        max_tokens=200,
        system=SYSTEM,
        messages=[{"role": "user", "content": question}],
    )


def _full_pipeline(raw):
    """model="auto" with everything on: caches, Router (priors), PromptBuilder, PrefixTracker,
    over the default catalog's OpenAI models. None when the router / prompt modules are absent."""
    if not hasattr(thrifty, "Router") or not hasattr(thrifty, "PrefixTracker"):
        return None
    default = thrifty.Catalog.default()
    catalog = thrifty.Catalog(
        [m for m in default.models() if m.provider == "openai" and not m.deprecated],
        policy=default.policy,
    )
    tracker = thrifty.PrefixTracker(catalog)
    return thrifty.wrap(
        raw,
        policy=catalog,
        cache=thrifty.ExactCache(),
        semantic_cache=thrifty.SemanticCache(thrifty.HashingEmbedder()),
        router=thrifty.Router(catalog, predictor="prior", tracker=tracker),
        tracker=tracker,
    )


def _measure(sdk: str, raw, calls: int, wrapped=None) -> dict:
    """Medians for one SDK client: direct and wrapped misses interleaved (so drift hits both),
    then exact and semantic hits."""
    auto = wrapped is not None
    wrapped = wrapped or thrifty.wrap(
        raw,
        cache=thrifty.ExactCache(),
        semantic_cache=thrifty.SemanticCache(thrifty.HashingEmbedder()),
    )
    model = "auto" if auto else "gpt-6-luna"
    questions = _questions()
    for _ in range(min(200, calls)):
        _call(sdk, raw, next(questions))
        _call(sdk, wrapped, next(questions), model)
    before = wrapped.thrifty_stats()["misses"]
    direct, miss, diff = [], [], []
    for _ in range(calls):
        start = time.perf_counter()
        _call(sdk, raw, next(questions))
        middle = time.perf_counter()
        _call(sdk, wrapped, next(questions), model)
        end = time.perf_counter()
        direct.append(middle - start)
        miss.append(end - middle)
        diff.append((end - middle) - (middle - start))
    misses = wrapped.thrifty_stats()["misses"] - before
    question = "Which books about gardening do you recommend for beginners?"
    _call(sdk, wrapped, question, model)
    hit = _median_us(lambda: _call(sdk, wrapped, question, model), calls * 2)
    paraphrase = "which books about gardening do you recommend for beginners"
    semantic = _median_us(lambda: _call(sdk, wrapped, paraphrase, model), calls)
    stats = wrapped.thrifty_stats()
    assert stats["hits"]["exact"] >= calls * 2 and stats["hits"]["semantic"] >= calls, stats
    assert misses >= calls * 0.99, f"only {misses} of {calls} measured calls were misses"
    return {
        "direct_us": statistics.median(direct) * 1e6,
        "wrapped_miss_us": statistics.median(miss) * 1e6,
        "miss_overhead_us": statistics.median(diff) * 1e6,
        "exact_hit_us": hit,
        "semantic_hit_us": semantic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    results = {}
    with FakeLLMServer(lambda api, request: "Sure, here it is. " * 8) as server:
        for transport in ("stub", "inproc", "http"):
            calls = args.calls if transport == "inproc" else max(200, args.calls // 4)
            oai, ant = _clients(transport, server)
            runs = [("openai", oai, None, ""), ("anthropic", ant, None, "")]
            full = _full_pipeline(oai) if transport in ("stub", "inproc") else None
            if full is not None:
                runs.append(("openai", oai, full, ', model="auto" + router + prompt + tracker'))
            for sdk, raw, wrapped, label in runs:
                r = _measure(sdk, raw, calls, wrapped)
                name = f"{sdk} / {transport}{label}"
                r["direct_over_exact_hit"] = r["direct_us"] / r["exact_hit_us"]
                results[name] = r
                rows.append(
                    (
                        name,
                        r["direct_us"],
                        r["wrapped_miss_us"],
                        r["miss_overhead_us"],
                        r["exact_hit_us"],
                        r["semantic_hit_us"],
                        r["direct_over_exact_hit"],
                    )
                )
    print_table(
        "thrifty.wrap vs the SDK called directly (p50, microseconds per call; "
        "exact + semantic cache on, HashingEmbedder)",
        [
            "sdk / transport",
            "direct",
            "wrapped miss",
            "miss overhead",
            "exact hit",
            "semantic hit",
            "direct/hit",
        ],
        rows,
    )
    print(
        "targets: hit <= 50 us p50; miss overhead <= 300 us p50 excluding the round trip "
        "(stub rows: thrifty's work alone; inproc: + the SDK's request building; http: + the "
        "local server's jitter)"
    )
    write_json("bench_wrap", {"calls": args.calls, "results": results})


if __name__ == "__main__":
    main()
