"""What a request may carry before anything downstream sees it (pure).

Kafka's wire format and the person state are serialized with orjson, which refuses nesting
past 254 levels, and PostgreSQL refuses NUL characters and lone surrogates in text and JSONB.
A body, a path or a query that carries any of these is refused here, at the door, with the
field named, instead of failing later inside a worker or a projector batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from schemas.errors import InputError

# Far beyond any real payload (Segment's `context` is 4 deep), far below orjson's 254 once
# Nudge has wrapped a value in its envelope, state and read-model records.
MAX_JSON_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnsafeValue(InputError):
    """A value Nudge cannot store; `path` names where it is, the message says why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"`{path}` {problem}" if path else problem)
        self.path = path
        self.problem = problem


def join_path(parts: Iterable[str | int]) -> str:
    """`("data", "items", 3, "name")` as `data.items[3].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store `value`, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"


def check_text(value: str, path: str) -> None:
    """Raise UnsafeValue when `value` has a character PostgreSQL cannot store."""
    problem = text_problem(value)
    if problem is not None:
        raise UnsafeValue(path, problem)


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH, root: tuple[str | int, ...] = ()) -> None:
    """Raise UnsafeValue for nesting past `max_depth`, unstorable text or non-finite numbers."""
    # Iterative: a hostile body must not be able to exhaust the interpreter's stack.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            check_text(item, join_path(path))
        elif isinstance(item, dict):
            if len(path) - len(root) >= max_depth:
                raise UnsafeValue(join_path(path), f"is nested deeper than {max_depth} levels")
            for key, child in item.items():
                problem = text_problem(key)
                if problem is not None:
                    raise UnsafeValue(join_path(path), f"has a key that {problem}")
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            if len(path) - len(root) >= max_depth:
                raise UnsafeValue(join_path(path), f"is nested deeper than {max_depth} levels")
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeValue(join_path(path), "is not a finite number")
