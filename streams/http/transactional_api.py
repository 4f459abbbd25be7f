"""`POST /v1/send/email`: a transactional email now, in the shape of Customer.io's App API.

The request becomes a `SendEmail(transactional=True)` inserted straight into the outbox (the
delivery loop picks it up within its idle interval); no Kafka round trip, no campaign. The
message id comes from the `Idempotency-Key` header when given, so a retried request queues
nothing twice. The send key opens it; errors answer Customer.io's way: `{"meta": {"error": "..."}}`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from aiohttp import web

from agents.render.template_files import TemplateFileError, load_templates
from agents.sender import messages
from agents.sender.messages import INLINE_TEMPLATE, OVERRIDES_KEY, PeopleTableMissing, person_profile
from schemas.addresses import AddressError, parse_email
from schemas.app_api import SendEmailBody
from schemas.commands import RenderContext, SendEmail
from schemas.templates import EmailTemplate
from streams.database import get_pool
from streams.http.auth import AppKey
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation
from streams.settings import Settings, reveal

log = logging.getLogger(__name__)

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
SEND_OPENS = "transactional email, broadcasts and changes to the suppression list"


def send_key(settings: Settings) -> AppKey:
    """The send key's credential scheme."""
    return AppKey("sendKey", "NUDGE_SEND_API_KEY", reveal(settings.send_api_key), settings.site_id, SEND_OPENS)


def message_id_for(idempotency_key: str | None) -> str:
    """`tx-` + a hash of the idempotency key (same key, same message), else a fresh uuid."""
    if idempotency_key:
        return "tx-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return "tx-" + uuid.uuid4().hex


def build_send(
    body: SendEmailBody,
    *,
    templates: Mapping[str, EmailTemplate],
    customer: Mapping[str, Any] | None,
    customer_email: str | None,
    message_id: str,
    now: float,
) -> SendEmail:
    """The transactional send a request asks for; ApiError names what is wrong."""
    identifiers = body.identifiers
    person = identifiers.id or identifiers.email
    assert person is not None  # SendIdentifiers requires one
    template_id = body.transactional_message_id or body.template
    overrides = body.overrides()
    if template_id is None:
        if "subject" not in overrides or "body" not in overrides:
            raise ApiError(
                400, "give `transactional_message_id` (a template id) or both `subject` and `body`",
                field="transactional_message_id",
            )
        template_id = INLINE_TEMPLATE
    elif template_id not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise ApiError(404, f"no template {template_id!r} (known: {known})", field="transactional_message_id")
    to = body.to or customer_email or identifiers.email
    if not to:
        raise ApiError(400, "`to` is required (an email address) unless the person has one on file", field="to")
    try:
        parse_email(to)
    except AddressError as exc:
        # Only an address on file can get here: `to` and `identifiers.email` are checked by the model.
        raise ApiError(400, f"the address on file for {person!r} is not one valid address: {exc}", field="to") from exc
    campaign: dict[str, Any] = {"transactional_message_id": template_id}
    if overrides:
        campaign[OVERRIDES_KEY] = overrides
    return SendEmail(
        message_id=message_id,
        person=person,
        to=to,
        template=template_id,
        decided_at=now,
        reason=f"transactional {template_id} via POST /v1/send/email",
        transactional=True,
        context=RenderContext(
            customer={**(customer or {}), **({"id": person} if identifiers.id else {})},
            event=body.message_data or {},
            event_name="transactional",
            campaign=campaign,
        ),
    )


def transactional_operations(
    settings: Settings,
    *,
    pool_factory: PoolFactory | None = None,
    templates: Callable[[], Mapping[str, EmailTemplate]] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Operation]:
    """`POST /v1/send/email`, opened by the send key (`Bearer <NUDGE_SEND_API_KEY>`)."""
    get_db: PoolFactory = pool_factory or (lambda: get_pool(settings))
    cache: dict[str, Mapping[str, EmailTemplate]] = {}

    def current_templates(refresh: bool = False) -> Mapping[str, EmailTemplate]:
        if templates is not None:
            return templates()
        if refresh or "all" not in cache:
            try:
                cache["all"] = load_templates(settings.templates_dir)
            except TemplateFileError as exc:
                raise ApiError(409, f"the template files are invalid, fix them first: {exc}") from exc
        return cache["all"]

    async def send_email(call: Call) -> web.Response:
        body: SendEmailBody = call.body
        now = clock()
        pool = await get_db()
        profile = None
        if body.identifiers.id is not None:
            try:
                profile = await person_profile(pool, body.identifiers.id)
            except PeopleTableMissing:
                profile = None
        known = current_templates()
        wanted = body.transactional_message_id or body.template
        if wanted is not None and wanted not in known:
            # A template added since the last load.
            known = current_templates(refresh=True)
        idempotency_key = call.request.headers.get("Idempotency-Key")
        command = build_send(
            body,
            templates=known,
            customer=profile.attributes if profile else None,
            customer_email=profile.email if profile else None,
            message_id=message_id_for(idempotency_key),
            now=now,
        )
        inserted = await messages.insert_sends(pool, [command], now=now)
        queued_at = now
        if not inserted:
            # The same idempotency key again: answer with the original message.
            status = await messages.message_status(pool, command.message_id)
            queued_at = status.row.created_at if status else now
        return web.json_response(
            {"delivery_id": command.message_id, "queued_at": int(queued_at),
             "recipient": command.to, "duplicate": not inserted}
        )

    return [
        Operation("POST", "/v1/send/email", send_email, "Send a transactional email now (Customer.io App API shape)",
                  "Transactional", auth=send_key(settings), body=SendEmailBody,
                  errors=(400, 401, 404, 409, 429, 503),
                  description="`Idempotency-Key` header: the same key queues one message."),
    ]
