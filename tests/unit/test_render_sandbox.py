"""The sandbox: no file access, no attribute walks, bounded time and output."""

import itertools

import pytest

from agents.render.email import render_email
from agents.render.errors import TemplateRenderError
from agents.render.sandbox import RenderLimits
from schemas.commands import RenderContext
from schemas.templates import EmailTemplate


def render(body: str, limits: RenderLimits = RenderLimits(), clock=None, **customer: object) -> str:
    template = EmailTemplate(id="t", subject="s", body=body)
    options = {"clock": clock} if clock is not None else {}
    return render_email(template, RenderContext(customer=customer), limits=limits, **options).html


class TickingClock:
    """Each reading is one second later: any check of the deadline after the first fails."""

    def __init__(self) -> None:
        self.ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self.ticks))


@pytest.mark.parametrize(
    "body",
    [
        "{% include '/etc/passwd' %}",
        "{% import '/etc/passwd' as x %}",
        "{% extends '/etc/passwd' %}",
    ],
)
def test_templates_cannot_read_files(body):
    with pytest.raises(TemplateRenderError):
        render(body)


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer.__class__ }}",
        "{{ range.__globals__ }}",
        "{{ customer.update({'a': 1}) }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_templates_cannot_reach_internals_or_mutate_data(body):
    with pytest.raises(TemplateRenderError):
        render(body)


def test_a_silent_loop_stops_at_the_time_limit():
    body = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRenderError, match="longer than 2s"):
        render(body, clock=TickingClock())


def test_a_loop_of_lookups_stops_at_the_time_limit():
    body = "{% for a in customer.rows %}{% for b in customer.rows %}{{ b.x }}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRenderError, match="longer than"):
        render(body, clock=TickingClock(), rows=[{"x": ""}] * 2000)


def test_a_real_clock_stops_a_runaway_template_quickly():
    import time

    body = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(TemplateRenderError, match=r"longer than 0\.2s"):
        render(body, limits=RenderLimits(max_seconds=0.2))
    assert time.perf_counter() - started < 2


def test_output_is_capped():
    with pytest.raises(TemplateRenderError, match="larger than 1000 characters"):
        render("{% for i in range(2000) %}x{% endfor %}", limits=RenderLimits(max_chars=1000))


def test_repeating_a_string_past_the_cap_is_refused_before_it_is_built():
    with pytest.raises(TemplateRenderError, match="exceeds the output limit"):
        render("{{ 'x' * 1000000000 }}")


def test_huge_powers_are_refused():
    with pytest.raises(TemplateRenderError, match="too large"):
        render("{{ 9 ** 999999999 }}")


def test_doubling_through_a_namespace_is_stopped():
    body = (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    )
    with pytest.raises(TemplateRenderError, match="larger than the output limit"):
        render(body, limits=RenderLimits(max_chars=10_000))


def test_range_is_bounded():
    with pytest.raises(TemplateRenderError, match="range"):
        render("{% for i in range(10**7) %}{% endfor %}")


def test_recursive_macros_fail_the_message_not_the_worker():
    with pytest.raises(TemplateRenderError):
        render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")


def test_ordinary_templates_are_unaffected():
    body = "{% for p in customer.products %}{{ p.name | upcase }} {% endfor %}"
    assert render(body, products=[{"name": "a"}, {"name": "b"}]) == "A B "
