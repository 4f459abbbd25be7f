"""STARTTLS, implicit TLS and AUTH against real aiosmtpd servers with a self-signed certificate."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from agents.render.mime import OutgoingEmail, build_email
from agents.sender.smtp import SmtpSender, TransientDeliveryError
from streams.settings import SmtpRelay

# The implicit-TLS test server requires AUTH on a connection aiosmtpd cannot see is TLS.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]


class Recorder:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content)
        self.tls.append(session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None)
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"nudge", b"s3cret")
    # handled=False: let aiosmtpd answer 535 itself on failure.
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _message() -> OutgoingEmail:
    return build_email(
        subject="TLS", text="hello", html="<p>hello</p>", to="ana@example.com",
        message_id="tls1", mail_from="n@nudge.test", domain="nudge.test",
    )


@pytest.fixture
def starttls_server(certificate) -> Iterator[tuple[Recorder, int]]:
    handler, port = Recorder(), _port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=_server_context(certificate),
        require_starttls=True, authenticator=_authenticator, auth_required=True,
    )
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def implicit_tls_server(certificate) -> Iterator[tuple[Recorder, int]]:
    handler, port = Recorder(), _port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate),
        # aiosmtpd only knows STARTTLS sessions as TLS; this whole connection is TLS already.
        authenticator=_authenticator, auth_required=True, auth_require_tls=False,
    )
    controller.start()
    yield handler, port
    controller.stop()


async def _send(url: str) -> str:
    sender = SmtpSender(SmtpRelay.from_url(url), timeout=5)
    try:
        return await sender.send(_message())
    finally:
        await sender.close()


async def test_starttls_with_auth_delivers_over_tls(starttls_server):
    handler, port = starttls_server
    await _send(f"smtp://nudge:s3cret@127.0.0.1:{port}?starttls=true&verify=false")
    assert handler.tls == [True]


async def test_implicit_tls_with_auth_delivers(implicit_tls_server):
    handler, port = implicit_tls_server
    await _send(f"smtps://nudge:s3cret@127.0.0.1:{port}?verify=false")
    assert handler.tls == [True]


async def test_self_signed_certificate_is_refused_when_verifying(implicit_tls_server):
    handler, port = implicit_tls_server
    with pytest.raises(TransientDeliveryError):
        await _send(f"smtps://nudge:s3cret@127.0.0.1:{port}")
    assert handler.received == []


async def test_wrong_password_is_a_transient_configuration_error(starttls_server):
    handler, port = starttls_server
    with pytest.raises(TransientDeliveryError, match="authentication failed"):
        await _send(f"smtp://nudge:wrong@127.0.0.1:{port}?starttls=true&verify=false")
    assert handler.received == []


async def test_plain_smtp_to_a_starttls_only_server_sends_nothing(starttls_server):
    handler, port = starttls_server
    with pytest.raises(TransientDeliveryError):
        await _send(f"smtp://nudge:s3cret@127.0.0.1:{port}")
    assert handler.received == []
