"""Turn a page's context into a response: HTML from its Jinja2 template, or the same data as JSON.

A browser gets HTML; a client that asks for `application/json` (Accept header, or `?format=json`)
gets the context itself, so every console page doubles as a read API behind the same login.
Every response carries the console's security headers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from streams.console.flow import spec_text

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/console"

# Scripts and styles only from the console itself; the rendered email is framed from its own
# route (same origin, sandboxed, no scripts), never inlined into a console page.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The email preview: its own inline styles and data: images; no scripts, no remote loads
# (a remote image would tell a tracker someone looked), no forms, and a unique origin.
EMAIL_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)


def security_headers(response: web.StreamResponse, csp: str = CONSOLE_CSP) -> web.StreamResponse:
    """Add the console's headers: CSP, no framing, no sniffing, no referrer to other sites, no caching."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the
    # console's own forms, and the cross-site check could not tell them from a foreign page.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    if csp == CONSOLE_CSP:
        response.headers["X-Frame-Options"] = "DENY"
    return response


def wants_json(request: web.Request) -> bool:
    """True when the client asked for JSON rather than a page."""
    if request.query.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def when(seconds: float | None) -> str:
    """A Unix time as `2026-02-12 14:03:07` (UTC), or an em dash."""
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(seconds: float | None) -> str:
    """A Unix time in ISO 8601 (for <time datetime>)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre> block."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def compact(value: Any, limit: int = 120) -> str:
    """One-line JSON, cut at `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sparkline(points: list[float], width: int = 240, height: int = 40) -> Markup:
    """An inline SVG polyline of `points` (segment sizes over time); empty for fewer than two."""
    if len(points) < 2:
        return Markup("")
    if len(points) > width:
        # One point per pixel is all a line can show: keep the last value of each slice.
        step_in = len(points) / width
        points = [points[min(len(points) - 1, int((i + 1) * step_in) - 1)] for i in range(width)]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 2 - (p - low) / span * (height - 4):.1f}" for i, p in enumerate(points)
    )
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="size over time"><polyline points="{coords}"/></svg>'
    )


def build_environment() -> Environment:
    """The console's Jinja2 environment: autoescaped, strict about undefined names."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, pretty_json=pretty_json, compact=compact, spec=spec_text)
    env.globals.update(sparkline=sparkline, static=STATIC_PREFIX)
    return env


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response with the console's headers."""
    body = orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
    response = web.Response(body=body, status=status, content_type="application/json")
    security_headers(response)
    return response


def page(
    env: Environment,
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    json_keys: tuple[str, ...] | None = None,
) -> web.Response:
    """Render `template` with `context`, or return the context (or `json_keys` of it) as JSON."""
    if wants_json(request):
        data = context if json_keys is None else {k: context[k] for k in json_keys}
        return json_response(data, status)
    html = env.get_template(template).render(request_path=request.path_qs, **context)
    response = web.Response(text=html, status=status, content_type="text/html")
    security_headers(response)
    return response
