"""Compliance headers and header injection through attribute values."""

import email
import email.policy

import pytest

from agents.render.email import render_email
from agents.render.mime import HeaderValueError, build_email
from schemas.commands import RenderContext
from schemas.templates import EmailTemplate


def build(template: EmailTemplate, customer: dict, **options):
    rendered = render_email(template, RenderContext(customer=customer))
    options.setdefault("unsubscribe_url", None)
    built = build_email(
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        to=options.pop("to", "ana@example.com"), message_id="m1",
        mail_from="Nudge <n@nudge.test>", domain="nudge.test", **options,
    )
    return email.message_from_bytes(built.data, policy=email.policy.default)


def test_list_unsubscribe_has_mailto_and_https_and_one_click():
    msg = build(
        EmailTemplate(id="t", subject="Hi", body="<p>x</p>"), {},
        unsubscribe_url="https://n.test/unsubscribe/TOK",
        unsubscribe_mailto="mailto:unsubscribe@nudge.test?subject=unsubscribe%20TOK",
    )
    assert msg["List-Unsubscribe"] == (
        "<mailto:unsubscribe@nudge.test?subject=unsubscribe%20TOK>, <https://n.test/unsubscribe/TOK>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("value", ["Ana\r\nBcc: victim@x.test", "Ana\nBcc: v@x.test", "Ana\rX: y"])
def test_line_breaks_in_an_attribute_never_reach_the_subject_headers(value):
    msg = build(EmailTemplate(id="t", subject="Hi {{ customer.name }}", body="<p>x</p>"),
                {"name": value})
    # The renderer folds the subject to one line, so the text stays in the Subject only.
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Bcc"] is None and msg["X"] is None


def test_line_breaks_in_the_email_attribute_are_refused():
    # The recipient comes from the person's `email` attribute.
    with pytest.raises(HeaderValueError):
        build(EmailTemplate(id="t", subject="Hi", body="<p>x</p>"), {},
              to="ana@example.com\r\nBcc: victim@x.test")
