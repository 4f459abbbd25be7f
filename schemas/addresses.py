"""Recipient addresses, parsed strictly: exactly one RFC 5322 addr-spec, nothing else (pure).

Used at ingestion (an `email` attribute the API accepts) and at send time (an address written
before this check existed), so that a list (`a@x.test, b@y.test`), a group (`g: a@x.test;`),
a display name (`"A" <a@x.test>`), a comment or a line break can never reach an SMTP envelope
or a `To:` header, and so that suppression compares one normal form.

What is accepted: a dot-atom local part of ASCII `atext` (RFC 5322 3.2.3; quoted local parts are
refused: legal, but rare, and the way list syntax hides), `@`, and a domain of at least two
labels, given in Unicode or ASCII, converted with IDNA 2008 (UTS 46 mapping). Lengths follow
RFC 5321: local part 64 octets, domain 253, label 63, whole address 254.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna

from schemas.errors import InputError

MAX_LOCAL_BYTES = 64
MAX_DOMAIN_BYTES = 253
MAX_LABEL_BYTES = 63
MAX_ADDRESS_BYTES = 254

# RFC 5322 atext, and a dot-atom of it: no leading, trailing or doubled dot.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# Characters that only appear in the syntaxes refused here; named in the error.
_SYNTAX_HINTS = (
    (",", "a list of addresses (a comma)"),
    (";", "a group (a semicolon)"),
    ("<", "a display name or angle brackets"),
    (">", "a display name or angle brackets"),
    ('"', "a quoted string"),
    ("(", "a comment"),
    (")", "a comment"),
    (":", "a group or route (a colon)"),
)


class AddressError(InputError):
    """Not exactly one valid email address; the message says what is wrong with it."""


@dataclass(frozen=True)
class EmailAddress:
    """One parsed address: the local part, the domain as given and in IDNA ASCII form."""

    local: str
    domain: str
    ascii_domain: str

    @property
    def ascii(self) -> str:
        """The address for the SMTP envelope and headers (domain in A-labels)."""
        return f"{self.local}@{self.ascii_domain}"

    @property
    def normalized(self) -> str:
        """The form suppression and unsubscribe compare: ASCII, lower case."""
        return f"{self.local.lower()}@{self.ascii_domain}"


def _ascii_domain(domain: str) -> str:
    if not domain:
        raise AddressError("the domain after @ is empty")
    if domain.startswith("[") or domain.endswith("]"):
        raise AddressError("address literals like [192.0.2.1] are not accepted; use a domain name")
    if domain.endswith("."):
        raise AddressError("the domain ends with a dot")
    try:
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"the domain {domain[:60]!r} is not a valid (IDNA) domain name: {exc}") from exc
    if len(ascii_domain) > MAX_DOMAIN_BYTES:
        raise AddressError(f"the domain is longer than {MAX_DOMAIN_BYTES} bytes")
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise AddressError(f"the domain {domain!r} has no dot: a deliverable domain has at least two labels")
    for label in labels:
        if len(label) > MAX_LABEL_BYTES:
            raise AddressError(f"a domain label is longer than {MAX_LABEL_BYTES} bytes")
        if not _LDH_LABEL.fullmatch(label):
            raise AddressError(f"the domain label {label!r} is not letters, digits and inner hyphens")
    if labels[-1].isdigit():
        raise AddressError("the top-level domain is all digits (an IP address is not accepted)")
    return ascii_domain


def parse_email(text: object) -> EmailAddress:
    """`text` as exactly one address; raise AddressError naming the problem otherwise."""
    if not isinstance(text, str):
        raise AddressError(f"an address must be a string, got {type(text).__name__}")
    if not text:
        raise AddressError("the address is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AddressError("the address contains a control character (a line break, NUL or tab)")
    for char, syntax in _SYNTAX_HINTS:
        if char in text:
            raise AddressError(f"only one bare address is accepted, not {syntax}")
    if any(c.isspace() for c in text):
        raise AddressError("the address contains whitespace: give one bare address like ana@example.com")
    if text.count("@") != 1:
        raise AddressError("an address has exactly one @" if "@" in text else "the address has no @")
    local, domain = text.split("@")
    if not local:
        raise AddressError("the local part before @ is empty")
    if len(local.encode()) > MAX_LOCAL_BYTES:
        raise AddressError(f"the local part is longer than {MAX_LOCAL_BYTES} bytes")
    if not _DOT_ATOM.fullmatch(local):
        raise AddressError(
            "the local part must be ASCII letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots"
        )
    ascii_domain = _ascii_domain(domain)
    address = EmailAddress(local=local, domain=domain, ascii_domain=ascii_domain)
    if len(address.ascii.encode()) > MAX_ADDRESS_BYTES:
        raise AddressError(f"the address is longer than {MAX_ADDRESS_BYTES} bytes")
    return address


def normalize_email(text: object) -> str:
    """The normalized form of one valid address (see `EmailAddress.normalized`)."""
    return parse_email(text).normalized
