"""The Jinja2 sandbox templates run in: no file access, no private attributes, bounded time and size.

Jinja2's `ImmutableSandboxedEnvironment` already refuses `__class__`-style attribute walks and
mutation of data; there is no loader, so `{% include %}` and `{% import %}` cannot read files.
What it does not bound is work, so every render runs under a `RenderBudget`:

- the output is produced chunk by chunk (`Template.generate`) and capped in characters;
- `range()`, attribute and item lookups, calls and the `*`/`**` operators count as steps, and
  every 256 steps the deadline is checked, so a loop that prints nothing still stops;
- `*`/`**` and lookups that would build a string or list past the output cap are refused.

The clock is passed in by the caller; a template that exceeds its budget fails that message.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agents.render.filters import FILTERS

MAX_RANGE = 100_000
_CHECK_EVERY = 256


class RenderBudgetExceeded(Exception):
    """A template used more time or output than its budget allows."""


@dataclass(frozen=True)
class RenderLimits:
    """How much one part of one message may cost to render."""

    max_seconds: float = 2.0
    max_chars: int = 1_000_000


@dataclass
class RenderBudget:
    """The running count of one render: steps taken and characters produced against the limits."""

    limits: RenderLimits
    clock: Callable[[], float]
    deadline: float = 0.0
    steps: int = 0
    chars: int = 0
    started: float = field(default=0.0)

    def start(self) -> None:
        self.started = self.clock()
        self.deadline = self.started + self.limits.max_seconds

    def step(self, count: int = 1) -> None:
        before = self.steps
        self.steps += count
        if before // _CHECK_EVERY != self.steps // _CHECK_EVERY and self.clock() > self.deadline:
            raise RenderBudgetExceeded(
                f"rendering took longer than {self.limits.max_seconds:g}s "
                f"({self.steps} steps); simplify the template's loops"
            )

    def output(self, chunk: str) -> None:
        self.chars += len(chunk)
        if self.chars > self.limits.max_chars:
            raise RenderBudgetExceeded(
                f"output is larger than {self.limits.max_chars} characters"
            )
        self.step()

    def size(self, value: Any) -> Any:
        if isinstance(value, (str, list, tuple)) and len(value) > self.limits.max_chars:
            raise RenderBudgetExceeded(
                f"a value of {len(value)} items is larger than the output limit "
                f"({self.limits.max_chars})"
            )
        return value


_current: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


def _budget() -> RenderBudget | None:
    return _current.get()


def _guarded_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() of {len(numbers)} items is more than {MAX_RANGE}")
    budget = _budget()
    for number in numbers:
        if budget is not None:
            budget.step()
        yield number


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, counting steps against the current render's budget."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and isinstance(left, (int, float)) and abs(left) > 1:
                raise SecurityError(f"{left} ** {right} is too large to compute in a template")
        elif operator == "*" and budget is not None:
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > budget.limits.max_chars:
                        raise RenderBudgetExceeded(
                            f"repeating a value {times} times exceeds the output limit"
                        )
        if budget is not None:
            budget.step()
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        budget = _budget()
        value = super().getattr(obj, attribute)
        if budget is not None:
            budget.step()
            budget.size(value)
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        budget = _budget()
        value = super().getitem(obj, argument)
        if budget is not None:
            budget.step()
            budget.size(value)
        return value

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        if budget is not None:
            budget.step()
        result = super().call(__context, __obj, *args, **kwargs)
        if budget is not None:
            budget.size(result)
        return result


def make_environment(*, html: bool) -> LimitedSandbox:
    """A sandbox with strict undefined variables, the Liquid-style filters and a guarded range()."""
    env = LimitedSandbox(undefined=StrictUndefined, autoescape=html)
    env.filters.update(FILTERS)
    env.globals["range"] = _guarded_range
    return env


def render_within(
    template: Any, variables: dict[str, Any], limits: RenderLimits, clock: Callable[[], float]
) -> str:
    """Render a compiled template under a fresh budget; raise RenderBudgetExceeded past it."""
    budget = RenderBudget(limits=limits, clock=clock)
    budget.start()
    token = _current.set(budget)
    try:
        chunks: list[str] = []
        for chunk in template.generate(variables):
            budget.output(chunk)
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _current.reset(token)
