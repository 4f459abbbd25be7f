"""Console sessions and CSRF tokens: signed, stateless, pure (the clock is an argument).

A session token is `user.expires.nonce.signature`, HMAC-SHA256 under a key derived from
NUDGE_SECRET_KEY and the console password, so changing either logs everyone out. The CSRF
token of a form is an HMAC of the session's nonce (or, before login, of a pre-session nonce
kept in its own cookie): a page from another site can make the browser send the cookie, but it
cannot read or compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "nudge_console"
# Before login, the login form's CSRF token is bound to this cookie's nonce.
LOGIN_COOKIE = "nudge_console_login"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    """A logged-in console user."""

    user: str
    expires: float
    nonce: str


def session_key(secret_key: str, password: str) -> bytes:
    """The signing key of console sessions."""
    return hashlib.sha256(b"nudge-console\x00" + secret_key.encode() + b"\x00" + password.encode()).digest()


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A random token part."""
    return secrets.token_urlsafe(18)


def issue_session(key: bytes, user: str, now: float, lifetime: float, nonce: str | None = None) -> str:
    """A signed session token for `user`, valid until now + lifetime seconds."""
    if "." in user:
        # The token is dot-separated; user names with dots are encoded, not split.
        user = user.encode().hex() + "~hex"
    payload = f"{user}.{int(now + lifetime)}.{nonce or new_nonce()}"
    return f"{payload}.{_sign(key, payload)}"


def read_session(key: bytes, token: str | None, now: float) -> Session | None:
    """The session a token stands for, or None when it is missing, forged or expired."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 4:
        return None
    user, expires, nonce, signature = parts
    if not hmac.compare_digest(_sign(key, f"{user}.{expires}.{nonce}"), signature):
        return None
    try:
        until = float(expires)
    except ValueError:
        return None
    if until <= now:
        return None
    if user.endswith("~hex"):
        user = bytes.fromhex(user[:-4]).decode()
    return Session(user=user, expires=until, nonce=nonce)


def csrf_token(key: bytes, nonce: str) -> str:
    """The token forms carry for the session (or pre-session) nonce `nonce`."""
    return _sign(key, f"csrf.{nonce}")


def csrf_ok(key: bytes, nonce: str | None, token: str | None) -> bool:
    """True when `token` is the form token of `nonce`."""
    if not nonce or not token:
        return False
    return hmac.compare_digest(csrf_token(key, nonce), token)


def credentials_ok(user: str, password: str, want_user: str, want_password: str) -> bool:
    """Compare both in constant time, whatever matches (no early exit that times the user name)."""
    user_ok = hmac.compare_digest(user.encode(), want_user.encode())
    password_ok = hmac.compare_digest(password.encode(), want_password.encode())
    return user_ok and password_ok and bool(want_password)
