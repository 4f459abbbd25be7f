"""The attacks that hold, kept holding: recipients smuggled into `email`, tampered links,
template injection, header injection. Against the real aiohttp app in-process (inputs are
recorded instead of published; PostgreSQL is unreachable, which no refusal needs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from security_keys import CREDENTIALS, SECRET

from agents.render.email import render_email
from agents.render.errors import TemplateRenderError
from agents.sender.links import message_links, sign
from schemas.commands import RenderContext
from schemas.templates import EmailTemplate
from streams.http.server import api_operations, operations_app
from streams.settings import DEV_SECRET_KEY

SMUGGLED = [
    "two-rcpt@x.test, attacker@evil.test",
    "undisclosed: a@x.test, attacker@evil.test;",
    '"Ana" <attacker@evil.test>',
    "Ana <attacker@evil.test>",
    "suppressed@x.test,other@x.test",
    "a@x.test\r\nBcc: attacker@evil.test",
    "a@x.test\nBcc: attacker@evil.test",
]


class Recorder:
    def __init__(self) -> None:
        self.inputs: list[Any] = []

    async def publish(self, inputs: list[Any]) -> None:
        self.inputs.extend(inputs)


@pytest.fixture
async def api(settings):
    recorder = Recorder()
    async with TestClient(TestServer(operations_app(api_operations(settings, recorder), settings))) as client:
        client.recorder = recorder  # type: ignore[attr-defined]
        yield client


def ingestion_requests(email: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """Every way an `email` attribute enters Nudge: (method, path, body, credential)."""
    person = {"type": "person", "identifiers": {"id": "ana"}, "action": "identify", "attributes": {"email": email}}
    return [
        ("PUT", "/api/v1/customers/ana", {"email": email}, "track"),
        ("POST", "/api/v2/entity", person, "track"),
        ("POST", "/api/v2/batch", {"batch": [person]}, "track"),
        ("POST", "/v1/identify", {"userId": "ana", "traits": {"email": email}}, "segment"),
        ("POST", "/v1/identify", {"userId": "ana", "context": {"traits": {"email": email}}}, "segment"),
        ("POST", "/v1/i", {"userId": "ana", "traits": {"email": email}}, "browser"),
        ("POST", "/v1/batch", {"batch": [{"type": "identify", "userId": "ana", "traits": {"email": email}}]}, "segment"),
        ("POST", "/v1/send/email", {"identifiers": {"id": "ana"}, "to": email, "subject": "s", "body": "b"}, "send"),
        ("POST", "/v1/send/email", {"identifiers": {"email": email}, "subject": "s", "body": "b"}, "send"),
    ]


@pytest.mark.parametrize("email", SMUGGLED)
async def test_an_email_that_is_not_one_bare_address_is_refused_on_every_route(api, email):
    for method, path, body, credential in ingestion_requests(email):
        response = await api.request(method, path, json=body, headers={"Authorization": CREDENTIALS[credential]})
        answer = await response.json()
        assert response.status == 400, (path, answer)
        assert "email" in str(answer) or "`to`" in str(answer), (path, answer)
    assert api.recorder.inputs == []


@pytest.mark.parametrize("address", SMUGGLED[:5])
async def test_the_suppression_list_takes_only_one_address(api, address):
    response = await api.put(f"/api/v1/suppressions/{quote(address, safe='')}", json={},
                             headers={"Authorization": CREDENTIALS["send"]})
    assert response.status == 400


async def test_a_bare_address_is_accepted(api):
    response = await api.put("/api/v1/customers/ana", json={"email": "ana@example.com"},
                             headers={"Authorization": CREDENTIALS["track"]})
    assert response.status == 200 and api.recorder.inputs[0].attributes == {"email": "ana@example.com"}


# --- links ---------------------------------------------------------------------------------


def links(secret: str = SECRET, person: str = "ana"):
    return message_links("http://nudge.test", secret, "m1", person)


def path(url: str) -> str:
    return url.removeprefix("http://nudge.test")


def tampered(token: str) -> list[str]:
    payload, _, signature = token.partition(".")
    return [
        payload,                                      # no signature
        f"{payload}.{signature[:-2]}AA",              # altered signature
        f"{payload[:-3]}abc.{signature}",             # altered payload
        f"{payload}.{signature}x",                    # extended
        sign(DEV_SECRET_KEY, "unsubscribe", "m1", "ana"),   # the documented development key
        sign(SECRET, "open", "m1", "ana"),            # a token of another kind
        sign("another-deployments-secret-0123456789", "unsubscribe", "m1", "ana"),
    ]


async def test_a_tampered_or_forged_unsubscribe_link_is_refused_and_changes_nothing(api):
    token = path(links().unsubscribe).removeprefix("/unsubscribe/")
    for bad in tampered(token):
        for method in ("GET", "POST"):
            response = await api.request(method, f"/unsubscribe/{bad}")
            assert response.status == 403, (method, bad)
    assert api.recorder.inputs == []


async def test_a_click_link_redirects_only_to_its_signed_url(api):
    good = links().click("https://shop.example/offer")
    token = good.split("/c/")[1].split("?")[0]
    for url in ("https://evil.example/", "https://shop.example/offer/../../evil", "javascript:alert(1)", ""):
        response = await api.get(f"/c/{token}?u={quote(url, safe='')}", allow_redirects=False)
        assert response.status == 403 and "Location" not in response.headers, url
    forged = sign(DEV_SECRET_KEY, "click", "m1", "ana", "https://evil.example/")
    response = await api.get(f"/c/{forged}?u={quote('https://evil.example/', safe='')}", allow_redirects=False)
    assert response.status == 403 and "Location" not in response.headers
    assert api.recorder.inputs == []


async def test_a_tampered_open_pixel_records_nothing(api):
    token = path(links().open_pixel).removeprefix("/o/").removesuffix(".gif")
    for bad in tampered(token)[:4]:
        response = await api.get(f"/o/{bad}.gif")
        assert response.status == 200 and response.content_type == "image/gif"
    assert api.recorder.inputs == []


# --- templates and headers -----------------------------------------------------------------

TEMPLATE = EmailTemplate(id="t", subject="Hi {{ customer.first_name }}", body="<p>{{ customer.first_name }}</p>")


@pytest.mark.parametrize(
    "value",
    ["{{ 7*7 }}", "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
     "{{ config }}", "<script>alert(1)</script>"],
)
def test_attribute_values_are_rendered_as_text_never_as_template_code(value):
    rendered = render_email(TEMPLATE, RenderContext(customer={"first_name": value}))
    assert rendered.subject == f"Hi {value}"  # literally: the value is data, never evaluated
    assert "<script>" not in rendered.html


def test_a_template_cannot_reach_python_internals():
    hostile = EmailTemplate(id="t", subject="x", body="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateRenderError):
        render_email(hostile, RenderContext())


@pytest.mark.parametrize("field", ["subject", "from", "reply_to"])
async def test_a_line_break_in_a_transactional_header_is_refused(api, field):
    body = {"identifiers": {"id": "ana"}, "to": "ana@example.com", "subject": "s", "body": "b",
            field: "x@x.test\r\nBcc: attacker@evil.test"}
    response = await api.post("/v1/send/email", json=body, headers={"Authorization": CREDENTIALS["send"]})
    assert response.status == 400 and "one line" in (await response.json())["meta"]["error"]
