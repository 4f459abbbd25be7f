"""Render an email template for one person: pure (no I/O, no clock), sandboxed Jinja2.

Used by the delivery loop and by `nudge simulate`. Templates see `customer` (attributes),
`event` (the trigger event's properties), `event_name`, `campaign`, `unsubscribe_url` and
helpers over the person's history: `performed`, `event_count`, `total`, `last_event`.
"""

from __future__ import annotations

import html as html_lib
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError

from agents.render.errors import TemplateRenderError
from agents.render.sandbox import (
    RenderBudgetExceeded,
    RenderLimits,
    make_environment,
    render_within,
)
from schemas.commands import RenderContext
from schemas.history import EventRecord, History
from schemas.templates import EmailTemplate, RenderedEmail

__all__ = [
    "RenderLimits",
    "TemplateRenderError",
    "check_template",
    "html_to_text",
    "render_email",
]


# Two environments because autoescape is per environment: HTML escapes, subject and text don't.
_HTML_ENV = make_environment(html=True)
_PLAIN_ENV = make_environment(html=False)


@lru_cache(maxsize=1024)
def _compile(source: str, html: bool) -> Template:
    # Keyed by the source, so each template version (its content hash) compiles once and every
    # message after that renders from the compiled code; an edited template is a new key.
    return (_HTML_ENV if html else _PLAIN_ENV).from_string(source)


def _reason(exc: Exception) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.message}"
    if isinstance(exc, TemplateError):
        kind = type(exc).__name__
        return f"{kind}: {exc.message or exc}"
    return f"{type(exc).__name__}: {exc}"


def _render_part(
    template_id: str,
    part: str,
    source: str,
    html: bool,
    variables: dict[str, Any],
    limits: RenderLimits,
    clock: Callable[[], float],
) -> str:
    try:
        return render_within(_compile(source, html), variables, limits, clock)
    except RenderBudgetExceeded as exc:
        raise TemplateRenderError(template_id, part, str(exc)) from exc
    except RecursionError as exc:
        raise TemplateRenderError(template_id, part, "macros recurse too deeply") from exc
    except TemplateError as exc:
        raise TemplateRenderError(template_id, part, _reason(exc)) from exc
    # Template code can still trip ordinary errors ({{ 1 / 0 }}, {{ 'a' + 1 }}): the
    # message fails, the worker doesn't.
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        raise TemplateRenderError(template_id, part, _reason(exc)) from exc


def check_template(template: EmailTemplate) -> None:
    """Compile every part of `template` without rendering; raise TemplateRenderError on a syntax error."""
    parts = [("subject", template.subject, False), ("body", template.body, True)]
    if template.text is not None:
        parts.append(("text", template.text, False))
    if template.preheader is not None:
        parts.append(("preheader", template.preheader, True))
    for part, source, html in parts:
        try:
            _compile(source, html)
        except TemplateError as exc:
            raise TemplateRenderError(template.id, part, _reason(exc)) from exc


# --- history helpers ---------------------------------------------------------------------


def _matches(record: EventRecord, name: str, where: dict[str, Any]) -> bool:
    if record.name != name:
        return False
    return all(key in record.data and record.data[key] == value for key, value in where.items())


def _history_helpers(history: History) -> dict[str, Callable[..., Any]]:
    def matching(name: str, where: dict[str, Any]) -> list[EventRecord]:
        return [r for r in history.recent if _matches(r, name, where)]

    # Positional-only names, so `where` may use any property name (even `name`).
    def performed(name: str, /, **where: Any) -> bool:
        """True when the person ever performed `name` (matching `where`, among recent events)."""
        return event_count(name, **where) > 0

    def event_count(name: str, /, **where: Any) -> int:
        """How many times: lifetime aggregate without `where`, matching recent events with it."""
        if not where and name in history.aggregates:
            # The aggregate outlives the bounded recent list.
            return max(history.aggregates[name].count, len(matching(name, where)))
        return len(matching(name, where))

    def total(name: str, prop: str, /, **where: Any) -> int | float:
        """Sum of a numeric property over matching recent events; an int when every value is."""
        values = [
            r.data[prop]
            for r in matching(name, where)
            if isinstance(r.data.get(prop), (int, float)) and not isinstance(r.data.get(prop), bool)
        ]
        if all(isinstance(v, int) for v in values):
            return int(sum(values))
        return float(sum(values))

    def last_event(name: str, /, **where: Any) -> dict[str, Any] | None:
        """The properties of the latest matching recent event, or None."""
        found = matching(name, where)
        if not found:
            return None
        latest = max(enumerate(found), key=lambda pair: (pair[1].at, pair[0]))[1]
        return dict(latest.data)

    return {
        "performed": performed,
        "event_count": event_count,
        "total": total,
        "last_event": last_event,
    }


# --- HTML to text ------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "tr", "table",
    "blockquote", "section", "article", "header", "footer", "hr", "pre", "dd", "dt", "dl",
}
_PARAGRAPH_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
_SKIP_TAGS = {"style", "script", "head", "title"}
_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\t\n\r\f />\x00]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|<[!?][^>]*>|([^<]+|<)",
    re.S,
)
_RAW_END = {tag: re.compile(rf"</{tag}", re.I) for tag in ("script", "style")}
_ATTR = re.compile(r"""([^\s/>"'=][^\s/>"'=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")


def _attr(text: str, wanted: str) -> str | None:
    """The value of attribute `wanted` in a tag's attribute text (the last one, unescaped)."""
    found = None
    for m in _ATTR.finditer(text):
        if m.group(1).lower() == wanted:
            found = m
    if found is None:
        return None
    value = next((g for g in found.group(2, 3, 4) if g is not None), None)
    return html_lib.unescape(value) if value is not None else None


def html_to_text(source: str) -> str:
    """A readable plain-text version of an HTML body: blocks become lines, links keep their URL.

    One regular-expression pass over the markup (the standard library's HTMLParser read the
    same and cost twice as much per message): tags and attribute names in any case, entities
    decoded, comments and doctypes dropped, script and style content taken as raw text.
    """
    out: list[str] = []
    skip = 0
    link: str | None = None
    link_text: list[str] = []
    pos: int | None = 0
    while pos is not None:
        start, pos = pos, None
        for m in _TOKEN.finditer(source, start):
            data = m.group(4)
            if data is not None:
                if not skip:
                    text = html_lib.unescape(data) if "&" in data else data
                    (link_text if link is not None else out).append(text)
                continue
            tag = m.group(2)
            if tag is None:
                continue  # a comment, doctype or processing instruction
            tag = tag.lower()
            if m.group(1):  # an end tag
                if tag in _SKIP_TAGS:
                    skip = max(0, skip - 1)
                elif tag in _BLOCK_TAGS and tag != "li":
                    out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")
                elif tag == "a" and link is not None:
                    text = " ".join("".join(link_text).split())
                    href, link = link, None
                    if href and not href.startswith(("#", "mailto:")) and href != text:
                        out.append(f"{text} ({href})" if text else href)
                    else:
                        out.append(text)
            elif tag in _SKIP_TAGS:
                skip += 1
                if tag in _RAW_END:
                    # Raw text: nothing inside is markup, up to its closing tag.
                    end = _RAW_END[tag].search(source, m.end())
                    if end is not None:
                        pos = end.start()
                    break
            elif tag in _BLOCK_TAGS:
                out.append("\n- " if tag == "li" else "\n")
            elif tag == "a":
                link = _attr(m.group(3), "href")
                link_text = []
            elif tag == "img":
                alt = _attr(m.group(3), "alt")
                if alt and not skip:
                    (link_text if link is not None else out).append(alt)
    lines = [" ".join(line.split()) for line in "".join(out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- rendering ---------------------------------------------------------------------------

_PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden"
)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _with_preheader(html: str, preheader: str) -> str:
    block = f'<div style="{_PREHEADER_STYLE}">{preheader}</div>'
    match = _BODY_OPEN.search(html)
    if match:
        return html[: match.end()] + block + html[match.end() :]
    return block + html


def render_email(
    template: EmailTemplate,
    context: RenderContext,
    *,
    unsubscribe_url: str = "",
    preferences_url: str = "",
    limits: RenderLimits = RenderLimits(),
    clock: Callable[[], float] = time.perf_counter,
) -> RenderedEmail:
    """Render subject, HTML and text for one person; raise TemplateRenderError on any template fault.

    Each part gets its own `limits` budget, measured with `clock` (monotonic seconds).
    """
    variables: dict[str, Any] = {
        "customer": context.customer,
        "event": context.event,
        "event_name": context.event_name,
        "campaign": context.campaign,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        **_history_helpers(context.history),
    }

    def part(name: str, source: str, html: bool) -> str:
        return _render_part(template.id, name, source, html, variables, limits, clock)

    subject = part("subject", template.subject, False)
    body = part("body", template.body, True)
    html = body
    if template.preheader:
        preheader = part("preheader", template.preheader, True)
        html = _with_preheader(body, preheader.strip())
    if template.text is not None:
        text = part("text", template.text, False).strip()
    else:
        text = html_to_text(body)
    return RenderedEmail(
        # A subject is one header line, whatever the data held.
        subject=" ".join(subject.split()),
        html=html,
        text=text,
        from_address=template.from_address,
        reply_to=template.reply_to,
    )
