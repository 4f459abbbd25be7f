"""The fix to suggest for a misspelt key, value or name: `did you mean ...?`. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# Words people reach for, and the campaign language's word for them.
SYNONYMS = {
    "equals": "eq", "equal": "eq", "is": "eq", "==": "eq",
    "not_equals": "ne", "not_equal": "ne", "neq": "ne", "!=": "ne",
    "greater_than": "gt", "more_than": "gt", "above": "gt", ">": "gt",
    "less_than": "lt", "below": "lt", "<": "lt",
    "at_least": "gte", "atleast": "gte", "min": "gte", "minimum": "gte", ">=": "gte",
    "at_most": "lte", "atmost": "lte", "maximum": "lte", "<=": "lte",
    "includes": "contains", "include": "contains", "has": "contains",
    "one_of": "in", "any_of": "in", "exist": "exists", "present": "exists", "is_set": "exists",
    "before": "older_than", "older": "older_than", "in_last": "within_last", "in_the_last": "within_last",
    "times": "count", "occurrences": "count", "since_entry": "since", "properties": "where",
    "data": "where", "inactive": "not_performed", "not_done": "not_performed",
    "delay": "wait", "sleep": "wait", "wait_for": "wait_until", "until": "wait_until",
    "email": "send", "send_email": "send", "template": "send", "if_else": "branch",
    "condition": "if", "conditions": "all", "and": "all", "or": "any",
    "switch": "split", "ab_test": "random", "update": "set", "set_attribute": "set",
    "re_entry": "reentry", "reenter": "reentry", "entry": "reentry", "trigger_event": "trigger",
    "filters": "filter", "exit_condition": "exit", "conversion": "goal", "timezone": "fallback_timezone",
    "start": "from", "end": "to", "percentage": "percent", "cohorts": "random",
}

_UNITS = {"second": "s", "sec": "s", "minute": "m", "min": "m", "hour": "h", "hr": "h",
          "day": "d", "week": "w", "wk": "w"}
_SPELLED_DURATION = re.compile(r"^\s*(-?)(\d+)\s*([a-z]+?)s?\s*$", re.IGNORECASE)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` most likely meant (a known synonym first, then the closest spelling)."""
    options = list(dict.fromkeys(choices))
    synonym = SYNONYMS.get(word.lower())
    if synonym in options:
        return synonym
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    if close:
        return close[0]
    lowered = {o.lower(): o for o in options}
    return lowered.get(word.lower())


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean X?)`, or nothing."""
    found = did_you_mean(word, choices)
    return f" (did you mean {found!r}?)" if found is not None and found != word else ""


def duration_fix(value: object) -> str | None:
    """`2 days` -> `2d`: the duration a spelled-out one means, if it is one."""
    match = _SPELLED_DURATION.match(str(value))
    if match is None:
        return None
    unit = match[3].lower()
    short = _UNITS.get(unit) or (unit if unit in "smhdw" and len(unit) == 1 else None)
    return f"{match[1]}{match[2]}{short}" if short else None
