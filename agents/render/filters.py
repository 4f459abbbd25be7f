"""Liquid-style template filters (`date`, `money`, `upcase`, `pluralize`, ...): pure functions.

Customer.io users write Liquid; these give the same names and meanings on top of Jinja2's own
filters, so `{{ customer.created_at | date: "%b %d" }}` becomes `{{ customer.created_at | date("%b %d") }}`.
"""

from __future__ import annotations

import re
from datetime import date as date_type
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html import unescape
from typing import Any, Callable
from urllib.parse import quote, quote_plus

from markupsafe import Markup


class FilterError(ValueError):
    """A filter got a value it cannot handle; the message names the filter and the value."""


def _timestamp(value: Any, name: str) -> datetime:
    if isinstance(value, bool):
        raise FilterError(f"{name}: expected a timestamp, got {value!r}")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date_type):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        # Milliseconds are common in event data; 10^11 s is the year 5138.
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _timestamp(float(text), name)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FilterError(
                f"{name}: {value!r} is neither Unix seconds nor an ISO 8601 date"
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise FilterError(f"{name}: expected a timestamp, got {type(value).__name__}")


def date(value: Any, format: str = "%Y-%m-%d") -> str:
    """Format Unix seconds (or milliseconds), an ISO 8601 string or a datetime with strftime, in UTC."""
    return _timestamp(value, "date").strftime(format)


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise FilterError(f"{name}: expected a number, got {value!r}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise FilterError(f"{name}: expected a number, got {value!r}") from exc


_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$",
                     "AUD": "A$", "CHF": "CHF ", "BRL": "R$"}
_ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK"}


def money(value: Any, currency: str = "USD", cents: bool = False) -> str:
    """`1234.5` -> `$1,234.50`; `cents=True` reads the value as minor units (Stripe style)."""
    amount = _decimal(value, "money")
    code = currency.upper()
    places = 0 if code in _ZERO_DECIMAL else 2
    if cents and places:
        amount = amount / 100
    quantum = Decimal(1).scaleb(-places)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    number = f"{abs(rounded):,.{places}f}"
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def capitalize(value: Any) -> str:
    """First character upper case, the rest unchanged (Liquid's meaning, not Python's)."""
    text = str(value)
    return text[:1].upper() + text[1:]


def upcase(value: Any) -> str:
    """All upper case."""
    return str(value).upper()


def downcase(value: Any) -> str:
    """All lower case."""
    return str(value).lower()


def truncate(value: Any, length: int = 50, ellipsis: str = "...") -> str:
    """At most `length` characters including the ellipsis (Liquid's rule)."""
    text = str(value)
    if length < len(ellipsis):
        raise FilterError(f"truncate: length {length} is shorter than the ellipsis {ellipsis!r}")
    if len(text) <= length:
        return text
    return text[: length - len(ellipsis)] + ellipsis


def truncatewords(value: Any, words: int = 15, ellipsis: str = "...") -> str:
    """At most `words` words, then the ellipsis."""
    parts = str(value).split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]) + ellipsis


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def strip_html(value: Any) -> str:
    """Remove tags (and script/style contents); entities become characters."""
    return unescape(_TAG.sub("", str(value)))


def pluralize(count: Any, singular: str = "", plural: str = "s") -> str:
    """`{{ n }} item{{ n | pluralize }}`, or `n | pluralize("child", "children")`."""
    number = _decimal(count, "pluralize")
    return singular if number == 1 else plural


def url_encode(value: Any) -> str:
    """Percent-encode for a query string value (spaces become +)."""
    return quote_plus(str(value))


def url_escape(value: Any) -> str:
    """Percent-encode for a URL path (keeps / and spaces become %20)."""
    return quote(str(value), safe="/")


def strip_newlines(value: Any) -> str:
    """Remove line breaks."""
    return re.sub(r"[\r\n]+", "", str(value))


def newline_to_br(value: Any) -> Markup:
    """Line breaks become `<br>`; the text itself stays escaped."""
    escaped = Markup.escape(str(value))
    return Markup(re.sub(r"\r?\n", "<br>\n", str(escaped)))


def _number(value: Any, name: str) -> int | float | Decimal:
    number = _decimal(value, name)
    return int(number) if number == number.to_integral_value() else number


def plus(value: Any, other: Any) -> int | float | Decimal:
    """Liquid arithmetic: `plus`."""
    return _number(_decimal(value, "plus") + _decimal(other, "plus"), "plus")


def minus(value: Any, other: Any) -> int | float | Decimal:
    """Liquid arithmetic: `minus`."""
    return _number(_decimal(value, "minus") - _decimal(other, "minus"), "minus")


def times(value: Any, other: Any) -> int | float | Decimal:
    """Liquid arithmetic: `times`."""
    return _number(_decimal(value, "times") * _decimal(other, "times"), "times")


def divided_by(value: Any, other: Any) -> int | float | Decimal:
    """Liquid arithmetic: `divided_by` (integer division when both are integers, like Liquid)."""
    a, b = _decimal(value, "divided_by"), _decimal(other, "divided_by")
    if b == 0:
        raise FilterError("divided_by: division by zero")
    if a == a.to_integral_value() and b == b.to_integral_value():
        return int(a // b)
    return _number(a / b, "divided_by")


def default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """Liquid's `default`: the fallback for undefined, None, false and empty strings/lists.

    Jinja2's own `default` only replaces undefined values; Liquid users expect nil and "" too.
    """
    from jinja2 import Undefined

    if isinstance(value, Undefined) or value is None or value is False:
        return fallback
    if isinstance(value, (str, list, dict, tuple)) and len(value) == 0:
        return fallback
    return value


FILTERS: dict[str, Callable[..., Any]] = {
    "date": date,
    "money": money,
    "currency": money,
    "capitalize": capitalize,
    "upcase": upcase,
    "downcase": downcase,
    "truncate": truncate,
    "truncatewords": truncatewords,
    "strip_html": strip_html,
    "pluralize": pluralize,
    "url_encode": url_encode,
    "url_escape": url_escape,
    "strip_newlines": strip_newlines,
    "newline_to_br": newline_to_br,
    "plus": plus,
    "minus": minus,
    "times": times,
    "divided_by": divided_by,
    "default": default,
    "d": default,
}
