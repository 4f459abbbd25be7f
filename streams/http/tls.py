"""TLS for the API: the server context from NUDGE_TLS_CERT / NUDGE_TLS_KEY, and a local pair.

`nudge dev --tls` makes a small local certificate authority and a server certificate for
`localhost`, `127.0.0.1` and `::1` signed by it, kept in the stack folder; a client trusts the
authority's certificate (`ca.pem`), never a key. Official clients then need only their
host/port (or region URL) changed to `https://localhost:<port>`.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from streams.settings import SettingsError

# Long enough for a development machine, short enough to be renewed by a fresh `nudge dev`.
DEV_VALIDITY = datetime.timedelta(days=365)
DEV_NAMES = ("localhost",)
DEV_ADDRESSES = ("127.0.0.1", "::1")


def server_context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the PEM `cert` chain and `key`; a clear error if unusable."""
    if cert is None or key is None:
        raise SettingsError("NUDGE_TLS_CERT and NUDGE_TLS_KEY must be set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"cannot load NUDGE_TLS_CERT={cert} / NUDGE_TLS_KEY={key}: {exc} "
            "(both must be PEM files; the key must match the certificate)"
        ) from exc
    return context


@dataclass(frozen=True)
class DevCertificates:
    """The files of a local pair: trust `ca`; serve `cert` with `key`."""

    ca: Path
    cert: Path
    key: Path


def dev_certificates(folder: Path, now: datetime.datetime | None = None) -> DevCertificates:
    """The local CA and server pair in `folder`, made on first use (and again once expired)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = DevCertificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    now = now or datetime.datetime.now(datetime.UTC)
    if files.cert.exists() and files.key.exists() and files.ca.exists():
        existing = x509.load_pem_x509_certificate(files.cert.read_bytes())
        if existing.not_valid_after_utc - now > datetime.timedelta(days=7):
            return files
    folder.mkdir(parents=True, exist_ok=True)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nudge local development CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + DEV_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in DEV_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in DEV_ADDRESSES]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + DEV_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.cert.write_bytes(server_cert.public_bytes(pem))
    files.key.touch(mode=0o600)
    files.key.write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return files


def trust_instructions(ca: Path) -> list[str]:
    """How to make the usual clients trust the local CA, one line each."""
    return [
        f"Node (customerio-node, analytics-node, rudder-sdk-node): NODE_EXTRA_CA_CERTS={ca}",
        f"Python (customerio, requests): REQUESTS_CA_BUNDLE={ca}   (httpx/ssl: SSL_CERT_FILE={ca})",
        f"curl: --cacert {ca}",
        f"the whole machine (Debian): cp {ca} /usr/local/share/ca-certificates/nudge-dev.crt"
        " && update-ca-certificates",
        "browsers: import it as an authority in the browser's certificate settings",
    ]
