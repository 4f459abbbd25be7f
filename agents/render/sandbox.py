"""The Jinja2 sandbox templates run in: no file access, no private attributes, bounded time and size.

Jinja2's `ImmutableSandboxedEnvironment` already refuses `__class__`-style attribute walks and
mutation of data; there is no loader, so `{% include %}` and `{% import %}` cannot read files.
What it does not bound is work, so every render runs under a `RenderBudget`:

- the output is produced chunk by chunk (`Template.generate`) and capped in characters;
- `range()`, attribute and item lookups, calls and the `*`/`**` operators count as steps, and
  every 256 steps the deadline is checked, so a loop that prints nothing still stops;
- `*`/`**`/`%`, filters and lookups that would build a string or list past the output cap are
  refused (filters count as steps too).

The clock is passed in by the caller; a template that exceeds its budget fails that message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agents.render.filters import FILTERS
from agents.render.liquid import TESTS, FallbackUndefined, LiquidSyntax, liquid_property
from schemas.errors import ConfigurationError

MAX_RANGE = 100_000
_CHECK_EVERY = 256


class RenderBudgetExceeded(ConfigurationError):
    """A template used more time or output than its budget allows: simplify its loops or output."""


@dataclass(frozen=True)
class RenderLimits:
    """How much one part of one message may cost to render."""

    max_seconds: float = 2.0
    max_chars: int = 1_000_000


# What compiling a template may build (Jinja2 runs filters of constants at compile time).
_COMPILE_LIMITS = RenderLimits()


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


# Filters whose integer arguments size what they build (`center(10**9)`, Jinja2's `slice(n)`).
_SIZING_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice", "format"})
_FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\d+)")


def _check_sizes(name: str, args: tuple[Any, ...], max_chars: int) -> None:
    """Refuse arguments that would build a value past the output cap before it is built."""
    if name in _SIZING_FILTERS:
        for value in args[1:]:
            if isinstance(value, int) and not isinstance(value, bool) and value > max_chars:
                raise RenderBudgetExceeded(f"{name}({value}): larger than the output limit ({max_chars})")
    if name == "format" and args and isinstance(args[0], str):
        _check_format(args[0], max_chars)


def _check_format(text: str, max_chars: int) -> None:
    widths = [int(w) for w in _FORMAT_WIDTH.findall(text)]
    if widths and max(widths) > max_chars:
        raise RenderBudgetExceeded(f"a format width of {max(widths)} is larger than the output limit")


def _counted(name: str, filter_function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts as a step and may not build values past the output cap
    (`{% assign s = s | append: s %}` in a loop doubles a string each time). Jinja2 also runs
    filters of constants while compiling, with no budget: the default limits hold there."""

    @functools.wraps(filter_function)
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        max_chars = (budget.limits if budget is not None else _COMPILE_LIMITS).max_chars
        _check_sizes(name, args, max_chars)
        result = filter_function(*args, **kwargs)
        if budget is not None:
            budget.step()
            budget.size(result)
        elif isinstance(result, (str, list, tuple)) and len(result) > max_chars:
            raise RenderBudgetExceeded(f"{name}: a value of {len(result)} items is larger than the output limit")
        return result

    return run


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, counting steps against the current render's budget."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and isinstance(left, (int, float)) and abs(left) > 1:
                raise SecurityError(f"{left} ** {right} is too large to compute in a template")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, (budget.limits if budget is not None else _COMPILE_LIMITS).max_chars)
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
        if isinstance(obj, dict) and attribute in obj:
            # Data before methods (Liquid's rule): `event.items` is the event's items.
            value = obj[attribute]
        else:
            value = super().getattr(obj, attribute)
            if isinstance(value, Undefined):
                value = liquid_property(obj, attribute, value)
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

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        if budget is not None:
            budget.step()
        result = super().call(__context, __obj, *args, **kwargs)
        if budget is not None:
            budget.size(result)
        return result


def make_environment(*, html: bool) -> LimitedSandbox:
    """A sandbox with strict undefined variables, Liquid syntax and filters, and a guarded range()."""
    env = LimitedSandbox(
        undefined=FallbackUndefined, autoescape=html,
        extensions=[LiquidSyntax, "jinja2.ext.loopcontrols"],
    )
    env.filters.update(FILTERS)
    env.filters = {name: _counted(name, f) for name, f in env.filters.items()}
    env.tests.update(TESTS)
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
        # `budget.output` with the size check inlined: delivery renders thousands of parts a
        # second, and most of their chunks are short.
        chars, max_chars, step = 0, limits.max_chars, budget.step
        for chunk in template.generate(variables):
            chars += len(chunk)
            if chars > max_chars:
                raise RenderBudgetExceeded(f"output is larger than {max_chars} characters")
            chunks.append(chunk)
            step()
        budget.chars = chars
        return "".join(chunks)
    finally:
        _current.reset(token)
