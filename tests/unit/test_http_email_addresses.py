"""One bare address, strictly: the parser ingestion and sending share (schemas/addresses.py)."""

from __future__ import annotations

import pytest

from schemas.addresses import AddressError, normalize_email, parse_email


@pytest.mark.parametrize(
    "address",
    ["ana@example.com", "ana.b+tag@mail.example.co.uk", "o'brien@example.ie", "x_y-z@sub-domain.example",
     "ana@bücher.de", "ANA@Example.COM", "a@" + "b" * 63 + ".example"],
)
def test_single_bare_addresses_are_accepted(address):
    assert parse_email(address).local == address.split("@")[0]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("two@x.test, attacker@evil.test", "a list of addresses"),
        ("g: a@x.test, b@y.test;", "a list of addresses"),
        ("g:a@x.test;", "a group"),
        ('"A" <attacker@evil.test>', "display name"),
        ("<a@x.test>", "angle brackets"),
        ("a@x.test (comment)", "a comment"),
        ("a @x.test", "whitespace"),
        ("a@x.test\r\nBcc: v@evil.test", "control character"),
        ("a\x00@x.test", "control character"),
        ("a@b@x.test", "exactly one @"),
        ("nobody", "no @"),
        ("@x.test", "local part before @ is empty"),
        ("a@", "domain after @ is empty"),
        ("a..b@x.test", "single dots"),
        (".a@x.test", "single dots"),
        ("a@localhost", "no dot"),
        ("a@[127.0.0.1]", "address literals"),
        ("a@1.2.3.4", "all digits"),
        ("a@-x.test", "hyphen"),
        ("a@x..test", "IDNA"),
        ("a@x.test.", "ends with a dot"),
        ("é@x.test", "ASCII letters"),
        ("a" * 65 + "@x.test", "longer than 64"),
        ("a@" + "b" * 64 + ".test", "too long"),
        ("a@" + ".".join(["b" * 60] * 5) + ".test", "too long"),
        ("", "empty"),
    ],
)
def test_anything_else_is_refused_with_the_reason(address, reason):
    with pytest.raises(AddressError, match=reason):
        parse_email(address)


def test_a_non_string_is_refused():
    with pytest.raises(AddressError, match="must be a string"):
        parse_email(["a@x.test"])


def test_the_normal_form_is_ascii_and_lower_case():
    assert normalize_email("Ana.B@Bücher.DE") == "ana.b@xn--bcher-kva.de"
    assert parse_email("Ana@Bücher.de").ascii == "Ana@xn--bcher-kva.de"
