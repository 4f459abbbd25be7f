"""Liquid syntax in templates: Customer.io's documented examples render unchanged, in the sandbox.

The examples are copied from Customer.io's Liquid documentation ("Personalize messages with
liquid" and the Liquid tag list); the expected output is the one the documentation gives.
"""

from __future__ import annotations

import pytest

from agents.render.email import RenderLimits, render_email
from agents.render.errors import TemplateRenderError
from agents.render.filters import rendering_at
from agents.render.liquid import liquid_to_jinja
from schemas.commands import RenderContext
from schemas.templates import EmailTemplate


def subject(source: str, customer: dict | None = None, event: dict | None = None) -> str:
    """Render `source` as a subject line (no HTML escaping), as one message would."""
    template = EmailTemplate(id="t", subject=source, body="<p>x</p>")
    context = RenderContext(customer=customer or {}, event=event or {})
    return render_email(template, context).subject


def body(source: str, customer: dict | None = None, event: dict | None = None, **kwargs) -> str:
    template = EmailTemplate(id="t", subject="s", body=source)
    return render_email(template, RenderContext(customer=customer or {}, event=event or {}), **kwargs).html


# --- Customer.io's documented examples ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{{ "What\'s all the hubbub, " | append: "bub?" }}', "What's all the hubbub, bub?"),
        ('{{ "I knew I shoulda taken that left turn." | truncate: 20 }}', "I knew I shoulda ..."),
        ('{{ "Customer.io" | slice: 3, 3 }}', "tom"),
        ("{{ \"Customer.io\" | slice: '-4', 3 }}", "r.i"),
        ("{{ 4.32 | round: 1 }}", "4.3"),
        ("{{ 41 | at_least: 42 }}", "42"),
        ("{{ 10000 | format_number }}", "10,000"),
        ("{{ 1234567.896 | currency }}", "$1,234,567.90"),
        ("{{ 1234567.896 | currency: 'en-GB' }}", "£1,234,567.90"),
        ("{{ 1234567.896 | currency: 'en', 'EUR' }}", "€1,234,567.90"),
        ("{{ 1234567.896 | rounded_currency: 'en', 'EUR' }}", "€1,234,568"),
        ("{{ 1483272000 | date: '%H:%M, %a, %b %d, %Y' }}", "12:00, Sun, Jan 01, 2017"),
        ('{{ "cool.person@example.com" | url_encode }}', "cool.person%40example.com"),
        ('{{ "%27Customer.io+is+great%27" | url_decode }}', "'Customer.io is great'"),
        ('{{ "Eh, what\'s <i>up</i>?" | strip_html }}', "Eh, what's up?"),
        ("{{ 'hal 9000' | upcase }}", "HAL 9000"),
        ("{{ 2 | times: 2 | minus: 1 }}", "3"),
        ('{{ "Hello, " | append: "Dave" }}', "Hello, Dave"),
        ('{{ "coyote,bugs,tweety" | split: "," | join: ", " }}', "coyote, bugs, tweety"),
        ("{{ 4 | plus: 2 }}", "6"),
    ],
)
def test_customer_io_filter_examples_render_as_documented(source: str, expected: str) -> None:
    assert subject(source) == expected


def test_the_fallback_with_default_names_the_person_or_says_there() -> None:
    source = 'Hi {{customer.first_name | default: "there"}},'
    assert subject(source, {"first_name": "Ana"}) == "Hi Ana,"
    assert subject(source, {}) == "Hi there,"


def test_the_legacy_fallback_with_blank_works_for_a_missing_attribute() -> None:
    source = "{% if customer.first_name != blank %}{{customer.first_name}}{% else %}there{% endif %}"
    assert subject(source, {"first_name": "Ana"}) == "Ana"
    assert subject(source, {}) == "there"
    assert subject(source, {"first_name": ""}) == "there"


def test_an_if_on_a_missing_attribute_is_false_instead_of_failing() -> None:
    source = "{% if customer.first_name %}Hi {{ customer.first_name }}{% else %}Hi there{% endif %}"
    assert subject(source, {}) == "Hi there"


def test_printing_a_missing_attribute_still_fails_the_message() -> None:
    with pytest.raises(TemplateRenderError, match="first_name"):
        subject("Hi {{ customer.first_name }}", {})


def test_conditionals_with_elsif_unless_and_case() -> None:
    chain = (
        '{% if customer.lastEventType == "sports" %}game{% elsif customer.lastEventType == "theater" %}'
        "play{% else %}other{% endif %}"
    )
    assert [subject(chain, {"lastEventType": t}) for t in ("sports", "theater", "opera")] == [
        "game", "play", "other",
    ]
    unless = '{% unless customer.beans == "cool beans" %}The beans are not cool.{% endunless %}'
    assert subject(unless, {"beans": "warm beans"}) == "The beans are not cool."
    case = (
        '{% case customer.plan %}{% when "value1" %}one{% when "value2" or "value3" %}two or three'
        "{% else %}neither{% endcase %}"
    )
    assert [subject(case, {"plan": p}) for p in ("value1", "value3", "x")] == ["one", "two or three", "neither"]


def test_loops_with_ranges_break_and_forloop() -> None:
    assert subject("{% for i in (1..5) %}{% if i == 4 %}{% break %}{% else %}{{ i }}{% endif %}{% endfor %}") == "123"
    items = {"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    loop = "{% for item in event.items reversed limit: 2 %}{{ forloop.index }}{{ item.name }}{% endfor %}"
    assert subject(loop, event=items) == "1b2a"


def test_assign_capture_comment_and_raw() -> None:
    source = (
        "{% assign favorite_food = 'apples' %}{% capture about_me %}I like {{ favorite_food }}."
        "{% endcapture %}{% comment %}Don't display me!{% endcomment %}{{ about_me }} "
        "{% raw %}{{This}} is displayed exactly as typed.{% endraw %}"
    )
    assert subject(source) == "I like apples. {{This}} is displayed exactly as typed."


def test_whitespace_control_strips_around_a_tag() -> None:
    assert subject("Hello, {{ customer.name -}} !", {"name": "Charlie"}) == "Hello, Charlie!"


def test_customer_io_version_detection_idiom_reads_latest() -> None:
    source = (
        '{% assign liquid_version = nil | default: "latest" %}{% unless liquid_version == "latest" %}'
        '{% assign liquid_version = "legacy" %}{% endunless %}{{ liquid_version }}'
    )
    assert subject(source) == "latest"


def test_string_attributes_become_numbers_with_plus_zero() -> None:
    source = "{% assign spend = customer.lifetime_value | plus: 0 %}{% if spend > 500 %}early access{% endif %}"
    assert subject(source, {"lifetime_value": "750"}) == "early access"


def test_days_remaining_from_now() -> None:
    source = (
        "{% assign current_date = 'now' | date: '%s' %}{% assign future_date = customer.trial_end %}"
        "{{ future_date | minus: current_date | divided_by: 86400 }}"
    )
    with rendering_at(1_700_000_000):
        assert subject(source, {"trial_end": 1_700_000_000 + 3 * 86400 + 5}) == "3"


def test_date_in_the_persons_timezone_and_day_offsets() -> None:
    customer = {"appointment_time": 1483272000, "timezone": "America/New_York", "expiration": 1596153600}
    assert subject('{{ customer.appointment_time | date: "%H:%M %A %b %d, %Y", customer.timezone }}', customer) == (
        "07:00 Sunday Jan 01, 2017"
    )
    assert subject('{{ customer.expiration | date: "%B %-d, %Y" }}', customer) == "July 31, 2020"
    assert subject("{{ 1483272000 | add_day: 5 | date: '%Y-%m-%d' }}") == "2017-01-06"


def test_now_is_the_render_moment() -> None:
    with rendering_at(1_767_225_600):  # 2026-01-01
        assert subject("&copy; {{ 'now' | date: '%Y' }}") == "&copy; 2026"


def test_customer_io_link_tags_are_nudges_links() -> None:
    html = body('<a href="{% unsubscribe_url %}">Unsubscribe</a> <a href="{% manage_subscription_preferences_url %}">Preferences</a>',
                unsubscribe_url="https://u", preferences_url="https://p")
    assert html == '<a href="https://u">Unsubscribe</a> <a href="https://p">Preferences</a>'


def test_event_items_are_the_events_data_not_dict_methods() -> None:
    event = {"items": [{"name": "socks", "price": 5}, {"name": "hat", "price": 12}]}
    source = "{{ event.items.size }} items: {{ event.items | map: 'name' | join: ', ' }}, first {{ event.items.first.name }}"
    assert subject(source, event=event) == "2 items: socks, hat, first socks"


def test_contains_on_lists_strings_and_missing_values() -> None:
    source = '{% if customer.tags contains "vip" %}VIP{% else %}no{% endif %}'
    assert subject(source, {"tags": ["vip", "beta"]}) == "VIP"
    assert subject(source, {"tags": "early-vip"}) == "VIP"
    assert subject(source, {}) == "no"


def test_pluralize_with_words_prints_the_count() -> None:
    assert subject("{{ event.item_count | pluralize: 'item', 'items' }}", event={"item_count": 3}) == "3 items"


# --- line numbers and what is not supported ------------------------------------------------


def test_translation_keeps_every_line_where_it_was() -> None:
    source = "a\n{% assign x =\n  1 | plus: 2 %}\n{% comment %}\nline\n{% endcomment %}\n{% case x %}\n{% when 3 %}three\n{% endcase %}\nz"
    assert liquid_to_jinja(source).count("\n") == source.count("\n")
    assert subject(source.replace("\n", " ")).split() == ["a", "three", "z"]


def test_a_syntax_error_after_liquid_names_the_line() -> None:
    source = "{{ customer.a | default: 'x' }}\n{% capture c %}\n{{ 1 + }}\n{% endcapture %}"
    with pytest.raises(TemplateRenderError, match="line 3"):
        body(source)


def test_an_unsupported_liquid_tag_is_named_with_its_line() -> None:
    with pytest.raises(TemplateRenderError, match=r"line 2: the Liquid tag \{% tablerow %\} is not supported"):
        body("ok\n{% tablerow item in event.items %}{{ item }}{% endtablerow %}")


@pytest.mark.parametrize(
    "source",
    [
        "{% set n = customer['items'] | length %}{{ n }}",
        "{% for k, v in customer|dictsort %}{{ k }}={{ v }};{% endfor %}",
        "{% set x = [1, 2, 3][0:2] %}{{ x | join('-') }}{{ 'a' if x else 'b' }}",
        "{% macro hi(name='you') %}hi {{ name }}{% endmacro %}{{ hi() }} {{ hi('Ana') }}",
        "{{ {'a': 1}['a'] }}{{ '%s!' | format('ok') }}{# a comment #}",
    ],
)
def test_jinja_syntax_renders_as_jinja_renders_it(source: str) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    customer = {"items": [1, 2], "b": 2}
    expected = ImmutableSandboxedEnvironment().from_string(source).render(customer=customer)
    assert subject(source, customer) == " ".join(expected.split())


# --- the sandbox still holds ------------------------------------------------------------------


def test_a_doubling_append_loop_stops_at_the_output_limit() -> None:
    source = "{% assign s = 'x' %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}"
    with pytest.raises(TemplateRenderError, match="larger than the output limit"):
        body(source, limits=RenderLimits(max_seconds=5, max_chars=100_000))


def test_a_huge_liquid_range_is_refused() -> None:
    with pytest.raises(TemplateRenderError, match="range"):
        body("{% for i in (1..1000000000) %}{% endfor %}")


def test_liquid_cannot_reach_private_attributes() -> None:
    with pytest.raises(TemplateRenderError):
        body("{{ customer.__class__.__mro__ }}", {"a": 1})


def test_a_filter_argument_past_the_output_limit_is_refused() -> None:
    with pytest.raises(TemplateRenderError, match="larger than the output limit"):
        body("{{ 'x' | center(10000000) }}", limits=RenderLimits(max_chars=1000))


def test_an_assign_inside_a_loop_is_seen_after_it() -> None:
    source = (
        "{% assign total = 0 %}{% for item in event.items %}{% assign total = total | plus: item.price %}"
        "{% endfor %}{% capture line %}{{ total }} in all{% endcapture %}{{ line }}"
    )
    assert subject(source, event={"items": [{"price": 5}, {"price": 12}]}) == "17 in all"


def test_a_liquid_subject_in_front_matter_needs_no_quotes() -> None:
    from agents.render.template_files import parse_template

    source = "---\nsubject: Hi {{ customer.first_name | default: 'there' }}!\nfrom: Ana <ana@example.com>\n---\n<p>x</p>\n"
    template = parse_template("hi", source)
    assert template.subject == "Hi {{ customer.first_name | default: 'there' }}!"
    assert render_email(template, RenderContext()).subject == "Hi there!"


def test_a_helper_call_takes_liquid_style_keyword_arguments() -> None:
    from schemas.history import EventRecord, History

    history = History(recent=[EventRecord(name="step_done", at=1.0, data={"step": "invite"})])
    source = "{% unless performed('step_done', step: 'invite') %}invite{% endunless %}{{ event_count('step_done', step: 'x') }}"
    template = EmailTemplate(id="t", subject=source, body="<p>x</p>")
    assert render_email(template, RenderContext(history=history)).subject == "0"
