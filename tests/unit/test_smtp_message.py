"""Building the message: deterministic Message-ID, RFC 8058 headers, no header injection;
classifying the relay's replies."""

import email
import email.policy

import aiosmtplib
import pytest

from agents.render.mime import HeaderValueError, build_email, message_domain
from agents.sender.smtp import PermanentDeliveryError, TransientDeliveryError, classify
from schemas.templates import RenderedEmail

RENDERED = RenderedEmail(subject="Welcome", html="<p>Hi</p>", text="Hi")


def build(rendered: RenderedEmail = RENDERED, **overrides: object):
    args: dict = dict(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        to="ana@example.com",
        message_id="abc123",
        mail_from=rendered.from_address or "Nudge <hello@example.com>",
        reply_to=rendered.reply_to,
        domain="example.com",
        unsubscribe_url="https://n.example.com/unsubscribe/abc123",
    )
    args.update(overrides)
    built = build_email(**args)
    return email.message_from_bytes(built.data, policy=email.policy.default)


def test_message_id_is_derived_from_the_message_id_and_domain():
    assert build()["Message-ID"] == "<abc123@example.com>"
    assert build()["Message-ID"] == build()["Message-ID"]


def test_list_unsubscribe_headers_are_set_when_a_url_is_given():
    msg = build()
    assert msg["List-Unsubscribe"] == "<https://n.example.com/unsubscribe/abc123>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_no_list_unsubscribe_without_a_url():
    msg = build(unsubscribe_url=None)
    assert msg["List-Unsubscribe"] is None
    assert msg["List-Unsubscribe-Post"] is None


def test_message_is_multipart_alternative_with_text_and_html():
    msg = build()
    assert msg.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in msg.iter_parts()}
    assert parts["text/plain"].strip() == "Hi"
    assert parts["text/html"].strip() == "<p>Hi</p>"


def test_template_from_and_reply_to_override_the_default_sender():
    rendered = RENDERED.model_copy(
        update={"from_address": "Team <team@ex.com>", "reply_to": "help@ex.com"}
    )
    msg = build(rendered)
    assert msg["From"] == "Team <team@ex.com>"
    assert msg["Reply-To"] == "help@ex.com"


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: victim@ex.com", "Hi\nX: y", "Hi\rX"])
def test_line_breaks_in_the_subject_are_refused(subject: str):
    with pytest.raises(HeaderValueError, match="Subject"):
        build(RENDERED.model_copy(update={"subject": subject}))


def test_line_breaks_in_the_sender_name_are_refused():
    rendered = RENDERED.model_copy(update={"from_address": "Evil\r\nBcc: x@ex.com <a@ex.com>"})
    with pytest.raises(HeaderValueError, match="From"):
        build(rendered)


def test_line_breaks_in_the_recipient_are_refused():
    with pytest.raises(HeaderValueError, match="To"):
        build(to="ana@example.com\r\nBcc: x@ex.com")


def test_message_id_with_unsafe_characters_is_refused():
    with pytest.raises(HeaderValueError, match="message id"):
        build(message_id="a>b@evil")


def test_message_domain_comes_from_the_from_address():
    assert message_domain("Nudge <nudge@mail.example.com>") == "mail.example.com"
    assert message_domain("nobody") == "localhost"


def test_4xx_replies_and_disconnects_are_transient_5xx_permanent():
    assert isinstance(classify(aiosmtplib.SMTPDataError(451, "later")), TransientDeliveryError)
    assert isinstance(classify(aiosmtplib.SMTPServerDisconnected("gone")), TransientDeliveryError)
    assert isinstance(classify(ConnectionRefusedError()), TransientDeliveryError)
    permanent = classify(
        aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@ex.com")]
        )
    )
    assert isinstance(permanent, PermanentDeliveryError)
    assert (permanent.code, permanent.message) == (550, "no such user")
