"""Who may call what: one credential scheme per kind of key, each refused on the others' routes.

| scheme | key | opens |
|---|---|---|
| `trackBasic` | Basic `NUDGE_SITE_ID:NUDGE_API_KEY` | Track API v1/v2, manual segment membership |
| `writeKey` | `NUDGE_SEGMENT_WRITE_KEY` (Basic user, or `writeKey`) | Segment/RudderStack server APIs, webhooks |
| `browserKey` | `NUDGE_BROWSER_WRITE_KEY` (public) | browser identify/track/page/screen/group |
| `readKey` | Bearer `NUDGE_READ_API_KEY` | profiles, activity, metrics, segments, messages |
| `sendKey` | Bearer `NUDGE_SEND_API_KEY` | transactional sends, broadcasts, suppressions |
| `webhookSignature` | `X-Signature` with `NUDGE_WEBHOOK_SECRET` | webhook destinations |

A key left unset closes its routes (401 naming the setting) instead of falling back to another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from streams.http.errors import ApiError


@dataclass(frozen=True)
class Credential:
    """An accepted caller: which scheme let them in, and the key its rate limit counts under."""

    scheme: str
    rate_key: str
    browser: bool = False


PUBLIC = Credential("public", "")


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """`(user, password)` of an HTTP Basic `Authorization` header; None when absent or not Basic."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return user, password


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header; None when absent or not Bearer."""
    if not header or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip()


def same(given: str, expected: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def check_basic_auth(header: str | None, site_id: str, api_key: str) -> None:
    """Raise a 401 ApiError unless `header` is HTTP Basic `site_id:api_key`."""
    if not header or not header[:6].lower() == "basic ":
        raise ApiError(401, "Unauthorized request: send HTTP Basic site_id:api_key")
    credentials = basic_credentials(header)
    if credentials is None:
        raise ApiError(401, "Unauthorized request: malformed Basic credentials")
    user, password = credentials
    if not (same(user, site_id) and same(password, api_key)):
        raise ApiError(
            401,
            "Unauthorized request: unknown site_id or api_key "
            "(the read, send and browser keys do not open the Track API)",
        )


def webhook_signature(secret: str, raw_body: bytes) -> str:
    """Segment's webhook signature: HMAC-SHA1 of the raw body with the shared secret, hex."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha1).hexdigest()


def check_webhook_signature(header: str | None, secret: str, raw_body: bytes) -> None:
    """Raise a 401 ApiError unless `X-Signature` signs `raw_body` with `secret`."""
    if not header:
        raise ApiError(401, "missing X-Signature: the webhook secret is configured")
    if not same(header.strip().lower(), webhook_signature(secret, raw_body)):
        raise ApiError(401, "X-Signature does not match the body (HMAC-SHA1 hex of the raw body)")


class Scheme(Protocol):
    """A way of proving who is calling; `openapi` is its securitySchemes entry."""

    @property
    def name(self) -> str: ...

    @property
    def openapi(self) -> dict[str, Any]: ...

    @property
    def reads_body(self) -> bool:
        """True when the key may travel in the JSON body (Segment's `writeKey`)."""
        ...

    def check(self, request: web.Request, raw: bytes, body: dict[str, Any] | None) -> Credential:
        """The caller's credential, or a 401/403 ApiError."""
        ...


@dataclass(frozen=True)
class TrackBasic:
    """Customer.io's Track API credentials: Basic `site_id:api_key`."""

    site_id: str
    api_key: str
    name: str = "trackBasic"
    reads_body: bool = False

    @property
    def openapi(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "basic",
                "description": "NUDGE_SITE_ID as the user, NUDGE_API_KEY as the password"}

    def check(self, request: web.Request, raw: bytes, body: dict[str, Any] | None) -> Credential:
        check_basic_auth(request.headers.get("Authorization"), self.site_id, self.api_key)
        return Credential(self.name, f"track:{self.site_id}")


@dataclass(frozen=True)
class AppKey:
    """A Customer.io App-API-style key: `Bearer <key>` (or Basic `site_id:<key>` for curl -u)."""

    name: str
    setting: str
    key: str | None
    site_id: str
    opens: str
    reads_body: bool = False

    @property
    def openapi(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": f"{self.setting}: opens {self.opens}"}

    def check(self, request: web.Request, raw: bytes, body: dict[str, Any] | None) -> Credential:
        if not self.key:
            raise ApiError(401, f"this route is closed: set {self.setting} to open {self.opens}")
        header = request.headers.get("Authorization")
        token = bearer_token(header)
        basic = basic_credentials(header)
        if token is None and basic is None:
            raise ApiError(401, f"Unauthorized request: send `Authorization: Bearer <{self.setting}>`")
        if token is not None and same(token, self.key):
            return Credential(self.name, self.name)
        if basic is not None and same(basic[0], self.site_id) and same(basic[1], self.key):
            return Credential(self.name, self.name)
        raise ApiError(401, f"Unauthorized request: this route takes {self.setting} (it opens {self.opens})")


@dataclass(frozen=True)
class WriteKey:
    """Segment's write key (the Basic user, password empty, or `writeKey` in the body).

    The server key opens the route; so does the public browser key when `browser` is set,
    and the credential says which one was used.
    """

    server_key: str | None
    browser_key: str | None = None
    browser: bool = False
    name: str = "writeKey"
    reads_body: bool = True

    @property
    def openapi(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "basic",
                "description": "NUDGE_SEGMENT_WRITE_KEY (or, from a browser, NUDGE_BROWSER_WRITE_KEY) "
                               "as the user, empty password; or `writeKey` in the body"}

    def check(self, request: web.Request, raw: bytes, body: dict[str, Any] | None) -> Credential:
        credentials = basic_credentials(request.headers.get("Authorization"))
        given = [credentials[0]] if credentials is not None else []
        in_body = (body or {}).get("writeKey")
        if isinstance(in_body, str):
            given.append(in_body)
        if not given:
            # analytics.js batches (`/b`) and beacons carry the key in the query.
            query_key = request.query.get("writeKey")
            if query_key:
                given.append(query_key)
        if not given:
            raise ApiError(401, "missing write key: send it as the HTTP Basic user or as `writeKey`")
        for key in given:
            if self.server_key and same(key, self.server_key):
                return Credential(self.name, "write")
            if self.browser and self.browser_key and same(key, self.browser_key):
                return Credential("browserKey", "browser", browser=True)
        if self.browser_key and any(same(key, self.browser_key) for key in given):
            raise ApiError(403, "the browser key is write-only: it cannot call this route")
        if not self.server_key and not self.browser:
            raise ApiError(401, "this route is closed: set NUDGE_SEGMENT_WRITE_KEY to open it")
        raise ApiError(401, "invalid write key")


@dataclass(frozen=True)
class Webhook:
    """A webhook destination: `X-Signature` when a secret is set, else the server write key."""

    secret: str | None
    write_key: WriteKey
    name: str = "webhookSignature"
    reads_body: bool = True

    @property
    def openapi(self) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "X-Signature",
                "description": "hex HMAC-SHA1 of the raw body with NUDGE_WEBHOOK_SECRET; "
                               "without a secret, the write key as for the Segment API"}

    def check(self, request: web.Request, raw: bytes, body: dict[str, Any] | None) -> Credential:
        if self.secret is not None:
            check_webhook_signature(request.headers.get("X-Signature"), self.secret, raw)
            return Credential(self.name, f"webhook:{request.path}")
        self.write_key.check(request, raw, body)
        return Credential(self.name, f"webhook:{request.path}")
