"""Liquid syntax in templates: a Customer.io template pastes in unchanged. Pure.

Templates are Jinja2; this module rewrites the Liquid constructs Jinja2 lacks into their Jinja2
equivalents before Jinja2 reads the source (a Jinja2 extension's `preprocess`), keeping every
line where it was so errors name the right line. Jinja2 syntax is untouched, so both can be mixed.

| Liquid | becomes |
|---|---|
| `{{ x \\| default: "there" }}`, `truncate: 20, "…"` | `default("there")`, `truncate(20, "…")` |
| `{% assign x = v %}`, `{% capture x %}…{% endcapture %}` | `{% set liquid.x = v %}` (template-wide, as in Liquid), a block `set` |
| `{% elsif %}`, `{% unless c %}…{% endunless %}` | `{% elif %}`, `{% if not (c) %}…{% endif %}` |
| `{% case x %}{% when a, b %}…{% else %}…{% endcase %}` | an `if`/`elif` chain |
| `{% for i in list reversed limit: 2 offset: 1 %}`, `(1..n)` | a sliced loop, `range(1, n + 1)` |
| `forloop.index`, `rindex`, `first`, `last`, `length` | `loop.index`, `revindex`, ... |
| `a contains b`, `x == blank`, `x != empty`, `nil`, `<>` | `a is contains(b)`, `x is blank`, `x is not empty`, `none`, `!=` |
| `{% comment %}…{% endcomment %}`, `{% echo x %}`, `{% break %}` | `{# … #}`, `{{ x }}`, `{% break %}` |
| `{% unsubscribe_url %}`, `{% manage_subscription_preferences_url %}` | `{{ unsubscribe_url }}`, `{{ preferences_url }}` |

`x.size`, `x.first` and `x.last` work on lists and strings (`liquid_property`). An undefined
value is false in a test and equal to nothing, so Customer.io's fallback idiom
`{% if customer.first_name %}…{% else %}there{% endif %}` works; printing it still fails the
message. Not supported (a syntax error names the tag and its line): see UNSUPPORTED_TAGS;
`include` fails too (templates have no loader). Liquid's truthiness differs: `""` and `0` are
true in Liquid and false here.
"""

from __future__ import annotations

import re
from collections.abc import Sized
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2.ext import Extension

__all__ = [
    "TESTS",
    "UNSUPPORTED_TAGS",
    "FallbackUndefined",
    "LiquidSyntax",
    "liquid_property",
    "liquid_to_jinja",
]

UNSUPPORTED_TAGS = (
    "cycle", "tablerow", "endtablerow", "increment", "decrement", "render", "layout", "liquid",
    "ifchanged", "endifchanged",
    # Customer.io's own tags without a Nudge equivalent.
    "view_in_browser_url", "view_in_browser", "unsubscribe", "cio_link", "cio_link_id",
    "tracking_consent_url", "subscription_topic_name", "generate_uuid", "random", "render_liquid",
    "countdown",
)

# Customer.io's link tags and the variable each one is in Nudge.
_LINK_TAGS = {
    "unsubscribe_url": "unsubscribe_url",
    "manage_subscription_preferences_url": "preferences_url",
}

_FORLOOP = {"rindex": "revindex", "rindex0": "revindex0"}

# Written with Liquid's colon, these mean what Liquid (or Customer.io) means, not Jinja2's filter
# of the same name: `slice: 1, 3` is a substring, `pluralize: 'item', 'items'` prints the count.
_COLON_FILTERS = {"slice": "liquid_slice", "pluralize": "count_pluralize"}

_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<space>\s+)
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<>|>=|<=|\.\.|\*\*|//|[-+*/%~<>=.,:|()\[\]{}!?])
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_OPEN, _CLOSE = "([{", ")]}"

# Liquid's `assign` and `capture` set template-wide variables, even inside a loop (an
# accumulator `{% assign total = total | plus: item.price %}` works); Jinja2's `set` in a loop
# is local to it. So assigned names live in one namespace: `x` is read and written as `liquid.x`.
NAMESPACE = "liquid"
_ASSIGNED: ContextVar[frozenset[str]] = ContextVar("liquid_assigned", default=frozenset())
_ASSIGNS = re.compile(r"\{%-?\s*(?:assign|capture)\s+([A-Za-z_][A-Za-z0-9_]*)")
_LOOP_VARS = re.compile(r"\{%-?\s*for\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?in\b")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(expression: str) -> list[_Tok]:
    return [_Tok(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(expression)]


def _text(tokens: list[_Tok]) -> str:
    return "".join(t.text for t in tokens)


def _next_real(tokens: list[_Tok], index: int) -> int:
    """The index of the first non-space token at or after `index` (len(tokens) if none)."""
    while index < len(tokens) and tokens[index].kind == "space":
        index += 1
    return index


def _prior_real(tokens: list[_Tok], index: int) -> int | None:
    """The index of the last non-space token before `index`, or None."""
    index -= 1
    while index >= 0 and tokens[index].kind == "space":
        index -= 1
    return index if index >= 0 else None


def _split_top(tokens: list[_Tok], separators: set[str]) -> list[list[_Tok]]:
    """Split on separator tokens outside brackets."""
    parts: list[list[_Tok]] = [[]]
    depth = 0
    for token in tokens:
        if token.text in _OPEN:
            depth += 1
        elif token.text in _CLOSE:
            depth -= 1
        if depth == 0 and token.kind in ("op", "name") and token.text in separators:
            parts.append([])
            continue
        parts[-1].append(token)
    return parts


# --- expressions -------------------------------------------------------------------------


def _names(tokens: list[_Tok]) -> list[_Tok]:
    """`nil` -> `none`, `<>` -> `!=`, `forloop.x` -> `loop.x`, an assigned `x` -> `liquid.x`,
    and a Liquid-style keyword argument in a call, `performed('x', step: s)` -> `step=s`."""
    assigned = _ASSIGNED.get()
    out: list[_Tok] = []
    brackets: list[str] = []
    for token in tokens:
        previous = out[-1].text if out else ""
        if token.text in _OPEN:
            brackets.append(token.text)
        elif token.text in _CLOSE and brackets:
            brackets.pop()
        if token.text == ":" and brackets[-1:] == ["("]:
            name = _prior_real(out, len(out))
            before = _prior_real(out, name) if name is not None else None
            if name is not None and out[name].kind == "name" and before is not None and out[before].text in ("(", ","):
                out.append(_Tok("op", "="))
                continue
        if token.kind == "name" and previous != ".":
            if token.text in ("nil", "null"):
                token = _Tok("name", "none")
            elif token.text == "forloop":
                token = _Tok("name", "loop")
            elif token.text in assigned:
                token = _Tok("name", f"{NAMESPACE}.{token.text}")
        elif token.text == "<>":
            token = _Tok("op", "!=")
        if token.kind == "name" and previous == "." and len(out) >= 2 and out[-2].text == "loop":
            token = _Tok("name", _FORLOOP.get(token.text, token.text))
        out.append(token)
    return out


def _args(tokens: list[_Tok]) -> str:
    """Liquid filter arguments `a, key: b` as Jinja2 call arguments `a, key=b`."""
    out = []
    for part in _split_top(tokens, {","}):
        first = _next_real(part, 0)
        colon = _next_real(part, first + 1)
        if (
            first < len(part) and part[first].kind == "name"
            and colon < len(part) and part[colon].text == ":"
        ):
            out.append(f"{part[first].text}={expression(_text(part[colon + 1:])).strip()}")
        else:
            out.append(expression(_text(part)).strip())
    return ", ".join(out)


def _filter(tokens: list[_Tok]) -> str:
    """One filter of a pipeline: `name: args` becomes `name(args)`; anything else stays."""
    start = _next_real(tokens, 0)
    colon = _next_real(tokens, start + 1)
    if start >= len(tokens) or tokens[start].kind != "name":
        return _text(tokens)
    if colon >= len(tokens) or tokens[colon].text != ":":
        return _text(_names(tokens))
    name = tokens[start].text
    args = _args(tokens[colon + 1:])
    lead = _text(tokens[:start])
    # Jinja2's filters of these names mean something else with a positional argument.
    if name in ("map", "sort", "sum") and "=" not in args:
        return f"{lead}{name}(attribute={args})"
    return f"{lead}{_COLON_FILTERS.get(name, name)}({args})"


def _comparisons(tokens: list[_Tok]) -> list[_Tok]:
    """`a contains b`, `x == blank`, `x != empty` as Jinja2 tests."""
    out: list[_Tok] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "name" and token.text == "contains" and (not out or out[-1].text != "."):
            end = index + 1
            depth = 0
            while end < len(tokens):
                text = tokens[end].text
                if text in _OPEN:
                    depth += 1
                elif text in _CLOSE:
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and tokens[end].kind == "name" and text in ("and", "or"):
                    break
                end += 1
            right = _text(tokens[index + 1:end]).strip()
            out.append(_Tok("other", f"is contains({right}) "))
            index = end
            continue
        if token.text in ("==", "!="):
            operand = _next_real(tokens, index + 1)
            if operand < len(tokens) and tokens[operand].text in ("blank", "empty"):
                negated = " not" if token.text == "!=" else ""
                out.append(_Tok("other", f"is{negated} {tokens[operand].text}"))
                index = operand + 1
                continue
        out.append(token)
        index += 1
    return out


def expression(source: str) -> str:
    """A Liquid expression (with filters) as Jinja2: colon filter arguments, nil, contains, blank."""
    tokens = _tokens(source)
    pipeline = _split_top(tokens, {"|"})
    head = _text(_comparisons(_names(pipeline[0])))
    return "|".join([head] + [_filter(part) for part in pipeline[1:]])




# --- tags --------------------------------------------------------------------------------


@dataclass
class _Case:
    variable: str
    branches: int = 0


@dataclass
class _State:
    """What the translation has open: case statements, to turn `when` into if/elif."""

    cases: list[_Case] = field(default_factory=list)
    captures: list[str] = field(default_factory=list)
    counter: int = 0


_RANGE = re.compile(r"^\s*\((?P<start>.+?)\.\.(?P<end>.+)\)\s*$", re.DOTALL)
_FOR = re.compile(r"^\s*(?P<var>[A-Za-z_][A-Za-z0-9_]*)\s+in\s+(?P<rest>.+)$", re.DOTALL)
_FOR_OPTION = re.compile(r"\s+(?:(?P<reversed>reversed)|(?P<key>limit|offset)\s*:\s*(?P<value>\S+))\s*$")


def _for(args: str) -> str:
    """`for x in coll [reversed] [limit: n] [offset: m]` and ranges `(a..b)`."""
    match = _FOR.match(args)
    if match is None:
        return "for " + args
    rest = match["rest"]
    options: dict[str, str] = {}
    while True:
        option = _FOR_OPTION.search(rest)
        if option is None:
            break
        if option["reversed"]:
            options["reversed"] = "true"
        else:
            options[option["key"]] = expression(option["value"]).strip()
        rest = rest[: option.start()]
    ranged = _RANGE.match(rest)
    if ranged:
        collection = f"range({expression(ranged['start']).strip()}, ({expression(ranged['end']).strip()}) + 1)"
    else:
        collection = expression(rest).strip()
    if options:
        # Liquid applies offset and limit first, then reverses.
        parts = [f"{key}={value}" for key, value in options.items()]
        collection = f"({collection}) | liquid_for({', '.join(parts)})"
    return f"for {match['var']} in {collection}"


def _when(values: str, case: _Case) -> str:
    parts = _split_top(_tokens(values), {",", "or"})
    tests = " or ".join(f"{case.variable} == ({expression(_text(p)).strip()})" for p in parts if _text(p).strip())
    keyword = "if" if case.branches == 0 else "elif"
    case.branches += 1
    return f"{keyword} {tests or 'false'}"


def _target(name: str) -> str:
    """Where `assign NAME` writes: the namespace, unless the name is also a loop variable."""
    name = name.strip()
    return f"{NAMESPACE}.{name}" if name in _ASSIGNED.get() else name


def _tag(name: str, args: str, state: _State, line: int) -> tuple[str, str]:
    """A tag as Jinja2: ('tag', inner text) for `{% %}` or ('output', expr) for `{{ }}`."""
    if name in UNSUPPORTED_TAGS:
        raise TemplateSyntaxError(
            f"the Liquid tag {{% {name} %}} is not supported in Nudge templates "
            "(see docs/campaigns.md, 'Liquid')",
            line,
        )
    if name in _LINK_TAGS:
        return "output", _LINK_TAGS[name]
    if name == "echo":
        return "output", expression(args)
    if name in ("if", "elsif", "elif"):
        return "tag", f"{'if' if name == 'if' else 'elif'} {expression(args)}"
    if name == "unless":
        return "tag", f"if not ({expression(args).strip()})"
    if name == "endunless":
        return "tag", "endif"
    if name == "assign":
        target, _, value = args.partition("=")
        return "tag", f"set {_target(target)} = {expression(value)}"
    if name == "set" and "=" in args:
        target, _, value = args.partition("=")
        return "tag", f"set {target.strip()} = {expression(value)}"
    if name == "capture":
        state.captures.append(args.strip())
        return "tag", f"set {NAMESPACE}_capture"
    if name == "endcapture":
        if not state.captures:
            raise TemplateSyntaxError("{% endcapture %} without a {% capture %}", line)
        return "tag", f"endset %}}{{% set {_target(state.captures.pop())} = {NAMESPACE}_capture"
    if name == "case":
        state.counter += 1
        case = _Case(variable=f"liquid_case_{state.counter}")
        state.cases.append(case)
        return "tag", f"set {case.variable} = {expression(args)}"
    if name == "when":
        if not state.cases:
            raise TemplateSyntaxError("{% when %} outside a {% case %}", line)
        return "tag", _when(args, state.cases[-1])
    if name == "else" and state.cases and state.cases[-1].branches == 0:
        # A case whose first branch is its else.
        state.cases[-1].branches += 1
        return "tag", "if true"
    if name == "endcase":
        if not state.cases:
            raise TemplateSyntaxError("{% endcase %} without a {% case %}", line)
        case = state.cases.pop()
        return "tag", "endif" if case.branches else "if false %}{% endif"
    if name == "for":
        return "tag", _for(args)
    return "tag", f"{name}{' ' if args else ''}{args}"


# --- the scanner -------------------------------------------------------------------------

_OPENING = re.compile(r"\{\{|\{%|\{#")
_TAG_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)?(.*)$", re.DOTALL)
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""", re.DOTALL)


def _close(source: str, start: int, closing: str) -> int:
    """The index of `closing` after `start`, skipping string literals; -1 if unterminated."""
    index = start
    while index < len(source):
        if source.startswith(closing, index):
            return index
        if source[index] in "\"'":
            match = _STRING.match(source, index)
            if match:
                index = match.end()
                continue
        index += 1
    return -1


def _keep_lines(original: str, translated: str) -> str:
    """`translated` with as many line breaks as `original`, so later lines keep their numbers."""
    missing = original.count("\n") - translated.count("\n")
    return translated + "\n" * missing if missing > 0 else translated


_RAW_END = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_COMMENT_OPEN = re.compile(r"\{%-?\s*comment\s*-?%\}")
_COMMENT_CLOSE = re.compile(r"\{%-?\s*endcomment\s*-?%\}")


def _comment_end(source: str, start: int) -> tuple[int, int]:
    """Where a `{% comment %}` that opened before `start` ends (start, end of its endcomment)."""
    depth = 1
    index = start
    while True:
        closing = _COMMENT_CLOSE.search(source, index)
        if closing is None:
            return len(source), len(source)
        opening = _COMMENT_OPEN.search(source, index, closing.start())
        if opening is not None:
            depth += 1
            index = opening.end()
            continue
        depth -= 1
        if depth == 0:
            return closing.start(), closing.end()
        index = closing.end()


def liquid_to_jinja(source: str) -> str:
    """Rewrite the Liquid constructs of `source` as Jinja2, keeping every line in place."""
    loop_vars = {name for pair in _LOOP_VARS.findall(source) for name in pair if name}
    assigned = frozenset(set(_ASSIGNS.findall(source)) - loop_vars)
    token = _ASSIGNED.set(assigned)
    try:
        translated = _translate(source)
    finally:
        _ASSIGNED.reset(token)
    if assigned:
        # On the first line, so every line keeps its number.
        translated = f"{{% set {NAMESPACE} = namespace() %}}" + translated
    return translated


def _translate(source: str) -> str:
    out: list[str] = []
    state = _State()
    index = 0
    while True:
        match = _OPENING.search(source, index)
        if match is None:
            out.append(source[index:])
            break
        out.append(source[index:match.start()])
        opener = match.group()
        line = source.count("\n", 0, match.start()) + 1
        if opener == "{#":
            end = _close(source, match.end(), "#}")
            if end < 0:
                out.append(source[match.start():])
                break
            out.append(source[match.start():end + 2])
            index = end + 2
            continue
        closing = "}}" if opener == "{{" else "%}"
        end = _close(source, match.end(), closing)
        if end < 0:
            out.append(source[match.start():])
            break
        inner = source[match.end():end]
        left = "-" if inner.startswith("-") else ("+" if inner.startswith("+") else "")
        right = "-" if inner.endswith("-") else ("+" if inner.endswith("+") and opener == "{%" else "")
        body = inner[len(left): len(inner) - len(right)]
        index = end + 2
        if opener == "{{":
            out.append("{{" + left + _keep_lines(body, expression(body)) + right + "}}")
            continue
        name_match = _TAG_NAME.match(body)
        assert name_match is not None
        name, args = name_match.group(1) or "", name_match.group(2).strip()
        if name == "raw":
            stop = _RAW_END.search(source, index)
            stop_at = stop.end() if stop else len(source)
            out.append(source[match.start():stop_at])
            index = stop_at
            continue
        if name == "comment":
            content_end, after = _comment_end(source, index)
            content = source[index:content_end].replace("#}", "# }")
            tag_end = source[content_end:after]
            out.append("{#" + left + "\n" * body.count("\n") + content
                       + "\n" * tag_end.count("\n") + ("-" if tag_end.endswith("-%}") else "") + "#}")
            index = after
            continue
        kind, text = _tag(name, args, state, line)
        if kind == "output":
            out.append("{{" + left + " " + _keep_lines(body, text) + " " + right + "}}")
        else:
            out.append("{%" + left + " " + _keep_lines(body, text) + " " + right + "%}")
    return "".join(out)


class LiquidSyntax(Extension):
    """Jinja2 extension: templates may use Liquid syntax (see the module docstring)."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return liquid_to_jinja(source)


# --- runtime: undefined values, tests, properties -----------------------------------------


class FallbackUndefined(StrictUndefined):
    """Fails when printed, iterated or computed with; false in a test and equal to nothing.

    So `{% if customer.first_name %}` and `customer.plan == "pro"` work for a person without
    the attribute (Liquid's nil), while `{{ customer.first_name }}` still fails that message.
    """

    __slots__ = ()

    # Jinja2 types StrictUndefined's methods as always raising; this subclass relaxes exactly these.
    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    __eq__ = Undefined.__eq__  # type: ignore[assignment]
    __ne__ = Undefined.__ne__  # type: ignore[assignment]
    __hash__ = Undefined.__hash__  # type: ignore[assignment]


def _is_blank(value: Any) -> bool:
    if isinstance(value, Undefined) or value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, Sized) and len(value) == 0


def _is_empty(value: Any) -> bool:
    if isinstance(value, Undefined) or value is None:
        return True
    return isinstance(value, Sized) and len(value) == 0


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, Undefined) or container is None:
        return False
    if isinstance(container, str):
        return str(item) in container
    if isinstance(container, (list, tuple, set, frozenset, dict)):
        return item in container
    return False


TESTS = {"blank": _is_blank, "empty": _is_empty, "contains": _contains}


def liquid_property(obj: Any, name: str, missing: Any) -> Any:
    """Liquid's `size`, `first` and `last` of a list or string (`size` of a mapping too);
    `missing` when the name means nothing here."""
    if isinstance(obj, (list, tuple, str)):
        if name == "size":
            return len(obj)
        if name == "first":
            return obj[0] if obj else None
        if name == "last":
            return obj[-1] if obj else None
    if isinstance(obj, dict) and name == "size":
        return len(obj)
    return missing
