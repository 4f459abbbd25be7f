"""`POST /v1/send/email`: a transactional email now, in the shape of Customer.io's App API.

The request becomes a `SendEmail(transactional=True)` inserted straight into the outbox (the
delivery loop picks it up within its idle interval); no Kafka round trip, no campaign. The
message id comes from the `Idempotency-Key` header when given, so a retried request queues
nothing twice. Errors answer Customer.io's way: `{"meta": {"error": "..."}}`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from agents.render.errors import TemplateFileError
from agents.render.template_files import load_templates
from agents.sender import outbox
from agents.sender.delivery import INLINE_TEMPLATE, OVERRIDES_KEY
from agents.sender.people import PeopleTableMissing, person_profile
from schemas.commands import RenderContext, SendEmail
from schemas.templates import EmailTemplate
from streams.database import get_pool
from streams.http.auth import basic_credentials, same
from streams.settings import Settings

log = logging.getLogger(__name__)

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
_OVERRIDE_KEYS = ("subject", "body", "from", "reply_to", "preheader")


class SendRequestError(ValueError):
    """A send request Nudge refuses; `status` and the message become the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"meta": {"error": message}}, status=status)


def _authorized(header: str | None, settings: Settings) -> bool:
    if header and header[:7].lower() == "bearer ":
        return same(header[7:].strip(), settings.api_key)
    credentials = basic_credentials(header)
    return credentials is not None and (
        same(credentials[0], settings.site_id) and same(credentials[1], settings.api_key)
    )


def message_id_for(idempotency_key: str | None) -> str:
    """`tx-` + a hash of the idempotency key (same key, same message), else a fresh uuid."""
    if idempotency_key:
        return "tx-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return "tx-" + uuid.uuid4().hex


def _string(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "transactional_message_id":
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise SendRequestError(400, f"`{key}` must be a non-empty string")
    if key in ("to", "from", "reply_to", "subject") and ("\r" in value or "\n" in value):
        raise SendRequestError(400, f"`{key}` must be one line")
    return value.strip() if key != "body" else value


def build_send(
    body: Mapping[str, Any],
    *,
    templates: Mapping[str, EmailTemplate],
    customer: Mapping[str, Any] | None,
    customer_email: str | None,
    message_id: str,
    now: float,
) -> SendEmail:
    """The transactional send a request asks for; SendRequestError names what is wrong."""
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, dict) or not identifiers:
        raise SendRequestError(400, "`identifiers` must be an object like {\"id\": \"42\"} or {\"email\": ...}")
    person = identifiers.get("id") or identifiers.get("email")
    if not isinstance(person, (str, int)) or isinstance(person, bool) or not str(person).strip():
        raise SendRequestError(400, "`identifiers` needs a non-empty `id` or `email`")
    template_id = _string(body, "transactional_message_id") or _string(body, "template")
    overrides = {key: _string(body, key) for key in _OVERRIDE_KEYS}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if template_id is None:
        if "subject" not in overrides or "body" not in overrides:
            raise SendRequestError(
                400, "give `transactional_message_id` (a template id) or both `subject` and `body`"
            )
        template_id = INLINE_TEMPLATE
    elif template_id not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise SendRequestError(404, f"no template {template_id!r} (known: {known})")
    to = _string(body, "to") or customer_email or identifiers.get("email")
    if not isinstance(to, str) or "@" not in to:
        raise SendRequestError(
            400, "`to` is required (an email address) unless the person has one on file"
        )
    message_data = body.get("message_data", {})
    if not isinstance(message_data, dict):
        raise SendRequestError(400, "`message_data` must be an object")
    campaign: dict[str, Any] = {"transactional_message_id": template_id}
    if overrides:
        campaign[OVERRIDES_KEY] = overrides
    return SendEmail(
        message_id=message_id,
        person=str(person),
        to=to,
        template=template_id,
        decided_at=now,
        reason=f"transactional {template_id} via POST /v1/send/email",
        transactional=True,
        context=RenderContext(
            customer={**(customer or {}), **({"id": str(person)} if "id" in identifiers else {})},
            event=message_data,
            event_name="transactional",
            campaign=campaign,
        ),
    )


def transactional_routes(
    settings: Settings,
    *,
    pool_factory: PoolFactory | None = None,
    templates: Callable[[], Mapping[str, EmailTemplate]] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """`POST /v1/send/email`, authorized with `Bearer <api_key>` (or the Track API's Basic)."""
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))
    cache: dict[str, Mapping[str, EmailTemplate]] = {}

    def current_templates(refresh: bool = False) -> Mapping[str, EmailTemplate]:
        if templates is not None:
            return templates()
        if refresh or "all" not in cache:
            try:
                cache["all"] = load_templates(settings.templates_dir)
            except TemplateFileError as exc:
                raise SendRequestError(500, f"templates cannot be loaded: {exc}") from exc
        return cache["all"]

    async def send_email(request: web.Request) -> web.Response:
        if not _authorized(request.headers.get("Authorization"), settings):
            return _error(401, "Unauthorized request: send `Authorization: Bearer <app api key>`")
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the request body is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        now = clock()
        try:
            pool = await get_db()
            identifiers = body.get("identifiers") if isinstance(body.get("identifiers"), dict) else {}
            profile = None
            if identifiers.get("id") is not None:
                try:
                    profile = await person_profile(pool, str(identifiers["id"]))
                except PeopleTableMissing:
                    profile = None
            known = current_templates()
            wanted = body.get("transactional_message_id") or body.get("template")
            if isinstance(wanted, (str, int)) and str(wanted) not in known:
                # A template added since the last load.
                known = current_templates(refresh=True)
            command = build_send(
                body,
                templates=known,
                customer=profile.attributes if profile else None,
                customer_email=profile.email if profile else None,
                message_id=message_id_for(request.headers.get("Idempotency-Key")),
                now=now,
            )
        except SendRequestError as exc:
            return _error(exc.status, str(exc))
        inserted = await outbox.insert_sends(pool, [command], now=now)
        queued_at = now
        if not inserted:
            # The same idempotency key again: answer with the original message.
            status = await outbox.message_status(pool, command.message_id)
            queued_at = status.row.created_at if status else now
        return web.json_response(
            {"delivery_id": command.message_id, "queued_at": int(queued_at),
             "recipient": command.to, "duplicate": not inserted}
        )

    return [web.post("/v1/send/email", send_email)]


# For streams/http/openapi.py to merge into its PATHS (`PATHS | OPENAPI_PATHS`).
OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/v1/send/email": {
        "post": {
            "summary": "Send a transactional email now (Customer.io App API shape)",
            "tags": ["Transactional"],
            "security": [{"appBearer": []}, {"trackBasic": []}],
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["identifiers"],
                "properties": {
                    "transactional_message_id": {"type": ["string", "integer"]},
                    "template": {"type": "string"},
                    "to": {"type": "string"},
                    "identifiers": {"type": "object", "properties": {
                        "id": {"type": ["string", "integer"]}, "email": {"type": "string"}}},
                    "message_data": {"type": "object"},
                    **{key: {"type": "string"} for key in _OVERRIDE_KEYS},
                },
            }}}},
            "responses": {
                "200": {"description": "{delivery_id, queued_at, recipient, duplicate}"},
                "400": {"description": "{meta: {error}}"},
                "401": {"description": "bad credentials"},
                "404": {"description": "unknown template"},
            },
        }
    }
}
