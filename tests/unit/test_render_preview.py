"""`nudge preview`: a template rendered with a person's full state, as the delivery loop would."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.render.email import render_email
from agents.simulate.preview import PreviewError, preview_context, rebuild
from agents.simulate.project import Project
from schemas.campaigns import Campaign, ComputedAttribute
from schemas.inputs import Absorb, Identify, Track
from schemas.templates import EmailTemplate
from streams.cli.preview import preview

T0 = 1_772_442_000.0


def templates(root: Path, **sources: str) -> Path:
    (root / "templates").mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (root / "templates" / f"{name}.html").write_text(text)
    return root


def test_preview_renders_with_given_attributes_and_event(tmp_path: Path) -> None:
    root = templates(tmp_path, hi="---\nsubject: Hi {{ customer.name }}\n---\n<p>Total {{ event.total | money }}</p>")
    result = CliRunner().invoke(preview, [
        "hi", "--campaigns", str(root), "--attributes", '{"name": "Ana"}', "--event", '{"total": 5}'
    ])
    assert result.exit_code == 0, result.output
    assert "Subject: Hi Ana" in result.output and "Total $5.00" in result.output


def test_preview_reports_render_errors_and_unknown_templates(tmp_path: Path) -> None:
    root = templates(tmp_path, hi="---\nsubject: Hi\n---\n<p>{{ customer.coupon }}</p>")
    failed = CliRunner().invoke(preview, ["hi", "--campaigns", str(root)])
    assert failed.exit_code == 1 and "coupon" in failed.output
    unknown = CliRunner().invoke(preview, ["nope", "--campaigns", str(root)])
    assert unknown.exit_code == 1 and "known: hi" in unknown.output


def test_a_journey_needs_a_person(tmp_path: Path) -> None:
    root = templates(tmp_path, hi="---\nsubject: Hi\n---\n<p>x</p>")
    result = CliRunner().invoke(preview, ["hi", "--campaigns", str(root), "--journey", "welcome"])
    assert result.exit_code == 2


# --- the person's full state, rebuilt from their recorded inputs ----------------------------

WELCOME = Campaign.model_validate({
    "id": "welcome", "trigger": {"event": "signed_up"},
    "steps": [{"send": "welcome"}, {"wait": "2d"}, {"send": "onboarding"}],
})
SPENT = ComputedAttribute.model_validate({"id": "spent", "event": "purchased", "aggregate": "sum", "property": "amount"})
PROJECT = Project(campaigns=[WELCOME], computed=[SPENT])
ONBOARDING = EmailTemplate(
    id="onboarding", subject="Day three",
    body=(
        "<p>{{ customer.first_name }} on {{ event.plan }}, spent {{ customer.spent }}; still to do:"
        "{% for step in ['invite', 'connect', 'report'] %}{% if not performed('step_done', step=step) %} {{ step }}"
        "{% endif %}{% endfor %}</p>"
    ),
)
INPUTS = [
    Identify(person="ana", at=T0, attributes={"email": "ana@example.com", "first_name": "Ana"}),
    Track(person="ana", at=T0 + 60, name="signed_up", data={"plan": "trial"}),
    Track(person="ana", at=T0 + 120, name="step_done", data={"step": "invite"}),
    Track(person="ana", at=T0 + 180, name="step_done", data={"step": "connect"}),
    Track(person="ana", at=T0 + 240, name="purchased", data={"amount": 30}),
]


def test_the_person_renders_with_history_computed_attributes_and_the_journeys_event() -> None:
    rebuilt = rebuild("ana", INPUTS, PROJECT, now=T0 + 3600)
    context = preview_context(rebuilt, journey="welcome")
    html = render_email(ONBOARDING, context).html
    # One step is left, not three: the helpers see the history.
    assert html == "<p>Ana on trial, spent 30; still to do: report</p>"
    assert context.campaign["id"] == "welcome" and context.event_name == "signed_up"


def test_a_finished_journey_keeps_the_event_its_sends_carried() -> None:
    rebuilt = rebuild("ana", INPUTS, PROJECT, now=T0 + 5 * 86400)
    assert not any(j.status == "active" for j in rebuilt.state.journeys)
    assert preview_context(rebuilt, journey="welcome").event == {"plan": "trial"}


def test_the_latest_event_of_a_name_can_be_the_trigger_with_data_over_it() -> None:
    rebuilt = rebuild("ana", INPUTS, PROJECT, now=T0 + 3600)
    context = preview_context(rebuilt, event="step_done", data={"note": "x"})
    assert context.event == {"step": "connect", "note": "x"} and context.event_name == "step_done"


def test_an_unknown_journey_or_event_names_what_the_person_has() -> None:
    rebuilt = rebuild("ana", INPUTS, PROJECT, now=T0 + 3600)
    with pytest.raises(PreviewError, match="their journeys: welcome"):
        preview_context(rebuilt, journey="cart")
    with pytest.raises(PreviewError, match="their recent events: purchased, signed_up, step_done"):
        preview_context(rebuilt, event="logged_in")


def test_a_merge_whose_secondary_was_erased_brings_its_history_along() -> None:
    anonymous = {"person": "anon:a1", "first_seen": T0 - 600, "recent": [
        {"name": "step_done", "at": T0 - 500, "data": {"step": "report"}},
    ], "totals": {"step_done": {"count": 1, "first_at": T0 - 500, "last_at": T0 - 500}}}
    merged = [*INPUTS, Absorb(person="ana", at=T0 + 300, source="anon:a1", state=anonymous)]
    rebuilt = rebuild("ana", merged, PROJECT, now=T0 + 3600)
    html = render_email(ONBOARDING, preview_context(rebuilt, journey="welcome")).html
    assert html.endswith("still to do:</p>")
