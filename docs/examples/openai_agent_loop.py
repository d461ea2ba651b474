"""A minimal tool-using agent on the OpenAI Chat Completions API, kept inside thrifty's limits.

The loop is the usual one: call the model with the tools, run the tools it asks for, append
their results, and stop when it answers in text. thrifty brackets each step:

- ``run.before_call`` before every request: it reserves the request's worst case (estimated
  input tokens plus a margin, and ``max_completion_tokens``) and raises before anything is sent
  if a step, token, dollar or time limit could break;
- ``run.after_call`` with the response's usage: it settles what the call really cost;
- ``run.tool_call`` / ``run.tool_error`` for each tool call: they count it and watch for loops
  (the same call again and again, the same error again and again, A-B-A-B oscillation).

With ``on_limit="finalize"``, the request that would break a limit is instead granted once as a
*final* call: the loop asks the model to answer with what it has, tools disabled, and returns
that answer instead of raising.

Run it against any OpenAI-compatible server (OpenAI itself, vLLM, llama.cpp's server, Ollama,
LiteLLM's proxy, ...)::

    export OPENAI_API_KEY=...        # or --api-key; local servers usually accept any key
    python docs/examples/openai_agent_loop.py --base-url https://api.openai.com/v1 \\
        --model gpt-6-luna --max-steps 6 --max-cost-usd 0.01 --finalize \\
        "What is the temperature in Paris, in Fahrenheit?"

    # a local server serving a model thrifty's catalog does not know: price it as a known one
    python docs/examples/openai_agent_loop.py --base-url http://127.0.0.1:8000/v1 \\
        --model Qwen/Qwen3-8B --price-as gpt-6-luna "..."

It prints the answer and the run's summary (counters, limits, warnings) as JSON. The tools are
toys (a fixed weather table and a unit conversion) so the example runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional

import openai

import thrifty

SYSTEM = (
    "You are a careful assistant. Use the tools to look facts up and to compute; "
    "answer briefly once you have what you need."
)
FINALIZE = (
    "You have reached this task's budget: no more tool calls are possible. "
    "Answer now, as well as you can with what you already have, and say what is missing."
)

# The tools, as JSON schema (the Chat Completions "tools" parameter) ...
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_temperature",
            "description": "The current temperature in a city, in degrees Celsius.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "e.g. Paris"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "celsius_to_fahrenheit",
            "description": "Converts a temperature from degrees Celsius to degrees Fahrenheit.",
            "parameters": {
                "type": "object",
                "properties": {"celsius": {"type": "number"}},
                "required": ["celsius"],
                "additionalProperties": False,
            },
        },
    },
]

_TEMPERATURES_C = {"paris": 18.0, "london": 14.5, "tokyo": 22.0, "new york": 16.0}


def get_temperature(city: str) -> dict[str, Any]:
    celsius = _TEMPERATURES_C.get(city.strip().lower())
    if celsius is None:
        raise LookupError(f"no weather station for {city!r}")
    return {"city": city, "celsius": celsius}


def celsius_to_fahrenheit(celsius: float) -> dict[str, Any]:
    return {"fahrenheit": round(celsius * 9 / 5 + 32, 1)}


# ... and the functions that run them locally.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "get_temperature": get_temperature,
    "celsius_to_fahrenheit": celsius_to_fahrenheit,
}


def run_agent(
    client: openai.OpenAI,
    question: str,
    budget: thrifty.AgentBudget,
    model: str = "gpt-6-luna",
    *,
    price_as: Optional[str] = None,
    max_tokens: int = 1024,
    tools: Optional[list[dict[str, Any]]] = None,
    functions: Optional[dict[str, Callable[..., Any]]] = None,
    catalog: Optional[thrifty.Catalog] = None,
) -> tuple[str, dict[str, Any]]:
    """Answers ``question`` with ``model`` and the tools, within ``budget``.

    Returns ``(answer, summary)``, the summary being ``run.summary()``. Raises a
    ``thrifty.AgentLimitError`` when a limit stops the run (unless ``budget`` finalizes), and
    whatever the OpenAI SDK raises when a request fails.

    ``price_as`` names the catalog model to count and price the calls as, when ``model`` (the
    name the server knows) is not in the catalog. ``max_tokens`` caps each completion; it is
    also what each call reserves for output, so keep it near what a step really needs.
    """
    tools = TOOLS if tools is None else tools
    functions = FUNCTIONS if functions is None else functions
    priced = price_as or model
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
    ]
    with thrifty.agent_run(budget, catalog=catalog) as run:
        out_of_tools = False  # finalize mode: the tool-call budget is spent, answer now
        while True:
            request: dict[str, Any] = {
                "model": model,
                "messages": messages,
                "tools": tools,
                "max_completion_tokens": max_tokens,
            }
            # Reserve this call's worst case; raises (nothing is sent) if a limit could break.
            reservation = run.before_call(
                priced, thrifty.estimate_tokens(request, model=priced), max_tokens
            )
            final = reservation.final or out_of_tools
            if final:
                # Keep the tools (the prompt prefix, and its provider cache, stay the same) but
                # forbid calling them, and say why.
                messages.append({"role": "user", "content": FINALIZE})
                request["tool_choice"] = "none"
            try:
                response = client.chat.completions.create(**request)
            except BaseException:
                run.cancel(reservation)  # the call failed: release what it reserved
                raise
            # Settle what the call really used. The wire format decides how to read the usage
            # (OpenAI's), whatever the model's provider is.
            run.after_call(
                priced, thrifty.Usage.from_openai(response.usage), reservation=reservation
            )

            message = response.choices[0].message
            if final or not message.tool_calls:
                return message.content or "", run.summary()

            messages.append(
                {
                    "role": "assistant",
                    "content": message.content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.function.name,
                                "arguments": call.function.arguments,
                            },
                        }
                        for call in message.tool_calls
                    ],
                }
            )
            for call in message.tool_calls:
                if out_of_tools:
                    result = "Not run: the tool-call budget of this task is spent."
                else:
                    try:
                        result = _run_tool(
                            run, functions, call.function.name, call.function.arguments
                        )
                    except thrifty.StepLimitExceeded:  # max_tool_calls reached
                        if budget.on_limit != "finalize":
                            raise
                        out_of_tools = True
                        result = "Not run: the tool-call budget of this task is spent."
                # Every tool call needs its answer, or the next request is invalid.
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


def _run_tool(run: Any, functions: dict[str, Callable[..., Any]], name: str, arguments: str) -> str:
    """Runs one tool call under the run's tool limits; returns what to tell the model."""
    warnings_before = len(run.warnings)
    try:
        run.tool_call(name, arguments)  # counts it and checks for loops; may warn or raise
    except thrifty.LoopDetectedError as e:
        if e.stopped:  # the loop went on too long: the run is over
            raise
        # Refused, but the run goes on: tell the model, which may change course.
        return f"Refused: {e.reason}. Do not repeat this call; try something else or answer."
    try:
        function = functions.get(name)
        if function is None:
            raise LookupError(f"there is no tool named {name!r}")
        result = json.dumps(function(**json.loads(arguments or "{}")))
    except Exception as e:  # the tool failed: the model gets the error, thrifty watches repeats
        error = f"{type(e).__name__}: {e}"
        run.tool_error(name, error)  # raises LoopDetectedError once the same error repeats enough
        return f"Error: {error}"
    if len(run.warnings) > warnings_before:  # a loop warning: let the model know too
        result += f"\n(Note: {run.warnings[-1]}. Repeating it will not give a different result.)"
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default="What is the temperature in Paris, in °F?")
    parser.add_argument(
        "--base-url",
        help="the OpenAI-compatible API's base URL, e.g. http://127.0.0.1:8000/v1 "
        "(default: $OPENAI_BASE_URL, else OpenAI's)",
    )
    parser.add_argument("--api-key", help="default: $OPENAI_API_KEY")
    parser.add_argument("--model", default="gpt-6-luna")
    parser.add_argument("--price-as", help="a catalog model to price the calls as")
    parser.add_argument("--max-tokens", type=int, default=1024, help="per completion")
    parser.add_argument("--max-steps", type=int, default=8, help="LLM calls")
    parser.add_argument("--max-tool-calls", type=int)
    parser.add_argument("--max-cost-usd", type=float, default=0.05)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument(
        "--finalize",
        action="store_true",
        help="at a limit, ask for a final answer without tools instead of failing",
    )
    args = parser.parse_args(argv)

    priced = args.price_as or args.model
    if thrifty.Catalog.default().find(priced) is None:
        parser.error(
            f"{priced!r} is not in thrifty's catalog: pass --price-as with a model that is"
        )
    budget = thrifty.AgentBudget(
        max_steps=args.max_steps,
        max_tool_calls=args.max_tool_calls,
        max_cost_usd=args.max_cost_usd,
        max_seconds=args.max_seconds,
        on_limit="finalize" if args.finalize else "raise",
    )
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    try:
        answer, summary = run_agent(
            client,
            args.question,
            budget,
            args.model,
            price_as=args.price_as,
            max_tokens=args.max_tokens,
        )
    except thrifty.AgentLimitError as e:
        print(f"stopped by a limit ({e.kind}): {e.reason}", file=sys.stderr)
        print(json.dumps(e.counters, indent=2), file=sys.stderr)
        return 2
    print(answer)
    print(json.dumps(summary, indent=2, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
