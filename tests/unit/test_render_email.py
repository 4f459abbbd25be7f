"""The template renderer: sandboxed Jinja2 with strict variables and history helpers."""

import uuid

import pytest

from agents.render.email import html_to_text, render_email
from agents.render.errors import TemplateRenderError
from schemas.commands import RenderContext
from schemas.history import EventAggregate, EventRecord, History
from schemas.templates import EmailTemplate


def template(subject: str = "Hi", body: str = "<p>Hello</p>", **extra: str) -> EmailTemplate:
    return EmailTemplate(id="t", subject=subject, body=body, **extra)


def history() -> History:
    recent = [
        EventRecord(name="viewed_product", at=10, data={"product_id": "p1"}),
        EventRecord(name="viewed_product", at=20, data={"product_id": "p2"}),
        EventRecord(name="viewed_product", at=30, data={"product_id": "p1"}),
        EventRecord(name="purchase", at=40, data={"amount": 70, "category": "shoes"}),
        EventRecord(name="purchase", at=50, data={"amount": 50, "category": "hats"}),
    ]
    return History(
        # Older views fell out of `recent`; the aggregate still counts them.
        aggregates={
            "viewed_product": EventAggregate(count=12, first_at=1, last_at=30),
            "purchase": EventAggregate(count=2, first_at=40, last_at=50),
        },
        recent=recent,
    )


def render_with_history(body: str) -> str:
    return render_email(template(body=body), RenderContext(history=history())).html


def test_subject_and_body_render_customer_and_event():
    context = RenderContext(customer={"first_name": "Ana"}, event={"product_name": "Lamp"})
    out = render_email(
        template("Hi {{ customer.first_name }}", "<p>Your {{ event.product_name }}</p>"), context
    )
    assert out.subject == "Hi Ana"
    assert out.html == "<p>Your Lamp</p>"


def test_default_filter_fills_a_missing_attribute():
    out = render_email(
        template("Welcome, {{ customer.first_name | default('there') }}!"), RenderContext()
    )
    assert out.subject == "Welcome, there!"


def test_undefined_variable_raises_naming_the_variable():
    with pytest.raises(TemplateRenderError) as caught:
        render_email(template(body="<p>{{ coupon_code }}</p>"), RenderContext())
    assert "coupon_code" in str(caught.value)
    assert caught.value.template_id == "t"
    assert caught.value.part == "body"


def test_missing_attribute_of_customer_raises():
    with pytest.raises(TemplateRenderError, match="plan_type"):
        render_email(template("{{ customer.plan_type }}"), RenderContext(customer={"a": 1}))


def test_syntax_error_raises_with_line_number():
    with pytest.raises(TemplateRenderError, match="line 2"):
        render_email(template(body="<p>ok</p>\n{% if %}"), RenderContext())


def test_sandbox_refuses_dunder_access():
    with pytest.raises(TemplateRenderError, match="unsafe"):
        render_email(template(body="{{ ''.__class__.__mro__ }}"), RenderContext())


def test_sandbox_refuses_mutating_data():
    with pytest.raises(TemplateRenderError):
        render_email(
            template(body="{{ customer.tags.append('x') }}"),
            RenderContext(customer={"tags": []}),
        )


def test_html_body_autoescapes_attribute_values():
    context = RenderContext(customer={"name": '"><script>alert(1)</script>'})
    out = render_email(template(body='<a title="{{ customer.name }}">x</a>'), context)
    assert "<script>" not in out.html
    assert "&#34;&gt;&lt;script&gt;" in out.html


def test_subject_is_not_html_escaped():
    out = render_email(template("{{ customer.co }}"), RenderContext(customer={"co": "A & B"}))
    assert out.subject == "A & B"


def test_subject_line_breaks_from_data_become_spaces():
    out = render_email(template("Hi {{ customer.n }}"), RenderContext(customer={"n": "a\r\nb"}))
    assert out.subject == "Hi a b"


def test_performed_without_where_uses_history():
    assert render_with_history("{{ performed('purchase') }} {{ performed('refund') }}") == (
        "True False"
    )


def test_performed_with_where_matches_event_properties():
    out = render_with_history(
        "{{ performed('purchase', category='shoes') }} {{ performed('purchase', category='bags') }}"
    )
    assert out == "True False"


def test_event_count_without_where_uses_the_lifetime_aggregate():
    assert render_with_history("{{ event_count('viewed_product') }}") == "12"


def test_event_count_with_where_counts_matching_recent_events():
    assert render_with_history("{{ event_count('viewed_product', product_id='p1') }}") == "2"


def test_total_sums_a_property_as_an_int_when_all_values_are_ints():
    assert render_with_history("Lifetime value: {{ total('purchase', 'amount') }}") == (
        "Lifetime value: 120"
    )


def test_total_with_where_and_floats():
    context = RenderContext(
        history=History(
            recent=[
                EventRecord(name="purchase", at=1, data={"amount": 9.5, "category": "a"}),
                EventRecord(name="purchase", at=2, data={"amount": 1, "category": "a"}),
                EventRecord(name="purchase", at=3, data={"amount": 100, "category": "b"}),
            ]
        )
    )
    out = render_email(template(body="{{ total('purchase', 'amount', category='a') }}"), context)
    assert out.html == "10.5"


def test_last_event_returns_latest_matching_properties_or_none():
    out = render_with_history(
        "{{ last_event('purchase').category }} {{ last_event('purchase', category='shoes').amount }}"
        " {{ last_event('refund') is none }}"
    )
    assert out == "hats 70 True"


def test_text_part_is_derived_from_html():
    body = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<h1>Welcome</h1><p>Start <a href='https://ex.com/start'>here</a>.</p>"
        "<ul><li>one</li><li>two</li></ul></body></html>"
    )
    out = render_email(template(body=body), RenderContext())
    assert out.text == "Welcome\n\nStart here (https://ex.com/start).\n\n- one\n- two"


def test_given_text_part_is_rendered_instead_of_derived():
    out = render_email(
        template(body="<p>html</p>", text="Plain {{ customer.n }}"),
        RenderContext(customer={"n": "<b>"}),
    )
    assert out.text == "Plain <b>"


def test_preheader_is_hidden_in_html_and_absent_from_text():
    out = render_email(
        template(body="<body><p>Hi</p></body>", preheader="Peek {{ customer.n }}"),
        RenderContext(customer={"n": "x"}),
    )
    assert out.html.startswith('<body><div style="display:none')
    assert "Peek x" in out.html
    assert out.text == "Hi"


def test_unsubscribe_url_is_available_to_templates():
    out = render_email(
        template(body="<a href='{{ unsubscribe_url }}'>stop</a>"),
        RenderContext(),
        unsubscribe_url="https://n.io/unsubscribe/m1",
    )
    assert "https://n.io/unsubscribe/m1" in out.html


def test_html_to_text_decodes_entities_and_drops_scripts():
    assert html_to_text("<script>x()</script><p>Tom &amp; Jerry&nbsp;!</p>") == "Tom & Jerry !"


def test_html_to_text_reads_script_and_style_as_raw_text():
    html = "<style>p{x:1} a<b</style><p>Hi</p><script>if (a<b) {}</script> after"
    assert html_to_text(html) == "Hi\n\nafter"


def test_html_to_text_takes_tags_and_attributes_in_any_case_the_last_one_winning():
    html = "<A HREF='https://one' href='https://two'>Go</A><IMG ALT=pic><P>x</P>"
    assert html_to_text(html) == "Go (https://two)pic\nx"


def test_html_to_text_keeps_a_lone_angle_bracket_and_drops_comments():
    assert html_to_text("a < b <!-- hidden --> <!DOCTYPE html>c &copy; &#169;") == "a < b c © ©"


def test_html_to_text_lists_and_link_urls():
    html = "<ul><li>one<li><a href='https://x.test/?a=1&amp;b=2'>two</a></ul><a href='#top'>top</a>"
    assert html_to_text(html) == "- one\n- two (https://x.test/?a=1&b=2)\ntop"


def test_a_template_version_is_compiled_once_and_reused_for_every_message():
    from agents.render import email as email_module

    tag = uuid.uuid4().hex  # sources no other test compiled
    template = EmailTemplate(id="once", subject=f"Hi {{{{ customer.n }}}}{tag}", body=f"<p>{{{{ customer.n }}}} {tag}</p>")
    before = email_module._compile.cache_info().misses
    for n in range(50):
        assert render_email(template, RenderContext(customer={"n": n})).subject == f"Hi {n}{tag}"
    assert email_module._compile.cache_info().misses - before == 2  # subject and body
    edited = template.model_copy(update={"body": f"<p>{{{{ customer.n }}}} edited {tag}</p>"})
    render_email(edited, RenderContext(customer={"n": 1}))
    assert email_module._compile.cache_info().misses - before == 3
