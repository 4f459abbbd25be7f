"""The local TLS pair of `nudge dev --tls`, and the server context's errors."""

from __future__ import annotations

import ssl

import pytest

from streams.cli.run import curl_lines
from streams.http.tls import dev_certificates, server_context, trust_instructions
from streams.settings import Settings, SettingsError


def test_the_local_pair_is_made_once_and_verifies_for_localhost(tmp_path):
    first = dev_certificates(tmp_path)
    made = first.cert.read_bytes()
    assert dev_certificates(tmp_path).cert.read_bytes() == made
    assert first.key.stat().st_mode & 0o077 == 0
    server = server_context(first.cert, first.key)
    client = ssl.create_default_context(cafile=str(first.ca))
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.verify_mode == ssl.CERT_REQUIRED


def test_a_key_that_does_not_match_is_a_clear_settings_error(tmp_path):
    one, other = dev_certificates(tmp_path / "a"), dev_certificates(tmp_path / "b")
    with pytest.raises(SettingsError, match="NUDGE_TLS_CERT"):
        server_context(one.cert, other.key)
    with pytest.raises(SettingsError, match="NUDGE_TLS_KEY"):
        server_context(tmp_path / "missing.pem", one.key)


def test_nudge_dev_tls_prints_how_to_trust_the_authority_and_https_curls(tmp_path):
    pair = dev_certificates(tmp_path)
    lines = trust_instructions(pair.ca)
    assert any(f"NODE_EXTRA_CA_CERTS={pair.ca}" in line for line in lines)
    assert any(f"REQUESTS_CA_BUNDLE={pair.ca}" in line for line in lines)
    curls = curl_lines(Settings(tls_cert=pair.cert, tls_key=pair.key, http_port=8443))
    assert all(f"--cacert {pair.ca}" in line and "https://localhost:8443/" in line for line in curls)
