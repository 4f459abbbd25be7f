"""The links inside emails, and the message/suppression API behind the Track API credentials.

- `GET /unsubscribe/{token}` shows a confirmation page (mail scanners prefetch GETs, so a GET
  never unsubscribes); `POST` (RFC 8058 one-click, or the page's button) publishes `Unsubscribe`.
- `GET|POST /preferences/{token}`: the person's subscription topics.
- `GET /o/{token}.gif`: the open pixel; publishes `Delivery(status="opened")`.
- `GET /c/{token}?u=URL`: a click; 302 to URL and `Delivery(status="clicked")`. The signature
  covers URL, so an altered link is refused (403), never redirected.
- `GET /api/v1/messages/{message_id}`, `GET /api/v1/suppressions`: the read key;
  `PUT|DELETE /api/v1/suppressions/{address}`: the send key.

Links verify with the current NUDGE_SECRET_KEY and, during its window, the previous one.
"""

from __future__ import annotations

import base64
import html
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from agents.render.template_files import TemplateFileError, load_templates
from agents.sender import messages
from agents.sender.messages import LinkClaims, LinkKind, LinkSignatureError, verify_with_keys
from schemas.addresses import AddressError, parse_email
from schemas.app_api import ClickQuery, PreferencesForm, SuppressBody
from schemas.inputs import Delivery, Unsubscribe
from schemas.outbox import MessageStatus
from streams.database import get_pool
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.http.publisher import Publish
from streams.http.read_api import read_key
from streams.http.transactional_api import send_key
from streams.settings import Settings

log = logging.getLogger(__name__)

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]

# The smallest transparent GIF (1x1).
TAG = "Email links"
# Link tokens carry a message id and a person id (150 bytes each) in base64 with a signature.
MAX_TOKEN_BYTES = 1024
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


def _claims(keys: Sequence[str], token: str, kind: LinkKind, extra: str = "") -> LinkClaims | None:
    try:
        return verify_with_keys(keys, token, kind, extra)
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


def email_link_operations(
    settings: Settings,
    publish: Publish,
    *,
    pool_factory: PoolFactory | None = None,
    topics: Callable[[], list[str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Operation]:
    """Routes for unsubscribe, preferences, open pixel, click redirects and the message API."""

    def keys() -> tuple[str, ...]:
        return settings.link_keys(clock())

    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))
    known_topics = topics or _topics_from_templates(settings)

    async def engagement(claims: LinkClaims, status: str, url: str | None = None) -> None:
        # Opens and clicks are best effort: the reader gets the pixel or the redirect anyway.
        now = clock()
        try:
            pool = await get_db()
            await messages.record_event(pool, claims.message_id, status, url, now=now)
        except Exception:
            log.exception("could not record %s of %s", status, claims.message_id)
        try:
            await publish([
                Delivery(person=claims.person, at=now, message_id=claims.message_id,
                         status=status, url=url)
            ])
        except Exception:
            log.exception("could not publish %s of %s", status, claims.message_id)

    async def unsubscribe(claims: LinkClaims) -> None:
        # Unlike engagement, this must not be lost: an error here is a 5xx the sender retries.
        now = clock()
        await publish([Unsubscribe(person=claims.person, at=now, message_id=claims.message_id)])
        pool = await get_db()
        await messages.record_event(pool, claims.message_id, "unsubscribed", None, now=now)

    async def unsubscribe_page(call: Call) -> web.Response:
        token = call.path("token")
        if _claims(keys(), token, "unsubscribe") is None:
            return _refused()
        return _page(
            "Unsubscribe",
            "<p>Stop receiving these emails?</p>"
            f"<form method='post' action='/unsubscribe/{html.escape(token)}'>"
            "<button type='submit'>Unsubscribe</button></form>",
        )

    async def unsubscribe_post(call: Call) -> web.Response:
        claims = _claims(keys(), call.path("token"), "unsubscribe")
        if claims is None:
            return _refused()
        await unsubscribe(claims)
        return _page("You are unsubscribed", "<p>You will not receive these emails any more.</p>")

    async def preferences_page(call: Call) -> web.Response:
        request = call.request
        token = call.path("token")
        claims = _claims(keys(), token, "preferences")
        if claims is None:
            return _refused()
        pool = await get_db()
        choices = await messages.preferences_of(pool, claims.person)
        if request.method == "POST":
            try:
                form = await request.post()
            except (ValueError, UnicodeDecodeError, HttpProcessingError) as exc:
                raise ApiError(400, f"the form could not be read: {exc}") from exc
            offered = sorted(set(known_topics()) | set(choices))
            chosen = {topic: form.get(f"topic:{topic}") == "on" for topic in offered}
            await messages.set_preferences(pool, claims.person, chosen, now=clock())
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

    async def open_pixel(call: Call) -> web.Response:
        claims = _claims(keys(), call.path("token"), "open")
        if claims is not None:
            await engagement(claims, "opened")
        # Always a GIF: a broken image would tell nobody anything useful.
        return web.Response(body=PIXEL_GIF, content_type="image/gif", headers=_NO_STORE)

    async def click(call: Call) -> web.Response:
        url = call.query.u
        claims = _claims(keys(), call.path("token"), "click", url)
        if claims is None or not url.lower().startswith(("http://", "https://")):
            return _refused()
        await engagement(claims, "clicked", url)
        raise web.HTTPFound(url, headers=_NO_STORE)

    async def message(call: Call) -> web.Response:
        status = await messages.message_status(await get_db(), call.path("message_id"))
        if status is None:
            raise ApiError(404, f"no message {call.path('message_id')!r}")
        return web.json_response(message_json(status))

    async def list_suppressed(call: Call) -> web.Response:
        rows = await messages.list_suppressions(await get_db())
        return web.json_response({"suppressions": [r.model_dump() for r in rows]})

    async def add_suppressed(call: Call) -> web.Response:
        body: SuppressBody = call.body
        try:
            address = parse_email(call.path("address")).normalized
        except AddressError as exc:
            raise ApiError(400, f"`path.address` must be one email address: {exc}", field="path.address") from exc
        added = await messages.suppress(await get_db(), address, body.reason or "manual",
                                           detail=body.detail, now=clock())
        return web.json_response({"address": address, "added": added})

    async def remove_suppressed(call: Call) -> web.Response:
        given = call.path("address")
        try:
            address = parse_email(given).normalized
        except AddressError:
            address = given  # an entry stored before addresses were checked
        removed = await messages.unsuppress(await get_db(), address)
        if not removed:
            raise ApiError(404, f"{given!r} is not suppressed")
        return web.json_response({"removed": True})

    read, send = read_key(settings), send_key(settings)
    tokens = {"token": MAX_TOKEN_BYTES}
    page = "text/html"
    return [
        Operation("GET", "/unsubscribe/{token}", unsubscribe_page,
                  "Unsubscribe confirmation page (a GET never unsubscribes: scanners prefetch)", TAG,
                  path_limits=tokens, produces=page, errors=(400, 403)),
        Operation("POST", "/unsubscribe/{token}", unsubscribe_post,
                  "Unsubscribe (RFC 8058 one-click, or the page's button)", TAG,
                  path_limits=tokens, produces=page, errors=(400, 403, 503)),
        Operation("GET", "/preferences/{token}", preferences_page, "Subscription topics page", TAG,
                  path_limits=tokens, produces=page, errors=(400, 403, 503)),
        Operation("POST", "/preferences/{token}", preferences_page, "Save subscription topics", TAG,
                  form=PreferencesForm, path_limits=tokens, produces=page, errors=(400, 403, 503)),
        Operation("GET", "/o/{token}.gif", open_pixel, "Open pixel (a GIF, also for invalid tokens)", TAG,
                  path_limits=tokens, produces="image/gif", errors=(400,)),
        Operation("GET", "/c/{token}", click, "Click redirect to the signed URL", TAG,
                  query=ClickQuery, path_limits=tokens, success=302, produces=page, errors=(400, 403)),
        Operation("GET", "/api/v1/messages/{message_id}", message, "A message's status and timeline",
                  "Messages and suppressions", auth=read, path_limits={"message_id": 300},
                  errors=(400, 401, 404, 503)),
        Operation("GET", "/api/v1/suppressions", list_suppressed, "Suppressed addresses, newest first",
                  "Messages and suppressions", auth=read, errors=(401, 503)),
        Operation("PUT", "/api/v1/suppressions/{address}", add_suppressed, "Suppress an address",
                  "Messages and suppressions", auth=send, body=SuppressBody,
                  path_limits={"address": 254}, errors=(400, 401, 503)),
        Operation("DELETE", "/api/v1/suppressions/{address}", remove_suppressed, "Unsuppress an address",
                  "Messages and suppressions", auth=send, path_limits={"address": 254},
                  errors=(400, 401, 404, 503)),
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
