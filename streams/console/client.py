"""A small client of the console for scripts, tests and the bench: log in, then read pages.

Uses only the standard library (blocking), so a script needs nothing else. Every console page
answers JSON to `get_json`, behind the same login as the browser's.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie
from typing import Any

from schemas.errors import InputError
from streams.console.auth import LOGIN_COOKIE, SESSION_COOKIE


class ConsoleLoginFailed(InputError):
    """The console refused the user name and password (or the login form changed): check
    NUDGE_CONSOLE_USERS."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ConsoleClient:
    """A logged-in console session at `base_url` (for example http://127.0.0.1:8686)."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)
        self.session = self._log_in(user, password)

    def _open(self, request: urllib.request.Request) -> tuple[int, dict[str, str], bytes, list[str]]:
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read(), response.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read(), exc.headers.get_all("Set-Cookie") or []

    def _log_in(self, user: str, password: str) -> str:
        status, _, body, cookies = self._open(urllib.request.Request(self.base_url + "/login"))
        found = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        nonce = _cookie(cookies, LOGIN_COOKIE)
        if status != 200 or found is None or nonce is None:
            raise ConsoleLoginFailed(f"no login form at {self.base_url}/login (HTTP {status})")
        form = urllib.parse.urlencode({"csrf_token": found.group(1).decode(), "user": user, "password": password})
        request = urllib.request.Request(self.base_url + "/login", data=form.encode(), method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        request.add_header("Cookie", f"{LOGIN_COOKIE}={nonce}")
        status, _, body, cookies = self._open(request)
        session = _cookie(cookies, SESSION_COOKIE)
        if status != 303 or session is None:
            raise ConsoleLoginFailed(f"login refused (HTTP {status}): {body[:200].decode(errors='replace')}")
        return session

    def get(self, path: str, accept: str = "text/html") -> tuple[int, dict[str, str], bytes]:
        """GET a console path with the session; redirects are returned, not followed."""
        request = urllib.request.Request(self.base_url + path)
        request.add_header("Cookie", f"{SESSION_COOKIE}={self.session}")
        request.add_header("Accept", accept)
        status, headers, body, _ = self._open(request)
        return status, headers, body

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET a console page as JSON: (status, data)."""
        status, _, body = self.get(path, "application/json")
        return status, json.loads(body or b"null")

    def timed(self, path: str) -> tuple[int, float]:
        """GET a page as HTML; (status, seconds it took)."""
        started = time.perf_counter()
        status, _, _ = self.get(path)
        return status, time.perf_counter() - started


def _cookie(headers: list[str], name: str) -> str | None:
    for header in headers:
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie[name].value
    return None
