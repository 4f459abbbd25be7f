"""Signed links in emails: unsubscribe, preferences, open pixel and click redirects (pure).

A token is `base64url(json([kind, message_id, person])) "." base64url(HMAC-SHA256)`, keyed with
NUDGE_SECRET_KEY. The signature covers the kind (so an open token cannot unsubscribe) and, for
clicks, the destination URL (so a click link can never be turned into an open redirect).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import quote

import orjson

from schemas.errors import InputError

LinkKind = Literal["unsubscribe", "preferences", "open", "click"]

_KIND_CODES: dict[str, str] = {"unsubscribe": "u", "preferences": "p", "open": "o", "click": "c"}


class LinkSignatureError(InputError):
    """A link token is malformed, of another kind, or its signature does not match (answered 404;
    a link signed with a retired key needs that key back in NUDGE_SECRET_KEY_PREVIOUS)."""


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token vouches for."""

    kind: LinkKind
    message_id: str
    person: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    # Keying HMAC is half its cost for short messages: key once per secret, copy per link.
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def _mac(secret: str, kind: LinkKind, payload: str, extra: str) -> bytes:
    mac = _keyed(secret).copy()
    mac.update("\0".join((_KIND_CODES[kind], payload, extra)).encode("utf-8"))
    return mac.digest()


def sign(secret: str, kind: LinkKind, message_id: str, person: str, extra: str = "") -> str:
    """A URL-safe token for (kind, message, person); `extra` (a click's URL) is signed but not carried."""
    if not secret:
        raise LinkSignatureError("NUDGE_SECRET_KEY is empty; links cannot be signed")
    payload = _b64(orjson.dumps([_KIND_CODES[kind], message_id, person]))
    return f"{payload}.{_b64(_mac(secret, kind, payload, extra))}"


def verify(secret: str, token: str, kind: LinkKind, extra: str = "") -> LinkClaims:
    """The claims of a token of `kind`; raise LinkSignatureError if it was altered or forged."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise LinkSignatureError("the link is malformed")
    try:
        given = _unb64(signature)
        code, message_id, person = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise LinkSignatureError("the link is malformed") from exc
    if not hmac.compare_digest(given, _mac(secret, kind, payload, extra)):
        raise LinkSignatureError("the link's signature does not match")
    if code != _KIND_CODES[kind] or not isinstance(person, str) or not isinstance(message_id, str):
        raise LinkSignatureError("the link is of another kind")
    return LinkClaims(kind=kind, message_id=message_id, person=person)


def verify_with_keys(secrets: Sequence[str], token: str, kind: LinkKind, extra: str = "") -> LinkClaims:
    """Like `verify`, accepting a token signed with any of `secrets` (the current key first).

    Key rotation: links already in inboxes were signed with the previous key, which stays
    accepted for its window (`Settings.link_keys`).
    """
    error = LinkSignatureError("no key to verify the link with")
    for secret in secrets:
        try:
            return verify(secret, token, kind, extra)
        except LinkSignatureError as exc:
            error = exc
    raise error


@dataclass(frozen=True)
class MessageLinks:
    """Every signed link of one message, built from the public URL and secret."""

    unsubscribe: str
    preferences: str
    open_pixel: str
    unsubscribe_mailto: str | None
    click_base: str
    secret: str
    message_id: str
    person: str

    def click(self, url: str) -> str:
        """The tracked redirect for `url`."""
        token = sign(self.secret, "click", self.message_id, self.person, url)
        return f"{self.click_base}/c/{token}?u={quote(url, safe='')}"


def message_links(
    public_url: str, secret: str, message_id: str, person: str, mailto: str | None = None
) -> MessageLinks:
    """The links for one message; `mailto` (an address) adds a mailto: unsubscribe for List-Unsubscribe."""
    base = public_url.rstrip("/")
    unsubscribe = sign(secret, "unsubscribe", message_id, person)
    return MessageLinks(
        unsubscribe=f"{base}/unsubscribe/{unsubscribe}",
        preferences=f"{base}/preferences/{sign(secret, 'preferences', '', person)}",
        open_pixel=f"{base}/o/{sign(secret, 'open', message_id, person)}.gif",
        unsubscribe_mailto=(
            f"mailto:{mailto}?subject={quote('unsubscribe ' + unsubscribe)}" if mailto else None
        ),
        click_base=base,
        secret=secret,
        message_id=message_id,
        person=person,
    )
