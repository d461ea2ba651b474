"""Agent step limits: steps, tool calls, tokens, dollars, wall-clock and loop detection.

    budget = thrifty.AgentBudget(max_steps=30, max_cost_usd=0.50, max_seconds=120)
    with thrifty.agent_run(budget) as run:
        r = run.before_call(model, thrifty.estimate_tokens(request, model=model), max_tokens)
        response = client.chat.completions.create(**request)   # only if before_call allowed it
        run.after_call(model, response.usage, reservation=r)
        for call in response.choices[0].message.tool_calls or []:
            run.tool_call(call.function.name, call.function.arguments)

before_call reserves the call's worst case and raises a typed AgentLimitError *before* anything
is sent when a limit could break; after_call settles what the provider reported. Runs nest: a run
opened inside another counts against it too. See docs/agents.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from thrifty import _core
from thrifty._core import AgentBudget, LoopPolicy, Reservation, Usage
from thrifty.catalog import Catalog

__all__ = [
    "AgentBudget",
    "AgentRun",
    "LoopPolicy",
    "LoopWarning",
    "Reservation",
    "agent_run",
    "current_run",
]

_CURRENT: contextvars.ContextVar[Optional[AgentRun]] = contextvars.ContextVar(
    "thrifty_agent_run", default=None
)


class LoopWarning(UserWarning):
    """The agent repeats itself (the first escalation level of LoopPolicy)."""


class AgentRun:
    """One agent run's limits and counters. Thread-safe: parallel tool calls may share it."""

    def __init__(
        self,
        budget: AgentBudget,
        catalog: Optional[Catalog] = None,
        parent: Optional[AgentRun] = None,
    ):
        if not isinstance(budget, AgentBudget):
            raise TypeError(f"budget must be a thrifty.AgentBudget, got {type(budget).__name__}")
        self.catalog = catalog if catalog is not None else Catalog.default()
        self.parent = parent
        self.budget = budget
        self._core = _core._AgentRun(budget, self.catalog, parent._core if parent else None)
        self.warnings: List[str] = []
        self._closed = False

    # -- LLM calls ------------------------------------------------------------------------
    def before_call(self, model: str, input_tokens: int, max_output_tokens: int) -> Reservation:
        """Reserves the call's worst case; raises an AgentLimitError if it could break a limit."""
        self._check_open()
        return self._core.before_call(model, int(input_tokens), int(max_output_tokens))

    def after_call(
        self, model: str, usage: Any, reservation: Optional[Reservation] = None
    ) -> float:
        """Settles a call with the provider's usage (a thrifty.Usage, or the SDK's usage object
        or dict, parsed with the model's provider). Returns the call's cost in USD."""
        self._check_open()
        if not isinstance(usage, Usage):
            usage = Usage.from_provider(self.catalog.get(model).provider, usage)
        reservation_id = (
            reservation.id if reservation is not None else self._core.oldest_reservation(model)
        )
        if reservation is not None and reservation.model != model:
            raise _core.InvalidArgumentError(
                f"after_call: the reservation is for '{reservation.model}', not '{model}'"
            )
        return self._core.after_call(reservation_id, usage)

    def cancel(self, reservation: Reservation) -> None:
        """Releases the reservation of a call that failed (the step still counts)."""
        self._core.cancel(reservation.id)

    # -- tools ----------------------------------------------------------------------------
    def tool_call(self, name: str, arguments: Union[str, Dict[str, Any], None] = None) -> None:
        """Counts a tool call and checks for loops: warns (LoopWarning), or raises
        LoopDetectedError / StepLimitExceeded; the call must not run when this raises."""
        self._check_open()
        text = (
            arguments if isinstance(arguments, str) else json.dumps(arguments or {}, sort_keys=True)
        )
        self._warn(self._core.tool_call(name, text))

    def tool_error(self, name: str, message: str) -> None:
        """Reports a failed tool call; the same error again and again warns, then stops the run."""
        self._warn(self._core.tool_error(name, str(message)))

    # -- state ----------------------------------------------------------------------------
    @property
    def counters(self) -> Dict[str, Any]:
        return self._core.counters()

    def remaining_fraction(self) -> float:
        """The smallest share left of the cost and token limits (1.0 when none is set)."""
        return self._core.remaining_fraction()

    def adjusted_threshold(self, base: float, floor: float = 0.5) -> Tuple[float, str]:
        """Budget-aware routing: the quality threshold to route with now, and why. With half of
        the tightest budget left or more: base; under a half: base - 0.05; under a fifth:
        base - 0.10; never below floor."""
        return self._core.adjusted_threshold(base, floor)

    def summary(self) -> Dict[str, Any]:
        b = self.budget
        return {
            **self.counters,
            "limits": {
                "max_steps": b.max_steps,
                "max_tool_calls": b.max_tool_calls,
                "max_input_tokens": b.max_input_tokens,
                "max_output_tokens": b.max_output_tokens,
                "max_cost_usd": b.max_cost_usd,
                "max_seconds": b.max_seconds,
                "on_limit": b.on_limit,
            },
            "remaining_fraction": self.remaining_fraction(),
            "warnings": list(self.warnings),
            "nested": self.parent is not None,
        }

    def _warn(self, message: str) -> None:
        if message:
            self.warnings.append(message)
            warnings.warn(message, LoopWarning, stacklevel=3)

    def _check_open(self) -> None:
        if self._closed:
            raise _core.FailedPreconditionError(
                "this agent run has ended (its `with` block exited)"
            )


@contextlib.contextmanager
def agent_run(budget: AgentBudget, catalog: Optional[Catalog] = None) -> Iterator[AgentRun]:
    """Opens an agent run; inside another run it becomes a sub-run counted against its parent."""
    parent = _CURRENT.get()
    run = AgentRun(
        budget, catalog if catalog is not None else (parent.catalog if parent else None), parent
    )
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)
        run._closed = True


def current_run() -> Optional[AgentRun]:
    """The innermost open agent run in this context, or None."""
    return _CURRENT.get()
