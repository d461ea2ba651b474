"""thrifty.wrap in a few lines: the same SDK calls, cached, routed and counted.

Runs against any OpenAI-compatible and/or Anthropic endpoint::

    export OPENAI_API_KEY=... ANTHROPIC_API_KEY=...
    python docs/examples/wrap_quickstart.py                     # both providers, model="auto"
    python docs/examples/wrap_quickstart.py --openai-base-url http://127.0.0.1:8000/v1 \\
        --anthropic-base-url http://127.0.0.1:8000 --api-key local

It asks a few questions twice (the second time, the exact cache answers), asks a paraphrase
(the semantic cache answers), streams an answer, and prints each call's outcome and the
client's totals as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, List, Optional

import anthropic
import openai

import thrifty

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of France?",  # exact hit
    "what is the capital of france",  # semantic hit (same context, near-identical question)
    "Name three prime numbers.",
]


def build_client(
    openai_base_url: Optional[str],
    anthropic_base_url: Optional[str],
    api_key: Optional[str],
    router: Any = None,
) -> thrifty.WrappedClient:
    """Both SDK clients behind one wrapped client: model="auto" may pick either provider."""
    clients = {
        "openai": openai.OpenAI(
            base_url=openai_base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY")
        ),
        "anthropic": anthropic.Anthropic(
            base_url=anthropic_base_url, api_key=api_key or os.environ.get("ANTHROPIC_API_KEY")
        ),
    }
    return thrifty.wrap(
        clients,
        cache=thrifty.ExactCache(max_entries=10_000),
        semantic_cache=thrifty.SemanticCache(thrifty.HashingEmbedder(), threshold=0.85),
        router=router,
        fallback_model="gpt-6-luna",  # where "auto" goes without a router
    )


def run(client: thrifty.WrappedClient, model: str = "auto") -> Dict[str, Any]:
    calls: List[Dict[str, Any]] = []
    system = {"role": "system", "content": "Answer in one short sentence."}
    for question in QUESTIONS:
        response = client.chat.completions.create(  # a ChatCompletion, whatever answered
            model=model,
            messages=[system, {"role": "user", "content": question}],
            max_tokens=100,
            thrifty={"tags": {"feature": "quickstart"}},
        )
        outcome = thrifty.last_call()
        calls.append(
            {
                "question": question,
                "answer": response.choices[0].message.content,
                "cache": outcome.cache,
                "model": outcome.model,
                "cost_usd": outcome.cost_usd,
                "saved_usd": outcome.saved_usd,
            }
        )
    stream = client.chat.completions.create(
        model=model,
        messages=[system, {"role": "user", "content": QUESTIONS[0]}],
        max_tokens=100,
        stream=True,  # a hit replays as ChatCompletionChunk objects
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    return {"calls": calls, "streamed": streamed, "stats": client.thrifty_stats()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openai-base-url", default=None)
    parser.add_argument("--anthropic-base-url", default=None)
    parser.add_argument("--api-key", default=None, help="for both providers (local servers)")
    parser.add_argument("--model", default="auto")
    args = parser.parse_args()
    client = build_client(args.openai_base_url, args.anthropic_base_url, args.api_key)
    print(json.dumps(run(client, args.model), indent=2))


if __name__ == "__main__":
    main()
