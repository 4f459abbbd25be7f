"""Credentials: HTTP Basic for the Track API and the Segment write key, HMAC for webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from streams.http.errors import ApiError


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """`(user, password)` of an HTTP Basic `Authorization` header; None when absent or not Basic."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return user, password


def same(given: str, expected: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(given.encode(), expected.encode())


def check_basic_auth(header: str | None, site_id: str, api_key: str) -> None:
    """Raise a 401 ApiError unless `header` is HTTP Basic `site_id:api_key`."""
    if not header or not header[:6].lower() == "basic ":
        raise ApiError(401, "Unauthorized request: send HTTP Basic site_id:api_key")
    credentials = basic_credentials(header)
    if credentials is None:
        raise ApiError(401, "Unauthorized request: malformed Basic credentials")
    user, password = credentials
    if not (same(user, site_id) and same(password, api_key)):
        raise ApiError(401, "Unauthorized request: unknown site_id or api_key")


def check_write_key(header: str | None, body_write_key: object, write_key: str) -> None:
    """Raise a 401 ApiError unless the Basic user or the body's `writeKey` is the write key."""
    credentials = basic_credentials(header)
    if credentials is not None and same(credentials[0], write_key):
        return
    if isinstance(body_write_key, str) and same(body_write_key, write_key):
        return
    if credentials is None and body_write_key is None:
        raise ApiError(401, "missing write key: send it as the HTTP Basic user or as `writeKey`")
    raise ApiError(401, "invalid write key")


def webhook_signature(secret: str, raw_body: bytes) -> str:
    """Segment's webhook signature: HMAC-SHA1 of the raw body with the shared secret, hex."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha1).hexdigest()


def check_webhook_signature(header: str | None, secret: str, raw_body: bytes) -> None:
    """Raise a 401 ApiError unless `X-Signature` signs `raw_body` with `secret`."""
    if not header:
        raise ApiError(401, "missing X-Signature: the webhook secret is configured")
    if not same(header.strip().lower(), webhook_signature(secret, raw_body)):
        raise ApiError(401, "X-Signature does not match the body (HMAC-SHA1 hex of the raw body)")
