"""Liquid-style filters, as templates use them."""

import pytest

from agents.render import filters
from agents.render.email import render_email
from agents.render.errors import TemplateRenderError
from schemas.commands import RenderContext
from schemas.templates import EmailTemplate


def render(body: str, **customer: object) -> str:
    template = EmailTemplate(id="t", subject="s", body=body)
    return render_email(template, RenderContext(customer=customer)).html


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1700000000, "2023-11-14"),
        (1700000000000, "2023-11-14"),  # milliseconds
        ("1700000000", "2023-11-14"),
        ("2024-02-29T10:00:00Z", "2024-02-29"),
        ("2024-02-29", "2024-02-29"),
    ],
)
def test_date_reads_unix_seconds_milliseconds_and_iso(value, expected):
    assert filters.date(value) == expected


def test_date_formats_with_strftime_in_utc():
    assert render("{{ customer.t | date('%b %d, %Y %H:%M') }}", t=0) == "Jan 01, 1970 00:00"


def test_date_of_garbage_fails_the_message_with_the_reason():
    with pytest.raises(TemplateRenderError, match="neither Unix seconds nor an ISO"):
        render("{{ customer.t | date }}", t="next tuesday")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1234.5,), "$1,234.50"),
        ((1234.5, "EUR"), "€1,234.50"),
        ((1999, "usd", True), "$19.99"),
        ((-3, "GBP"), "-£3.00"),
        ((1500, "JPY"), "¥1,500"),
        ((2.005, "SEK"), "2.01 SEK"),
    ],
)
def test_money(args, expected):
    assert filters.money(*args) == expected


def test_currency_is_money():
    assert render("{{ customer.total | currency('EUR') }}", total="9.5") == "€9.50"


def test_case_filters():
    assert render("{{ 'hello world' | capitalize }}|{{ 'a' | upcase }}|{{ 'B' | downcase }}") == (
        "Hello world|A|b"
    )
    # Liquid capitalize keeps the rest as is (Python's would lower it).
    assert filters.capitalize("mcDonald") == "McDonald"


def test_truncate_counts_the_ellipsis_like_liquid():
    assert filters.truncate("Ground control to Major Tom.", 20) == "Ground control to..."
    assert filters.truncate("short", 20) == "short"
    assert filters.truncatewords("one two three four", 2) == "one two..."


def test_strip_html_drops_tags_scripts_and_unescapes():
    assert filters.strip_html("<p>Hi <b>Ana</b> &amp; co<script>x()</script></p>") == "Hi Ana & co"


def test_pluralize():
    assert render("{{ customer.n }} item{{ customer.n | pluralize }}", n=1) == "1 item"
    assert render("{{ customer.n }} item{{ customer.n | pluralize }}", n=3) == "3 items"
    assert filters.pluralize(2, "child", "children") == "children"


def test_url_encode():
    assert render("{{ customer.q | url_encode }}", q="a b&c") == "a+b%26c"


def test_default_covers_nil_and_empty_like_liquid():
    assert render("{{ customer.name | default('there') }}") == "there"
    assert render("{{ customer.name | default('there') }}", name=None) == "there"
    assert render("{{ customer.name | default('there') }}", name="") == "there"
    assert render("{{ customer.name | default('there') }}", name="Ana") == "Ana"


def test_undefined_variable_without_default_fails_with_its_name():
    with pytest.raises(TemplateRenderError, match="coupon"):
        render("{{ customer.coupon }}")


def test_arithmetic_filters():
    assert render("{{ 3 | plus(2) }} {{ 3 | minus(5) }} {{ 3 | times(1.5) }} {{ 7 | divided_by(2) }}") == (
        "5 -2 4.5 3"
    )
    with pytest.raises(TemplateRenderError, match="division by zero"):
        render("{{ 1 | divided_by(0) }}")


def test_newline_to_br_escapes_the_text():
    assert render("{{ customer.note | newline_to_br }}", note="a<b>\nc") == "a&lt;b&gt;<br>\nc"
