"""Liquid's template filters (`date`, `default`, `upcase`, `append`, `split`, ...) and Nudge's own
(`money`, `pluralize`): pure functions, on top of Jinja2's filters.

Customer.io users write Liquid; these give its names and meanings, and `agents/render/liquid.py`
reads the Liquid call syntax, so `{{ customer.created_at | date: "%b %d" }}` and
`{{ customer.created_at | date("%b %d") }}` are the same. Where a Jinja2 filter of the same name
means something else (`truncate`, `join`, `round`), Liquid's meaning wins.

`date` of `"now"` or `"today"` is the render's moment: the send time when delivering, the
virtual clock's time in `nudge simulate` (`rendering_at`).
"""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from datetime import date as date_type
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html import unescape
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from markupsafe import Markup

from schemas.errors import ConfigurationError

# The moment `"now" | date` means; None: the wall clock.
_render_now: ContextVar[float | None] = ContextVar("render_now", default=None)


@contextmanager
def rendering_at(moment: float) -> Iterator[None]:
    """Within this block, `"now"` in templates is `moment` (Unix seconds): a virtual clock's time."""
    token = _render_now.set(moment)
    try:
        yield
    finally:
        _render_now.reset(token)


class FilterError(ConfigurationError, ValueError):
    """A filter got a value it cannot handle; the message names the filter and the value: guard it
    in the template (`| default:`) or fix the data sent."""


def _timestamp(value: Any, name: str) -> datetime:
    if isinstance(value, bool):
        raise FilterError(f"{name}: expected a timestamp, got {value!r}")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date_type):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)):
        # Milliseconds are common in event data; 10^11 s is the year 5138.
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("now", "today"):
            moment = _render_now.get()
            return _timestamp(time.time() if moment is None else moment, name)
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _timestamp(float(text), name)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FilterError(
                f"{name}: {value!r} is neither Unix seconds nor an ISO 8601 date"
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise FilterError(f"{name}: expected a timestamp, got {type(value).__name__}")


_DETAILED_ZONE = re.compile(r"^\(GMT([+-])(\d{1,2}):(\d{2})\)")


def _zone(value: Any) -> tzinfo:
    """A time zone: IANA (`Europe/Berlin`), Customer.io's detailed `(GMT-11:00) Hawaii`, or
    minutes behind UTC as Customer.io's latest Liquid reads a number (`360` is UTC-6)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timezone(timedelta(minutes=-float(value)))
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return timezone(timedelta(minutes=-int(text)))
    detailed = _DETAILED_ZONE.match(text)
    if detailed:
        sign = 1 if detailed[1] == "+" else -1
        return timezone(sign * timedelta(hours=int(detailed[2]), minutes=int(detailed[3])))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise FilterError(f"date: {value!r} is not a time zone (use an IANA name like Europe/Berlin)") from None


def date(value: Any, format: str = "%Y-%m-%d", zone: Any = None) -> str:
    """Format Unix seconds (or milliseconds), an ISO 8601 string or a datetime with strftime, in
    UTC or in `zone` (Customer.io's second argument); `%s` is Unix seconds."""
    moment = _timestamp(value, "date")
    if zone is not None and zone != "":
        moment = moment.astimezone(_zone(zone))
    # strftime's %s reads the machine's local zone; Unix seconds have none.
    format = format.replace("%s", str(int(moment.timestamp())))
    return moment.strftime(format)


def _shift(value: Any, name: str, **delta: int) -> int:
    moment = _timestamp(value, name)
    months = delta.pop("months", 0)
    if months:
        index = moment.month - 1 + months
        year, month = moment.year + index // 12, index % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        moment = moment.replace(year=year, month=month, day=day)
    return int((moment + timedelta(**delta)).timestamp())


def add_day(value: Any, days: Any = 1) -> int:
    """Customer.io's `add_day: n`: the timestamp n days later, as Unix seconds."""
    return _shift(value, "add_day", days=int(_decimal(days, "add_day")))


def subtract_day(value: Any, days: Any = 1) -> int:
    """Customer.io's `subtract_day: n`."""
    return _shift(value, "subtract_day", days=-int(_decimal(days, "subtract_day")))


def add_month(value: Any, months: Any = 1) -> int:
    """Customer.io's `add_month: n` (the day is kept, or the month's last day)."""
    return _shift(value, "add_month", months=int(_decimal(months, "add_month")))


def subtract_month(value: Any, months: Any = 1) -> int:
    """Customer.io's `subtract_month: n`."""
    return _shift(value, "subtract_month", months=-int(_decimal(months, "subtract_month")))


def add_year(value: Any, years: Any = 1) -> int:
    """Customer.io's `add_year: n`."""
    return _shift(value, "add_year", months=12 * int(_decimal(years, "add_year")))


def subtract_year(value: Any, years: Any = 1) -> int:
    """Customer.io's `subtract_year: n`."""
    return _shift(value, "subtract_year", months=-12 * int(_decimal(years, "subtract_year")))


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


# Customer.io's `currency: 'en-GB'` names a locale; the locale's currency unless one follows it.
_LOCALE_CURRENCY = {
    "en": "USD", "en-us": "USD", "en-gb": "GBP", "en-ca": "CAD", "en-au": "AUD", "en-in": "INR",
    "de": "EUR", "de-de": "EUR", "fr": "EUR", "fr-fr": "EUR", "es": "EUR", "es-es": "EUR",
    "it": "EUR", "it-it": "EUR", "nl": "EUR", "nl-nl": "EUR", "ja": "JPY", "ja-jp": "JPY",
    "pt-br": "BRL", "de-ch": "CHF",
}


def money(value: Any, currency: str = "USD", cents: Any = False) -> str:
    """`1234.5` -> `$1,234.50`; `cents=True` reads the value as minor units (Stripe style).

    Customer.io's form works too: `currency: 'en-GB'` (a locale) or `currency: 'en', 'EUR'`.
    """
    amount = _decimal(value, "money")
    code = currency.upper()
    if currency.lower() in _LOCALE_CURRENCY:
        code = cents.upper() if isinstance(cents, str) else _LOCALE_CURRENCY[currency.lower()]
        cents = False
    places = 0 if code in _ZERO_DECIMAL else 2
    if cents and places:
        amount = amount / 100
    quantum = Decimal(1).scaleb(-places)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    number = f"{abs(rounded):,.{places}f}"
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def rounded_currency(value: Any, currency: str = "USD", code: Any = False) -> str:
    """Customer.io's `rounded_currency`: like `currency`, without the cents."""
    whole = _decimal(value, "rounded_currency").quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return re.sub(r"[.,]00(?=\D*$)", "", money(whole, currency, code))


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


def default(value: Any, fallback: Any = "", boolean: bool = False, allow_false: bool = False) -> Any:
    """Liquid's `default`: the fallback for undefined, None, false and empty strings/lists.

    Jinja2's own `default` only replaces undefined values; Liquid users expect nil and "" too.
    `allow_false=true` keeps `false` (Liquid's option).
    """
    from jinja2 import Undefined

    if isinstance(value, Undefined) or value is None or (value is False and not allow_false):
        return fallback
    if isinstance(value, (str, list, dict, tuple)) and len(value) == 0:
        return fallback
    return value


# --- Liquid's string and array filters ------------------------------------------------------


def _text(value: Any, name: str) -> str:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        str(value)  # raises UndefinedError, naming the variable
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        raise FilterError(f"{name}: expected text, got a {type(value).__name__}")
    return str(value)


def append(value: Any, suffix: Any) -> str:
    """`"a" | append: "b"` is `ab`."""
    return _text(value, "append") + _text(suffix, "append")


def prepend(value: Any, prefix: Any) -> str:
    """`"b" | prepend: "a"` is `ab`."""
    return _text(prefix, "prepend") + _text(value, "prepend")


def split(value: Any, separator: str = " ") -> list[str]:
    """Text into a list at each `separator` (Liquid: a single space splits on any whitespace)."""
    text = _text(value, "split")
    if separator == " ":
        return text.split()
    if separator == "":
        return list(text)
    return text.split(separator)


def join(value: Any, separator: str = " ", attribute: str | None = None) -> str:
    """A list as text, `separator` between items (Liquid's default is one space)."""
    from markupsafe import soft_str

    if isinstance(value, str):
        return value
    items = list(_sequence(value, "join"))
    if attribute is not None:
        items = [item.get(attribute) if isinstance(item, dict) else getattr(item, attribute, None) for item in items]
    if isinstance(separator, Markup) or any(isinstance(i, Markup) for i in items):
        return Markup(separator).join(items)
    return separator.join(soft_str(_text(i, "join")) for i in items)


def _sequence(value: Any, name: str) -> list[Any]:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        list(value)  # raises UndefinedError, naming the variable
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, dict)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise FilterError(f"{name}: expected a list, got {type(value).__name__}") from None


def size(value: Any) -> int:
    """How many items (or characters); 0 for nothing."""
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    return 0


def strip(value: Any) -> str:
    """Without leading and trailing whitespace."""
    return _text(value, "strip").strip()


def lstrip(value: Any) -> str:
    """Without leading whitespace."""
    return _text(value, "lstrip").lstrip()


def rstrip(value: Any) -> str:
    """Without trailing whitespace."""
    return _text(value, "rstrip").rstrip()


def remove(value: Any, text: str) -> str:
    """Every occurrence of `text` removed."""
    return _text(value, "remove").replace(text, "")


def remove_first(value: Any, text: str) -> str:
    """The first occurrence of `text` removed."""
    return _text(value, "remove_first").replace(text, "", 1)


def replace_first(value: Any, old: str, new: str = "") -> str:
    """The first occurrence of `old` replaced."""
    return _text(value, "replace_first").replace(old, new, 1)


def liquid_slice(value: Any, offset: int, length: int = 1) -> Any:
    """Liquid's `slice: offset, length` of text or a list (a negative offset counts from the end)."""
    items: Any = value if isinstance(value, (list, tuple)) else _text(value, "slice")
    start = int(offset)
    if start < 0:
        start += len(items)
    return items[max(0, start): max(0, start) + int(length)]


def uniq(value: Any) -> list[Any]:
    """The list without repeated items, in first-seen order."""
    seen: list[Any] = []
    for item in _sequence(value, "uniq"):
        if item not in seen:
            seen.append(item)
    return seen


def compact(value: Any) -> list[Any]:
    """The list without nil items."""
    return [item for item in _sequence(value, "compact") if item is not None]


def concat(value: Any, other: Any) -> list[Any]:
    """Two lists as one."""
    return _sequence(value, "concat") + _sequence(other, "concat")


def where(value: Any, key: str, expected: Any = None) -> list[Any]:
    """Items (mappings) whose `key` equals `expected`, or is truthy when none is given."""
    items = [i for i in _sequence(value, "where") if isinstance(i, dict)]
    if expected is None:
        return [i for i in items if i.get(key)]
    return [i for i in items if i.get(key) == expected]


def sort_natural(value: Any, attribute: str | None = None) -> list[Any]:
    """Sorted, case-insensitively."""
    def key(item: Any) -> str:
        picked = item.get(attribute) if attribute and isinstance(item, dict) else item
        return str(picked).lower()

    return sorted(_sequence(value, "sort_natural"), key=key)


def ceil(value: Any) -> int:
    """Rounded up to a whole number."""
    return math.ceil(_decimal(value, "ceil"))


def floor(value: Any) -> int:
    """Rounded down to a whole number."""
    return math.floor(_decimal(value, "floor"))


def round_(value: Any, precision: int = 0, method: str = "common") -> int | float:
    """Rounded half up to `precision` places; a whole number without places (Liquid's `round`).

    `method` (Jinja2's: common, ceil, floor) is kept for Jinja2-style templates.
    """
    number = _decimal(value, "round")
    quantum = Decimal(1).scaleb(-int(precision))
    rounding = {"ceil": "ROUND_CEILING", "floor": "ROUND_FLOOR"}.get(method, ROUND_HALF_UP)
    rounded = number.quantize(quantum, rounding=rounding)
    return int(rounded) if int(precision) <= 0 else float(rounded)


def modulo(value: Any, other: Any) -> int | float | Decimal:
    """Liquid arithmetic: the remainder."""
    divisor = _decimal(other, "modulo")
    if divisor == 0:
        raise FilterError("modulo: division by zero")
    return _number(_decimal(value, "modulo") % divisor, "modulo")


def at_least(value: Any, bound: Any) -> int | float | Decimal:
    """The larger of the value and the bound."""
    return _number(max(_decimal(value, "at_least"), _decimal(bound, "at_least")), "at_least")


def at_most(value: Any, bound: Any) -> int | float | Decimal:
    """The smaller of the value and the bound."""
    return _number(min(_decimal(value, "at_most"), _decimal(bound, "at_most")), "at_most")


def url_decode(value: Any) -> str:
    """The reverse of `url_encode`."""
    return unquote_plus(_text(value, "url_decode"))


def escape_once(value: Any) -> Markup:
    """HTML-escaped, without escaping entities that already are."""
    return Markup.escape(unescape(_text(value, "escape_once")))


def limit(value: Any, count: Any) -> list[Any]:
    """The first `count` items."""
    return _sequence(value, "limit")[: max(0, int(_decimal(count, "limit")))]


def find(value: Any, key: str, expected: Any = None) -> Any:
    """The first item (a mapping) whose `key` equals `expected`; None if there is none."""
    found = where(value, key, expected)
    return found[0] if found else None


def where_not(value: Any, key: str, expected: Any = None) -> list[Any]:
    """Items whose `key` does not equal `expected`."""
    kept = where(value, key, expected)
    return [i for i in _sequence(value, "where_not") if i not in kept]


def format_number(value: Any, locale: str = "en") -> str:
    """`10000` -> `10,000`; `format_number: "fr"` -> `123 456,78` (as many places as given)."""
    number = _decimal(value, "format_number")
    exponent = number.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    text = f"{number:,.{places}f}"
    language = locale.lower().split("-")[0]
    if language in ("de", "es", "it", "nl", "pt", "da", "tr", "id"):
        return text.translate(str.maketrans(",.", ".,"))
    if language in ("fr", "sv", "nb", "fi", "cs", "pl", "ru", "uk"):
        return text.translate(str.maketrans(",.", "\u202f,"))
    return text


def count_pluralize(count: Any, singular: str, plural: str) -> str:
    """Customer.io's `n | pluralize: 'item', 'items'`: `1 item`, `3 items`."""
    number = _number(count, "pluralize")
    return f"{number} {singular if number == 1 else plural}"


def normalize_whitespace(value: Any) -> str:
    """Runs of whitespace become one space."""
    return " ".join(_text(value, "normalize_whitespace").split())


def array_to_sentence_string(value: Any, connector: str = "and") -> str:
    """`[a, b, c]` -> `a, b, and c`."""
    items = [_text(i, "array_to_sentence_string") for i in _sequence(value, "array_to_sentence_string")]
    if len(items) <= 2:
        return f" {connector} ".join(items)
    return ", ".join(items[:-1]) + f", {connector} " + items[-1]


def to_json(value: Any, indent: Any = None) -> Markup:
    """The value as JSON (Customer.io's `json` and `to_json`)."""
    import json

    width = int(indent) if indent not in (None, "") else None
    return Markup(json.dumps(value, indent=width, ensure_ascii=False, default=str))


def liquid_for(values: Any, limit: int | None = None, offset: int = 0, reversed: bool = False) -> list[Any]:
    """A Liquid for loop's `offset`, `limit` and `reversed`, applied in Liquid's order."""
    items = _sequence(values, "for")[int(offset or 0):]
    if limit is not None:
        items = items[: max(0, int(limit))]
    return items[::-1] if reversed else items


FILTERS: dict[str, Callable[..., Any]] = {
    "date": date,
    "money": money,
    "currency": money,
    "rounded_currency": rounded_currency,
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
    "append": append,
    "prepend": prepend,
    "split": split,
    "join": join,
    "size": size,
    "strip": strip,
    "lstrip": lstrip,
    "rstrip": rstrip,
    "remove": remove,
    "remove_first": remove_first,
    "replace_first": replace_first,
    "liquid_slice": liquid_slice,
    "uniq": uniq,
    "compact": compact,
    "concat": concat,
    "where": where,
    "sort_natural": sort_natural,
    "ceil": ceil,
    "floor": floor,
    "round": round_,
    "modulo": modulo,
    "at_least": at_least,
    "at_most": at_most,
    "url_decode": url_decode,
    "escape_once": escape_once,
    "liquid_for": liquid_for,
    "limit": limit,
    "find": find,
    "where_not": where_not,
    "format_number": format_number,
    "count_pluralize": count_pluralize,
    "normalize_whitespace": normalize_whitespace,
    "array_to_sentence_string": array_to_sentence_string,
    "json": to_json,
    "to_json": to_json,
    "titlecase": lambda value: _text(value, "titlecase").title(),
    "add_day": add_day,
    "subtract_day": subtract_day,
    "add_month": add_month,
    "subtract_month": subtract_month,
    "add_year": add_year,
    "subtract_year": subtract_year,
}
