"""The links inside emails, and the message/suppression API behind the Track API credentials.

- `GET /unsubscribe/{token}` shows a confirmation page (mail scanners prefetch GETs, so a GET
  never unsubscribes); `POST` (RFC 8058 one-click, or the page's button) publishes `Unsubscribe`.
- `GET|POST /preferences/{token}`: the person's subscription topics.
- `GET /o/{token}.gif`: the open pixel; publishes `Delivery(status="opened")`.
- `GET /c/{token}?u=URL`: a click; 302 to URL and `Delivery(status="clicked")`. The signature
  covers URL, so an altered link is refused (403), never redirected.
- `GET /api/v1/messages/{message_id}`; `GET /api/v1/suppressions`, `PUT|DELETE
  /api/v1/suppressions/{address}`: HTTP Basic site_id:api_key, like the Track API.
"""

from __future__ import annotations

import base64
import html
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from agents.render.template_files import load_templates
from agents.render.errors import TemplateFileError
from agents.sender import outbox, preferences, suppression
from agents.sender.links import LinkClaims, LinkKind, LinkSignatureError, verify
from schemas.inputs import Delivery, Input, Unsubscribe
from schemas.outbox import MessageStatus
from streams.database import get_pool
from streams.http.auth import check_basic_auth
from streams.http.errors import ApiError
from streams.settings import Settings

log = logging.getLogger(__name__)

Publish = Callable[[list[Input]], Awaitable[None]]
PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]

# The smallest transparent GIF (1x1).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0"}


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**_NO_STORE, "Referrer-Policy": "no-referrer"},
        text=(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title></head>"
            "<body style='font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem'>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>"
        ),
    )


def _refused() -> web.Response:
    return _page("This link is not valid", "<p>The link was changed or is incomplete.</p>", 403)


def _claims(secret: str, token: str, kind: LinkKind, extra: str = "") -> LinkClaims | None:
    try:
        return verify(secret, token, kind, extra)
    except LinkSignatureError:
        return None


def _topics_from_templates(settings: Settings) -> Callable[[], list[str]]:
    cache: dict[str, list[str]] = {}

    def topics() -> list[str]:
        if "topics" not in cache:
            try:
                templates = load_templates(settings.templates_dir)
            except TemplateFileError as exc:
                log.warning("preferences page: cannot load templates: %s", exc)
                return []
            cache["topics"] = sorted({t.topic for t in templates.values() if t.topic})
        return cache["topics"]

    return topics


def email_link_routes(
    settings: Settings,
    publish: Publish,
    *,
    pool_factory: PoolFactory | None = None,
    topics: Callable[[], list[str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """Routes for unsubscribe, preferences, open pixel, click redirects and the message API."""
    secret = settings.secret_key
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))
    known_topics = topics or _topics_from_templates(settings)

    async def engagement(claims: LinkClaims, status: str, url: str | None = None) -> None:
        # Opens and clicks are best effort: the reader gets the pixel or the redirect anyway.
        now = clock()
        try:
            pool = await get_db()
            await outbox.record_event(pool, claims.message_id, status, url, now=now)
        except Exception:
            log.exception("could not record %s of %s", status, claims.message_id)
        try:
            await publish([
                Delivery(person=claims.person, at=now, message_id=claims.message_id,
                         status=status, url=url)  # type: ignore[arg-type]
            ])
        except Exception:
            log.exception("could not publish %s of %s", status, claims.message_id)

    async def unsubscribe(claims: LinkClaims) -> None:
        # Unlike engagement, this must not be lost: an error here is a 5xx the sender retries.
        now = clock()
        await publish([Unsubscribe(person=claims.person, at=now, message_id=claims.message_id)])
        pool = await get_db()
        await outbox.record_event(pool, claims.message_id, "unsubscribed", None, now=now)

    async def unsubscribe_page(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if _claims(secret, token, "unsubscribe") is None:
            return _refused()
        return _page(
            "Unsubscribe",
            "<p>Stop receiving these emails?</p>"
            f"<form method='post' action='/unsubscribe/{html.escape(token)}'>"
            "<button type='submit'>Unsubscribe</button></form>",
        )

    async def unsubscribe_post(request: web.Request) -> web.Response:
        claims = _claims(secret, request.match_info["token"], "unsubscribe")
        if claims is None:
            return _refused()
        await unsubscribe(claims)
        return _page("You are unsubscribed", "<p>You will not receive these emails any more.</p>")

    async def preferences_page(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        claims = _claims(secret, token, "preferences")
        if claims is None:
            return _refused()
        pool = await get_db()
        choices = await preferences.preferences_of(pool, claims.person)
        if request.method == "POST":
            form = await request.post()
            offered = sorted(set(known_topics()) | set(choices))
            chosen = {topic: form.get(f"topic:{topic}") == "on" for topic in offered}
            await preferences.set_preferences(pool, claims.person, chosen, now=clock())
            if form.get("unsubscribe_all") == "on":
                await unsubscribe(LinkClaims("unsubscribe", "", claims.person))
            choices = chosen
        offered = sorted(set(known_topics()) | set(choices))
        boxes = "".join(
            f"<p><label><input type='checkbox' name='topic:{html.escape(t)}'"
            f"{' checked' if choices.get(t, True) else ''}> {html.escape(t)}</label></p>"
            for t in offered
        ) or "<p>There are no topics to choose from.</p>"
        return _page(
            "Email preferences",
            f"<form method='post' action='/preferences/{html.escape(token)}'>{boxes}"
            "<p><label><input type='checkbox' name='unsubscribe_all'> Unsubscribe from all"
            " marketing email</label></p><button type='submit'>Save</button></form>"
            + ("<p>Saved.</p>" if request.method == "POST" else ""),
        )

    async def open_pixel(request: web.Request) -> web.Response:
        claims = _claims(secret, request.match_info["token"], "open")
        if claims is not None:
            await engagement(claims, "opened")
        # Always a GIF: a broken image would tell nobody anything useful.
        return web.Response(body=PIXEL_GIF, content_type="image/gif", headers=_NO_STORE)

    async def click(request: web.Request) -> web.Response:
        url = request.query.get("u", "")
        claims = _claims(secret, request.match_info["token"], "click", url)
        if claims is None or not url.lower().startswith(("http://", "https://")):
            return _refused()
        await engagement(claims, "clicked", url)
        raise web.HTTPFound(url, headers=_NO_STORE)

    def authorized(request: web.Request) -> None:
        check_basic_auth(request.headers.get("Authorization"), settings.site_id, settings.api_key)

    async def message(request: web.Request) -> web.Response:
        authorized(request)
        pool = await get_db()
        status = await outbox.message_status(pool, request.match_info["message_id"])
        if status is None:
            raise ApiError(404, f"no message {request.match_info['message_id']!r}")
        return web.json_response(message_json(status))

    async def list_suppressed(request: web.Request) -> web.Response:
        authorized(request)
        pool = await get_db()
        rows = await suppression.list_suppressions(pool)
        return web.json_response({"suppressions": [r.model_dump() for r in rows]})

    async def add_suppressed(request: web.Request) -> web.Response:
        authorized(request)
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError as exc:
                raise ApiError(400, "the body must be JSON like {\"reason\": \"complaint\"}") from exc
            if not isinstance(body, dict):
                raise ApiError(400, "the body must be a JSON object")
        address = request.match_info["address"]
        if "@" not in address:
            raise ApiError(400, f"{address!r} is not an email address")
        reason = str(body.get("reason") or "manual")
        pool = await get_db()
        added = await suppression.suppress(pool, address, reason, detail=body.get("detail"),
                                           now=clock())
        return web.json_response({"address": suppression.normalize_address(address),
                                  "added": added})

    async def remove_suppressed(request: web.Request) -> web.Response:
        authorized(request)
        pool = await get_db()
        removed = await suppression.unsuppress(pool, request.match_info["address"])
        if not removed:
            raise ApiError(404, f"{request.match_info['address']!r} is not suppressed")
        return web.json_response({"removed": True})

    return [
        web.get("/unsubscribe/{token}", unsubscribe_page),
        web.post("/unsubscribe/{token}", unsubscribe_post),
        web.get("/preferences/{token}", preferences_page),
        web.post("/preferences/{token}", preferences_page),
        web.get("/o/{token}.gif", open_pixel),
        web.get("/c/{token}", click),
        web.get("/api/v1/messages/{message_id}", message),
        web.get("/api/v1/suppressions", list_suppressed),
        web.put("/api/v1/suppressions/{address}", add_suppressed),
        web.delete("/api/v1/suppressions/{address}", remove_suppressed),
    ]


def message_json(status: MessageStatus) -> dict[str, Any]:
    """A message's status and timeline as the API answers it."""
    row = status.row
    engagement = [e.status for e in status.events if e.status in ("opened", "clicked", "unsubscribed")]
    return {
        "message_id": row.message_id,
        "person": row.person,
        "to": row.to_address,
        "template": row.template,
        "campaign_id": row.campaign_id,
        "transactional": row.command.transactional,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "opened": "opened" in engagement,
        "clicked": "clicked" in engagement,
        "unsubscribed": "unsubscribed" in engagement,
        "timeline": [e.model_dump() for e in status.events],
    }


def _op(summary: str, params: tuple[str, ...], responses: dict[str, str], *, auth: bool = False,
        query: tuple[str, ...] = ()) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["Email links and messages"],
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
        ] + [
            {"name": q, "in": "query", "required": True, "schema": {"type": "string"}} for q in query
        ],
        "responses": {code: {"description": text} for code, text in responses.items()},
    }
    if auth:
        operation["security"] = [{"trackBasic": []}]
    return operation


_SIGNED = {"403": "the link was altered or forged"}
# For streams/http/openapi.py to merge into its PATHS (`PATHS | OPENAPI_PATHS`).
OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/unsubscribe/{token}": {
        "get": _op("Unsubscribe confirmation page (never unsubscribes by itself)", ("token",),
                   {"200": "HTML page", **_SIGNED}),
        "post": _op("Unsubscribe (RFC 8058 one-click); publishes an Unsubscribe input", ("token",),
                    {"200": "HTML page", **_SIGNED}),
    },
    "/preferences/{token}": {
        "get": _op("Subscription topics page", ("token",), {"200": "HTML page", **_SIGNED}),
        "post": _op("Save subscription topics (form: topic:NAME=on, unsubscribe_all=on)",
                    ("token",), {"200": "HTML page", **_SIGNED}),
    },
    "/o/{token}.gif": {
        "get": _op("Open pixel; publishes Delivery(status=opened)", ("token",),
                   {"200": "a 1x1 GIF, also for invalid tokens"}),
    },
    "/c/{token}": {
        "get": _op("Click redirect; publishes Delivery(status=clicked, url)", ("token",),
                   {"302": "to the signed URL", **_SIGNED}, query=("u",)),
    },
    "/api/v1/messages/{message_id}": {
        "get": _op("A message's status and timeline", ("message_id",),
                   {"200": "status JSON", "401": "bad credentials", "404": "unknown message"},
                   auth=True),
    },
    "/api/v1/suppressions": {
        "get": _op("Suppressed addresses, newest first", (), {"200": "JSON list"}, auth=True),
    },
    "/api/v1/suppressions/{address}": {
        "put": _op("Suppress an address (body: {reason, detail})", ("address",),
                   {"200": "added", "400": "not an address", "401": "bad credentials"}, auth=True),
        "delete": _op("Unsuppress an address", ("address",),
                      {"200": "removed", "404": "not suppressed", "401": "bad credentials"},
                      auth=True),
    },
}
