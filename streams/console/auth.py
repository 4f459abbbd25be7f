"""The console's login: the guard every page goes through, the login and logout forms.

Nothing but the login page and the console's static files is served without a session. A
browser without one is sent to the login page; a JSON client gets 401. Every form that changes
something (login, logout) must carry its CSRF token and, when the browser says where it comes
from (Origin, or Referer), come from this site. Cookies are `__Host-` prefixed: Secure,
HttpOnly, SameSite=Strict, path /, no domain.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from aiohttp import web
from jinja2 import Environment

from streams.console import sessions
from streams.console.render import json_response, page, security_headers, wants_json
from streams.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "__Host-" + sessions.SESSION_COOKIE
LOGIN_COOKIE = "__Host-" + sessions.LOGIN_COOKIE
SESSION_KEY = web.RequestKey("console_session", sessions.Session)

# Failed logins per client address before it must wait, and the window they are counted in.
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 300.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], float]


@dataclass
class LoginThrottle:
    """Counts failed logins per client address; refuses more than MAX_FAILURES in the window."""

    clock: Clock = time.time
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked_for(self, client: str) -> float:
        """Seconds the client must wait before trying again (0 when it may try now)."""
        now = self.clock()
        seen = self.failures.get(client)
        if not seen:
            return 0.0
        while seen and seen[0] <= now - FAILURE_WINDOW_SECONDS:
            seen.popleft()
        if len(seen) < MAX_FAILURES:
            return 0.0
        return seen[0] + FAILURE_WINDOW_SECONDS - now

    def failed(self, client: str) -> None:
        """Record a failed attempt."""
        self.failures.setdefault(client, deque()).append(self.clock())
        if len(self.failures) > 10_000:
            # Bounded memory under a spray of addresses: forget the oldest.
            self.failures.pop(next(iter(self.failures)))

    def succeeded(self, client: str) -> None:
        """Forget a client's failures."""
        self.failures.pop(client, None)


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another host, a scheme) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site (Origin, else Referer)."""
    source = request.headers.get("Origin")
    if source is None:
        referer = request.headers.get("Referer")
        if referer is None:
            # No header at all: not a browser's cross-site form (browsers send Origin on POST).
            return True
        parts = urlsplit(referer)
        source = f"{parts.scheme}://{parts.netloc}"
    if source == "null":
        return False
    parts = urlsplit(source)
    return parts.netloc.lower() == request.host.lower()


class ConsoleAuth:
    """Issues and checks console sessions for one deployment's settings."""

    def __init__(self, settings: Settings, env: Environment, clock: Clock = time.time) -> None:
        self.settings = settings
        self.env = env
        self.clock = clock
        self.key = sessions.session_key(settings.secret_key, settings.console_password.get_secret_value())
        self.lifetime = settings.console_session_hours * 3600.0
        self.throttle = LoginThrottle(clock)

    def session_of(self, request: web.Request) -> sessions.Session | None:
        """The request's valid session, if any."""
        return sessions.read_session(self.key, request.cookies.get(SESSION_COOKIE), self.clock())

    def csrf_for(self, session: sessions.Session) -> str:
        """The CSRF token forms carry in this session."""
        return sessions.csrf_token(self.key, session.nonce)

    def guard(self, handler: Handler) -> Handler:
        """Wrap a console page: no session, no page."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            session = self.session_of(request)
            if session is None:
                return self.login_required(request)
            request[SESSION_KEY] = session
            return await handler(request)

        return guarded

    def login_required(self, request: web.Request) -> web.StreamResponse:
        """401 for JSON and htmx requests; a redirect to the login page for a browser."""
        if wants_json(request):
            return json_response({"meta": {"error": "log in to the console first (POST /login)"}}, 401)
        if request.headers.get("HX-Request"):
            response = web.Response(status=401, text="login required")
            response.headers["HX-Redirect"] = "/login"
            return security_headers(response)
        response = web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/?=&')}")
        security_headers(response)
        return response

    def refuse_cross_site(self, request: web.Request, token: str | None, nonce: str | None) -> web.Response | None:
        """A 403 when the form comes from another site or lacks its CSRF token; None when fine."""
        if not same_origin(request):
            return self._forbidden(request, "cross-site form posts are refused")
        if not sessions.csrf_ok(self.key, nonce, token):
            return self._forbidden(request, "the form's CSRF token is missing or wrong; reload the page and try again")
        return None

    def _forbidden(self, request: web.Request, why: str) -> web.Response:
        if wants_json(request):
            return json_response({"meta": {"error": why}}, 403)
        response = web.Response(status=403, text=f"403 Forbidden: {why}", content_type="text/plain")
        security_headers(response)
        return response

    # --- the routes --------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        """GET /login: the form, with a pre-session CSRF token bound to its own cookie."""
        if self.session_of(request) is not None:
            raise web.HTTPSeeOther(safe_next(request.query.get("next")))
        return self._login_form(request, error=None, status=200)

    def _login_form(self, request: web.Request, error: str | None, status: int) -> web.Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or sessions.new_nonce()
        response = page(
            self.env, request, "login.html",
            {
                "error": error,
                "csrf": sessions.csrf_token(self.key, nonce),
                "next": safe_next(request.query.get("next")),
                "user": None,
                "insecure": request.scheme != "https" and not _loopback(request.host),
                "no_password": not self.settings.console_password.get_secret_value(),
            },
            status=status,
            json_keys=("error",),
        )
        self._set_cookie(response, LOGIN_COOKIE, nonce, max_age=3600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        """POST /login: check the form's token and the credentials, then start a session."""
        form = await request.post()
        refused = self.refuse_cross_site(request, _field(form, sessions.CSRF_FIELD), request.cookies.get(LOGIN_COOKIE))
        if refused is not None:
            return refused
        client = request.remote or "?"
        wait = self.throttle.blocked_for(client)
        if wait > 0:
            return self._login_form(request, f"too many failed logins; try again in {wait:.0f} s", 429)
        user, password = _field(form, "user") or "", _field(form, "password") or ""
        if not sessions.credentials_ok(user, password, self.settings.console_user,
                                         self.settings.console_password.get_secret_value()):
            self.throttle.failed(client)
            log.warning("console: failed login for user %r from %s", user[:50], client)
            return self._login_form(request, "wrong user name or password", 401)
        self.throttle.succeeded(client)
        token = sessions.issue_session(self.key, user, self.clock(), self.lifetime)
        response = web.HTTPSeeOther(safe_next(_field(form, "next")))
        self._set_cookie(response, SESSION_COOKIE, token, max_age=int(self.lifetime))
        response.del_cookie(LOGIN_COOKIE, path="/")
        security_headers(response)
        log.info("console: %s logged in from %s", user, client)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """POST /logout (a form with the session's CSRF token): end the session."""
        session = self.session_of(request)
        if session is None:
            raise web.HTTPSeeOther("/login")
        form = await request.post()
        refused = self.refuse_cross_site(request, _field(form, sessions.CSRF_FIELD), session.nonce)
        if refused is not None:
            return refused
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        security_headers(response)
        raise response

    @staticmethod
    def _set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict"
        )


def _field(form: object, name: str) -> str | None:
    value = form.get(name) if hasattr(form, "get") else None
    return value if isinstance(value, str) else None


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("127.0.0.1", "localhost", "[::1]") or name.startswith("127.")
