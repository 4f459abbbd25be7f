"""The fast MIME builder: every message it builds is parsed back by the standard library.

Each case checks what a mail client would read (headers decoded, addresses, both parts'
text) against what was put in, plus the wire rules: 7-bit, CRLF only, lines within limits,
no parser defects.
"""

from __future__ import annotations

import email
import email.policy
import random
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest

from agents.render.mime import HeaderValueError, OutgoingEmail, build_email, encode_header

BASE = dict(
    subject="Welcome",
    text="Hi Ana",
    html="<p>Hi Ana</p>",
    to="ana@example.com",
    message_id="abc123",
    mail_from="Nudge <hello@example.com>",
    domain="example.com",
    date=1_700_000_000.0,
    unsubscribe_url="https://n.example.com/unsubscribe/abc123",
    unsubscribe_mailto="mailto:unsubscribe@example.com?subject=unsubscribe%20abc123",
)


def build(**overrides: object) -> OutgoingEmail:
    return build_email(**{**BASE, **overrides})  # type: ignore[arg-type]


def parse(built: OutgoingEmail) -> EmailMessage:
    message = email.message_from_bytes(built.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def mailbox(message: EmailMessage, header: str) -> tuple[str, str]:
    """(display name, address) of a one-address header, as RFC 2047 defines the name.

    The address comes from the default policy's parser. A name sent as encoded words is read
    with `email.header`, the standard library's RFC 2047 decoder: the default policy's phrase
    parser keeps the folding space between adjacent encoded words, which RFC 2047 section 6.2
    says to drop (it misreads the standard library's own output the same way).
    """
    [address] = message[header].addresses
    raw = dict(message.raw_items())[header]
    if "=?" not in raw:
        return address.display_name, address.addr_spec
    decoded = str(make_header(decode_header(raw)))
    suffix = f" <{address.addr_spec}>"
    assert decoded.endswith(suffix)
    return decoded[: -len(suffix)], address.addr_spec


def lines_of(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def check_wire(data: bytes) -> None:
    """7-bit, CRLF line ends only, every line within 998 bytes, folded headers within 78."""
    assert data.isascii()
    lines = lines_of(data)
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    assert all(len(line) <= 998 for line in lines)
    header = lines[: lines.index(b"")]
    for line in header:
        # Longer only when the line is one unbreakable token after the name or the fold.
        if len(line) > 78:
            assert b" " not in line.strip().split(b": ", 1)[-1], line


def check_round_trip(subject: str, text: str, html: str, mail_from: str, **extra: object) -> EmailMessage:
    built = build(subject=subject, text=text, html=html, mail_from=mail_from, **extra)
    check_wire(built.data)
    message = parse(built)
    assert not message.defects
    assert str(message["Subject"]) == subject
    body = {part.get_content_type(): part for part in message.iter_parts()}
    assert list(body) == ["text/plain", "text/html"]
    for part in body.values():
        assert not part.defects
    # Text travels in canonical form, CRLF line breaks (RFC 2045 6.8), whatever it held.
    normal = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert normal(body["text/plain"].get_content()) == normal(text or " ")
    assert normal(body["text/html"].get_content()) == normal(html)
    return message


# --- headers -------------------------------------------------------------------------------

SUBJECTS = [
    "Welcome",
    "Olá João, a sua encomenda chegou — obrigado!",
    "ようこそ、アナさん。ご注文ありがとうございます。発送は明日になります。" * 3,
    "🎉 Party time 👩‍👩‍👧‍👦 with family emoji and flags 🇵🇹🇯🇵",
    "A long ASCII subject " + "that keeps going and going " * 12,
    "x" * 1200,
    "Looks like an encoded word =?utf-8?q?hello?= but is not",
    "  leading and trailing spaces  ",
    "double  spaces  inside",
    "Tab\there",
    "Control \x1b[31m characters \x7f",
    "Quotes \"and\" back\\slashes",
    "e\u0301 combining accent",
    "",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subjects_read_back_exactly(subject: str):
    check_round_trip(subject, "text", "<p>html</p>", BASE["mail_from"])


NAMES = [
    "Nudge",
    "Ana Lima",
    "Lima, Ana",
    'The "Best" Shop',
    "Back\\slash",
    "José Ñúñez",
    "山田 太郎",
    "Жанна Ивановна Петрова-Водкина из очень длинного названия компании",
    "Team (support) <loud>",
    "🎁 Gifts",
]


@pytest.mark.parametrize("name", NAMES)
def test_display_names_read_back_exactly(name: str):
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    message = check_round_trip("Hi", "t", "<p>h</p>", f'"{quoted}" <team@shop.example>')
    assert mailbox(message, "From") == (name, "team@shop.example")


def test_bare_sender_address_has_no_display_name():
    message = check_round_trip("Hi", "t", "<p>h</p>", "team@shop.example")
    assert mailbox(message, "From") == ("", "team@shop.example")


def test_reply_to_reads_back():
    message = check_round_trip("Hi", "t", "h", BASE["mail_from"], reply_to="Ajuda Ção <help@shop.example>")
    assert mailbox(message, "Reply-To") == ("Ajuda Ção", "help@shop.example")


def test_recipient_sender_and_message_id():
    built = build()
    message = parse(built)
    assert (built.sender, built.recipient) == ("hello@example.com", "ana@example.com")
    assert message["To"].addresses[0].addr_spec == "ana@example.com"
    assert message["Message-ID"] == "<abc123@example.com>"
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime.timestamp() == BASE["date"]


def test_list_unsubscribe_mailto_first_then_https_and_one_click():
    message = parse(build())
    assert message["List-Unsubscribe"] == (
        "<mailto:unsubscribe@example.com?subject=unsubscribe%20abc123>, "
        "<https://n.example.com/unsubscribe/abc123>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_link_stays_one_unbroken_token():
    url = "https://n.example.com/u/" + "t" * 400
    built = build(unsubscribe_url=url)
    check_wire(built.data)
    assert parse(built)["List-Unsubscribe"].endswith(f"<{url}>")


def test_no_list_unsubscribe_without_a_url():
    message = parse(build(unsubscribe_url=None))
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None


def test_idna_domain_is_sent_in_ascii():
    built = build(to="ana@bücher.example")
    assert built.recipient == "ana@xn--bcher-kva.example"
    assert parse(built)["To"].addresses[0].addr_spec == "ana@xn--bcher-kva.example"


def test_same_input_same_bytes():
    assert build().data == build().data


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("subject", "Hi\r\nBcc: victim@x.test"),
    ("subject", "Hi\nX: y"),
    ("subject", "Hi\rX"),
    ("mail_from", "Evil\r\nBcc: x@ex.com <a@ex.com>"),
    ("to", "ana@example.com\r\nBcc: x@ex.com"),
    ("reply_to", "help@x.test\nBcc: v@x.test"),
    ("unsubscribe_url", "https://x.test/u\r\nBcc: v@x.test"),
])
def test_line_breaks_in_any_header_value_are_refused(field: str, value: str):
    with pytest.raises(HeaderValueError, match="line break"):
        build(**{field: value})


@pytest.mark.parametrize("to", [
    "a@x.test, b@evil.test", "Ana <a@x.test>", "group: a@x.test;", "no-at-sign", "a b@x.test",
])
def test_a_recipient_that_is_not_one_bare_address_is_refused(to: str):
    with pytest.raises(HeaderValueError, match="To"):
        build(to=to)


def test_a_sender_list_is_refused():
    with pytest.raises(HeaderValueError, match="From"):
        build(mail_from="a@x.test, b@x.test")


def test_non_ascii_local_part_is_refused():
    with pytest.raises(HeaderValueError, match="non-ASCII local part"):
        build(to="joão@example.com")


def test_unsafe_message_id_is_refused():
    with pytest.raises(HeaderValueError, match="message id"):
        build(message_id="a>b@evil")


def test_a_single_header_token_past_the_line_limit_is_refused():
    with pytest.raises(HeaderValueError, match="998"):
        build(unsubscribe_url="https://x.test/" + "t" * 1000)


# --- bodies --------------------------------------------------------------------------------

BODIES = [
    "plain ascii",
    "a line of " + "x" * 5000 + " that is far too long for SMTP",
    "Olá João\nçãõ\n",
    "日本語のテキスト。" * 200,
    ".starts with a dot\n..two dots\n.\nalone",
    "From the start of a line\nFrom here",
    "trailing spaces   \ntrailing tab\t\nend ",
    "windows\r\nline\r\nends\rold mac",
    "equals = signs =3D and =?utf-8?b?eA==?=",
    "--=_looks like a boundary\n--=_abc--",
    "\n\nblank lines first and last\n\n",
    "emoji 🎉 " * 300,
]


@pytest.mark.parametrize("body", BODIES)
def test_bodies_read_back_exactly_in_both_parts(body: str):
    check_round_trip("s", body, f"<html><body>{body}</body></html>", BASE["mail_from"])


def test_ascii_body_is_quoted_printable_and_cjk_heavy_body_is_base64():
    ascii_parts = parse(build(text="hello", html="<p>hello</p>")).iter_parts()
    assert {p["Content-Transfer-Encoding"] for p in ascii_parts} == {"quoted-printable"}
    cjk = "日本語のテキスト。" * 50
    cjk_parts = parse(build(text=cjk, html=cjk)).iter_parts()
    assert {p["Content-Transfer-Encoding"] for p in cjk_parts} == {"base64"}


def test_empty_text_part_is_sent_as_one_space():
    message = parse(build(text=""))
    assert message.get_body(("plain",)).get_content() == " "


# --- generated cases -----------------------------------------------------------------------

_POOL = (
    "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789" + " " * 12 + ".,;:!?'\"()<>@[]\\=_-+/*#%&"
    + "áéíóúçãõñüßøæ" + "ЖжДд" + "日本語中文한국어" + "🎉👍🏽❤️" + "\u0301\u200d" + "\t"
)


def _random_text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_POOL) for _ in range(rng.randint(0, longest)))


def test_generated_messages_read_back_exactly():
    rng = random.Random(1313)
    for _ in range(300):
        subject = _random_text(rng, 160)
        name = _random_text(rng, 60).replace("\\", "").replace('"', "")
        text = "\n".join(_random_text(rng, 200) for _ in range(rng.randint(0, 6)))
        html = "<p>" + _random_text(rng, 1500) + "</p>"
        mail_from = f'"{name}" <sender@shop.example>' if name.strip() else "sender@shop.example"
        message = check_round_trip(subject, text, html, mail_from)
        assert mailbox(message, "From") == (name if name.strip() else "", "sender@shop.example")


def test_encode_header_folds_long_ascii_at_spaces_only():
    words = [f"word{i:02d}" for i in range(40)]
    folded = encode_header("Subject", " ".join(words))
    lines = folded[:-2].split("\r\n")
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines)
    assert "".join(lines) == "Subject: " + " ".join(words)
