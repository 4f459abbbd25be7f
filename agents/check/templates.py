"""Templates checked before they send: syntax, names, helpers, and a render for the synthetic
person in each campaign that sends them; every problem at its line in the file. Pure.

Two passes. Reading the template finds every name in every branch: an undefined variable, an
unknown helper (`has_performed(`), a `customer.*` no definition or `events.yaml` mentions
(`customer.firstname`), an `event.*` the trigger event does not carry. Rendering it for the
synthetic person then finds what only running shows (a filter given the wrong kind of value).
A name read where a missing value is harmless (`| default`, an `if` test, `== blank`) is only
flagged when it looks like a typo of a known one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from agents.check.hints import did_you_mean, suggest
from agents.check.problems import Problem
from agents.check.synthetic import Vocabulary, sample_context, trigger_data
from agents.render.email import render_email
from agents.render.errors import TemplateFileError, TemplateRenderError
from agents.render.filters import rendering_at
from agents.render.sandbox import make_environment
from agents.render.template_files import parse_template
from schemas.campaigns import AttributeChangedTrigger, Campaign, DateTrigger, SegmentTrigger
from schemas.templates import EmailTemplate

HELPERS = ("performed", "event_count", "total", "last_event")
CONTEXT = ("customer", "event", "event_name", "campaign", "unsubscribe_url", "preferences_url")
# Jinja2's own globals, the layout's `content`, a loop's `loop`.
BUILTINS = ("range", "namespace", "dict", "lipsum", "cycler", "joiner", "loop", "content", "true", "false", "none")
_GUARD_FILTERS = ("default", "d")
_GUARD_TESTS = ("defined", "undefined", "blank", "empty", "none")
_ENV = make_environment(html=True)
_PLAIN_ENV = make_environment(html=False)


@dataclass(frozen=True)
class TemplateFile:
    """One template as its files hold it: the HTML (front matter + body), the optional `.txt`,
    and the layouts it may name (name -> (file, source))."""

    id: str
    file: str
    source: str
    text: str | None = None
    text_file: str | None = None
    layouts: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Lines:
    """Maps a line of one rendered part to the file and line it comes from."""

    template: TemplateFile
    body_offset: int
    body_lines: int
    header_lines: dict[str, int]
    layout: tuple[str, str] | None

    def where(self, part: str, line: int | None) -> tuple[str, int | None]:
        if part == "text":
            return self.template.text_file or self.template.file, line
        if part in self.header_lines:
            return self.template.file, self.header_lines[part]
        if line is None:
            return self.template.file, None
        if self.layout is not None and line > self.body_lines:
            return self.layout[0], line - self.body_lines + 1
        return self.template.file, line + self.body_offset


def _lines(template: TemplateFile, layout_name: str | None) -> _Lines:
    rows = template.source.splitlines(keepends=True)
    closing = next((i for i in range(1, len(rows)) if rows[i].strip() == "---"), len(rows) - 1)
    headers: dict[str, int] = {}
    for index in range(1, closing):
        key = rows[index].split(":", 1)[0].strip()
        headers.setdefault(key, index + 1)
    raw_body = "".join(rows[closing + 1:])
    leading = len(raw_body) - len(raw_body.lstrip("\n"))
    body = raw_body.strip("\n")
    layout = template.layouts.get(layout_name) if layout_name else None
    return _Lines(
        template, body_offset=closing + 1 + leading, body_lines=body.count("\n") + 1,
        header_lines={p: headers[p] for p in ("subject", "preheader") if p in headers}, layout=layout,
    )


def _syntax_line(exc: BaseException) -> tuple[str | None, int | None]:
    """The part and line of a syntax error somewhere in an exception's causes."""
    part = None
    while exc is not None:
        if isinstance(exc, TemplateRenderError):
            part = exc.part
        if isinstance(exc, TemplateSyntaxError):
            return part, exc.lineno
        exc = exc.__cause__  # type: ignore[assignment]
    return part, None


def _render_line(exc: BaseException) -> int | None:
    """The template line a render failure happened on (Jinja2 puts template frames in tracebacks)."""
    cause = exc.__cause__ or exc
    line = None
    tb = cause.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _parts(template: EmailTemplate) -> Iterator[tuple[str, str, bool]]:
    yield "subject", template.subject, False
    if template.preheader is not None:
        yield "preheader", template.preheader, True
    yield "body", template.body, True
    if template.text is not None:
        yield "text", template.text, False


def check_template(
    source: TemplateFile, senders: list[Campaign], vocab: Vocabulary, now: float
) -> list[Problem]:
    """Every problem of one template, sent by `senders` (none: checked without a campaign)."""
    layouts = {name: text for name, (_, text) in source.layouts.items()}
    try:
        template = parse_template(source.id, source.source, source.text, where=source.file, layouts=layouts)
    except TemplateFileError as exc:
        part, line = _syntax_line(exc)
        if line is None:
            return [_front_matter_problem(source, exc.reason)]
        layout_name = _layout_name(source)
        file, at = _lines(source, layout_name).where(part or "body", line)
        reason = exc.reason.split(": ", 1)[1] if part and exc.reason.startswith(f"{part}: ") else exc.reason
        # The reason counts lines within the part; the problem's line is the file's.
        reason = re.sub(r"^syntax error on line \d+: ", "syntax error: ", reason)
        return [Problem(file, at, f"{part}: {reason}")]
    lines = _lines(source, template.layout)
    problems: list[Problem] = []
    for part, text, html in _parts(template):
        problems += _read_names(part, text, html, lines, senders, vocab)
    flagged = {(p.file, p.line) for p in problems if p.severity == "error"}
    campaigns: list[Campaign | None] = [*senders] or [None]
    for campaign in campaigns:
        problems += [p for p in _render(template, campaign, vocab, now, lines) if (p.file, p.line) not in flagged]
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


_FRONT_MATTER_KEYS = ("subject", "from", "reply_to", "preheader", "layout", "topic")
_UNKNOWN_KEYS = re.compile(r"unknown front matter key\(s\) ([^;]+);")


def _front_matter_problem(source: TemplateFile, reason: str) -> Problem:
    """A front matter problem at its line, with the key meant for a misspelt one."""
    rows = source.source.splitlines()
    unknown = _UNKNOWN_KEYS.search(reason)
    if unknown:
        key = unknown[1].split(",")[0].strip()
        line = next((i + 1 for i, row in enumerate(rows) if row.split(":", 1)[0].strip() == key), None)
        return Problem(source.file, line, reason + suggest(key, _FRONT_MATTER_KEYS))
    return Problem(source.file, 1 if rows else None, reason)


def _layout_name(source: TemplateFile) -> str | None:
    for row in source.source.splitlines()[1:]:
        if row.strip() == "---":
            return None
        key, _, value = row.partition(":")
        if key.strip() == "layout":
            return value.strip().strip("'\"") or None
    return None


def _render(
    template: EmailTemplate, campaign: Campaign | None, vocab: Vocabulary, now: float, lines: _Lines
) -> list[Problem]:
    context = sample_context(campaign, vocab, now)
    try:
        with rendering_at(now):
            render_email(template, context, unsubscribe_url="https://u.invalid", preferences_url="https://p.invalid")
    except TemplateRenderError as exc:
        file, line = lines.where(exc.part, _render_line(exc))
        who = f"in campaign {campaign.id}, " if campaign is not None else ""
        undefined = "UndefinedError" in exc.reason
        return [Problem(
            file, line, f"{exc.part}: {who}rendering for a sample person fails: {exc.reason}",
            "error" if undefined else "warning",
        )]
    return []


# --- reading the names --------------------------------------------------------------------


def _assigned(tree: nodes.Node) -> set[str]:
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {m.name for m in tree.find_all(nodes.Macro)}
    return names


@dataclass
class _Reader:
    part: str
    lines: _Lines
    senders: list[Campaign]
    vocab: Vocabulary
    known: set[str]
    problems: list[Problem] = field(default_factory=list)

    def report(self, line: int, message: str, severity: str = "error") -> None:
        file, at = self.lines.where(self.part, line)
        self.problems.append(Problem(file, at, f"{self.part}: {message}", severity))  # type: ignore[arg-type]

    def visit(self, node: nodes.Node, guarded: bool = False) -> None:
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name):
            key = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
            if node.node.name in ("customer", "event") and key is not None:
                self._property(node.node.name, key, node.lineno, guarded)
                return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            self._name(node.name, node.lineno, called=False)
            return
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
            self._name(node.node.name, node.lineno, called=True)
            self._helper_event(node)
            for child in (*node.args, *node.kwargs):
                self.visit(child)
            return
        if isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS and node.node is not None:
            self.visit(node.node, True)
            for child in (*node.args, *node.kwargs):
                self.visit(child)
            return
        if isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
            self.visit(node.node, True)
            return
        if isinstance(node, (nodes.If, nodes.CondExpr)):
            self.visit(node.test, True)
            for name, child in node.iter_fields():
                if name != "test":
                    for item in child if isinstance(child, list) else [child]:
                        if isinstance(item, nodes.Node):
                            self.visit(item)
            return
        if isinstance(node, (nodes.And, nodes.Or, nodes.Not)):
            for child in node.iter_child_nodes():
                self.visit(child, guarded)
            return
        if isinstance(node, nodes.Compare) and all(op.op in ("eq", "ne") for op in node.ops):
            self.visit(node.expr, True)
            for op in node.ops:
                self.visit(op.expr, True)
            return
        for child in node.iter_child_nodes():
            self.visit(child)

    def _name(self, name: str, line: int, called: bool) -> None:
        if name in self.known:
            return
        if called:
            self.report(line, f"unknown helper {name}(){suggest(name, HELPERS)}; the helpers are "
                              f"{', '.join(h + '()' for h in HELPERS)}")
        else:
            choices = [*CONTEXT, *HELPERS]
            self.report(line, f"{name!r} is undefined{suggest(name, choices)}; a template sees "
                              f"{', '.join(CONTEXT)} and the helpers {', '.join(HELPERS)}")

    def _property(self, scope: str, key: str, line: int, guarded: bool) -> None:
        if scope == "customer":
            if self.vocab.knows_attribute(key):
                return
            meant = did_you_mean(key, self.vocab.attributes)
            if guarded and meant is None:
                return
            hint = f" (did you mean {meant!r}?)" if meant else ""
            if guarded:
                self.report(line, f"customer.{key} is not an attribute the project mentions{hint}", "warning")
                return
            self.report(
                line,
                f"customer.{key} is not an attribute any campaign, segment, computed attribute or "
                f"events.yaml mentions, so a person without it fails this message{hint}; declare it "
                f"under `attributes:` in events.yaml, or give a fallback: customer.{key} | default: \"...\"",
            )
            return
        for campaign in self.senders:
            name, data = trigger_data(campaign, self.vocab)
            if data is None or key in data:
                continue
            meant = did_you_mean(key, data)
            if guarded and meant is None:
                continue
            what = f"event {name!r}" if name else _trigger_words(campaign)
            carries = ", ".join(sorted(data)) or "nothing"
            self.report(
                line,
                f"event.{key}: campaign {campaign.id} sends this on {what}, whose `event` holds "
                f"{carries}{f' (did you mean {meant!r}?)' if meant else ''}",
                "warning" if guarded else "error",
            )

    def _helper_event(self, call: nodes.Call) -> None:
        name = call.node.name if isinstance(call.node, nodes.Name) else None
        if name not in HELPERS or not call.args:
            return
        event = _const(call.args[0])
        if event is not None and event not in self.vocab.events:
            self.report(
                call.lineno,
                f"{name}({event!r}): no campaign, segment or events.yaml mentions the event {event!r}"
                + suggest(event, self.vocab.events),
                "warning",
            )


def _trigger_words(campaign: Campaign) -> str:
    trigger = campaign.trigger
    if isinstance(trigger, SegmentTrigger):
        return f"entering segment {trigger.segment!r}"
    if isinstance(trigger, AttributeChangedTrigger):
        return f"a change of attribute {trigger.attribute_changed!r}"
    if isinstance(trigger, DateTrigger):
        return "its date trigger"
    return "a broadcast"


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _read_names(
    part: str, text: str, html: bool, lines: _Lines, senders: list[Campaign], vocab: Vocabulary
) -> list[Problem]:
    tree = (_ENV if html else _PLAIN_ENV).parse(text)
    reader = _Reader(part, lines, senders, vocab, set(CONTEXT) | set(HELPERS) | set(BUILTINS) | _assigned(tree))
    reader.visit(tree)
    return reader.problems
