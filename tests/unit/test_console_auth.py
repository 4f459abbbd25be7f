"""The console's login, served by the real aiohttp app: nothing without a session, forms refuse
cross-site posts, cookies are secure, `/metrics` shows counts only.

No database is needed: every refusal here happens before a page touches PostgreSQL.
"""

from __future__ import annotations

import base64
import re
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.inputs import Input
from streams.console.auth import LOGIN_COOKIE, SESSION_COOKIE, safe_next
from streams.http.server import create_app
from streams.settings import Settings

PAGES = [
    "/", "/activity", "/activity/feed?after=0", "/people", "/people/ana", "/messages",
    "/messages/m1", "/messages/m1/email", "/journeys/j1", "/campaigns", "/campaigns/welcome",
    "/campaigns/welcome/steps/1", "/segments", "/segments/vip", "/broadcasts", "/broadcasts/b1",
    "/events", "/search?q=ana",
]
USER, PASSWORD = "ops", "correct horse battery"


class Recorder:
    """A publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.inputs: list[Input] = []

    async def publish(self, inputs: list[Input]) -> None:
        self.inputs.extend(inputs)


@pytest.fixture
async def client():
    settings = Settings(
        site_id="site", api_key="key", rate_limit_per_second=0,
        console_user=USER, console_password=PASSWORD,
        # Nothing listens here: a page that reached PostgreSQL would answer 503, not 401.
        database_url="postgresql://nobody:nothing@127.0.0.1:1/none",
    )
    async with TestClient(TestServer(create_app(settings, Recorder()))) as test_client:
        yield test_client


def _cookies(response) -> dict[str, SimpleCookie]:
    jar: dict[str, SimpleCookie] = {}
    for header in response.headers.getall("Set-Cookie", []):
        cookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            jar[name] = cookie
    return jar


def _cookie_header(**values: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in values.items())}


async def _login_form(client) -> tuple[str, str]:
    response = await client.get("/login")
    assert response.status == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', await response.text()).group(1)
    nonce = _cookies(response)[LOGIN_COOKIE][LOGIN_COOKIE].value
    return token, nonce


async def _log_in(client) -> str:
    token, nonce = await _login_form(client)
    response = await client.post(
        "/login", data={"csrf_token": token, "user": USER, "password": PASSWORD, "next": "/people"},
        headers=_cookie_header(**{LOGIN_COOKIE: nonce}), allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return _cookies(response)[SESSION_COOKIE][SESSION_COOKIE].value


@pytest.mark.parametrize("path", PAGES)
async def test_a_browser_without_a_session_is_sent_to_the_login_page(client, path):
    response = await client.get(path, headers={"Accept": "text/html"}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", PAGES)
async def test_a_json_client_without_a_session_gets_401(client, path):
    response = await client.get(path, headers={"Accept": "application/json"}, allow_redirects=False)
    assert response.status == 401
    assert "log in" in (await response.json())["meta"]["error"]


async def test_htmx_polls_without_a_session_get_401_and_a_redirect_hint(client):
    response = await client.get("/activity/feed?after=0", headers={"HX-Request": "true"}, allow_redirects=False)
    assert response.status == 401
    assert response.headers["HX-Redirect"] == "/login"


async def test_the_login_page_is_served_without_a_session(client):
    response = await client.get("/login")
    assert response.status == 200
    assert '<form method="post" action="/login">' in await response.text()
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_logging_in_sets_a_secure_httponly_strict_session_cookie(client):
    token, nonce = await _login_form(client)
    response = await client.post(
        "/login", data={"csrf_token": token, "user": USER, "password": PASSWORD, "next": "/people"},
        headers=_cookie_header(**{LOGIN_COOKIE: nonce}), allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/people"
    morsel = _cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    assert SESSION_COOKIE.startswith("__Host-")
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"


async def test_a_session_opens_the_pages(client):
    session = await _log_in(client)
    response = await client.get("/people", headers=_cookie_header(**{SESSION_COOKIE: session}), allow_redirects=False)
    # Past the login: the page itself now answers (503 here, as no database is reachable).
    assert response.status == 503
    assert "cannot connect to PostgreSQL" in await response.text()


async def test_wrong_credentials_are_refused_with_the_form_again(client):
    token, nonce = await _login_form(client)
    response = await client.post(
        "/login", data={"csrf_token": token, "user": USER, "password": "guess"},
        headers=_cookie_header(**{LOGIN_COOKIE: nonce}), allow_redirects=False,
    )
    assert response.status == 401
    assert "wrong user name or password" in await response.text()
    assert SESSION_COOKIE not in _cookies(response)


async def test_repeated_failed_logins_are_throttled(client):
    token, nonce = await _login_form(client)
    statuses = []
    for _ in range(7):
        response = await client.post(
            "/login", data={"csrf_token": token, "user": USER, "password": "guess"},
            headers=_cookie_header(**{LOGIN_COOKIE: nonce}), allow_redirects=False,
        )
        statuses.append(response.status)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


async def test_a_cross_site_login_post_is_refused(client):
    token, nonce = await _login_form(client)
    response = await client.post(
        "/login", data={"csrf_token": token, "user": USER, "password": PASSWORD},
        headers={**_cookie_header(**{LOGIN_COOKIE: nonce}), "Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert SESSION_COOKIE not in _cookies(response)


async def test_a_login_post_without_its_csrf_token_is_refused(client):
    _, nonce = await _login_form(client)
    response = await client.post(
        "/login", data={"user": USER, "password": PASSWORD},
        headers=_cookie_header(**{LOGIN_COOKIE: nonce}), allow_redirects=False,
    )
    assert response.status == 403
    assert "CSRF" in await response.text()


async def test_a_cross_site_logout_post_is_refused_and_the_session_stays(client):
    session = await _log_in(client)
    response = await client.post(
        "/logout", data={"csrf_token": "forged"},
        headers={**_cookie_header(**{SESSION_COOKIE: session}), "Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert SESSION_COOKIE not in _cookies(response)


async def test_logging_out_with_the_session_token_clears_the_cookie(client):
    session = await _log_in(client)
    page = await client.get("/login?next=/", headers=_cookie_header(**{SESSION_COOKIE: session}), allow_redirects=False)
    assert page.status == 303  # logged in already: the login page sends you on
    from streams.console import sessions

    nonce = session.split(".")[2]
    token = sessions.csrf_token(sessions.session_key(Settings().secret_key, PASSWORD), nonce)
    response = await client.post(
        "/logout", data={"csrf_token": token}, headers=_cookie_header(**{SESSION_COOKIE: session}),
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert _cookies(response)[SESSION_COOKIE][SESSION_COOKIE].value == ""


async def test_the_track_api_credentials_do_not_open_the_console(client):
    basic = "Basic " + base64.b64encode(b"site:key").decode()
    response = await client.get("/people", headers={"Authorization": basic, "Accept": "application/json"})
    assert response.status == 401


async def test_metrics_count_requests_by_route_pattern_never_by_id(client):
    await client.put("/api/v1/customers/secret-person-42", json={"email": "secret@example.com"},
                     headers={"Authorization": "Basic " + base64.b64encode(b"site:key").decode()})
    await client.get("/people/secret-person-42", headers={"Accept": "application/json"})
    response = await client.get("/metrics")
    body = await response.text()
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert 'nudge_http_requests_total{method="PUT",route="/api/v1/customers/{id}",status="200"}' in body
    assert 'route="/people/{id}",status="401"' in body
    assert "secret" not in body


@pytest.mark.parametrize("target,expected", [
    ("/people/ana", "/people/ana"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), (None, "/"), ("people", "/"),
])
def test_after_login_only_local_paths_are_followed(target, expected):
    assert safe_next(target) == expected
