"""The campaign language: shapes told apart by their leading key, errors that name the path."""

import pytest
import yaml
from pydantic import ValidationError

from agents.person.campaign_set import campaign_version
from schemas.campaigns import (
    Campaign,
    CampaignFileError,
    DateBetween,
    EventCondition,
    Goal,
    ReentryAfter,
    WaitUntilStep,
)


def _campaign(text: str) -> Campaign:
    return Campaign.model_validate(yaml.safe_load(text))


def _problems(text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        _campaign(text)
    return str(CampaignFileError.from_validation("campaigns/welcome.yaml", caught.value))


def test_the_design_example_validates() -> None:
    campaign = _campaign(
        """
        id: welcome
        trigger: {event: signed_up}
        filter: {attribute: email, exists: true}
        reentry: {after: 30d}
        exit: {event: upgraded_plan}
        goal: {event: first_key_action, within: 7d}
        steps:
          - send: welcome
          - wait: 48h
          - branch:
              if: {event: first_key_action, since: entry}
              then: [{send: celebrate}]
              else: [{send: getting_started}]
        """
    )
    assert campaign.reentry == ReentryAfter(after=30 * 86400)
    assert campaign.goal == Goal(condition=EventCondition(event="first_key_action"), within=7 * 86400)


def test_a_bad_duration_is_reported_with_file_and_path() -> None:
    message = _problems("id: w\ntrigger: {event: a}\nsteps: [{send: a}, {send: b}, {wait: 48x}]")
    assert message == (
        "campaigns/welcome.yaml: steps[2].wait: '48x' is not a duration (use s m h d w, e.g. 48h)"
    )


def test_an_unknown_step_names_the_keys_a_step_may_have() -> None:
    message = _problems("id: w\ntrigger: {event: a}\nsteps: [{sned: a}]")
    assert "steps[0]: not a step: it needs one of the keys send," in message


def test_an_unknown_operator_is_reported_inside_nested_conditions() -> None:
    message = _problems(
        "id: w\ntrigger: {event: a}\nfilter: {all: [{attribute: x, eqq: 1}]}\nsteps: []"
    )
    assert "filter.all[0].eqq: unknown key" in message


def test_reentry_accepts_once_always_or_after() -> None:
    message = _problems("id: w\ntrigger: {event: a}\nreentry: twice")
    assert "reentry: 'twice' is not a re-entry rule (use once, always or {after: 30d})" in message


def test_date_triggers_take_a_percentage_between_two_attributes() -> None:
    campaign = _campaign("id: w\ntrigger: {date: {from: a, to: b, at: 50%}}")
    assert campaign.trigger.date == DateBetween(**{"from": "a", "to": "b", "at": 50.0})


def test_wait_until_accepts_the_condition_inline_with_max() -> None:
    campaign = _campaign("id: w\ntrigger: {event: a}\nsteps: [{wait_until: {event: b, max: 3d}}]")
    step = campaign.steps[0]
    assert isinstance(step, WaitUntilStep)
    assert step.wait_until.condition == EventCondition(event="b")
    assert step.wait_until.max == 3 * 86400


def test_random_cohorts_cannot_exceed_one_hundred_percent() -> None:
    message = _problems(
        "id: w\ntrigger: {event: a}\nsteps: [{random: [{percent: 70}, {percent: 40}]}]"
    )
    assert "steps[0].random: the cohorts add up to 110%" in message


def test_the_version_is_a_hash_of_the_definition_not_of_its_name() -> None:
    one = _campaign("id: w\nname: One\ntrigger: {event: a}\nsteps: [{send: x}]")
    renamed = _campaign("id: w\nname: Two\ntrigger: {event: a}\nsteps: [{send: x}]")
    edited = _campaign("id: w\ntrigger: {event: a}\nsteps: [{send: y}]")
    assert campaign_version(one) == campaign_version(renamed)
    assert campaign_version(one) != campaign_version(edited)
    assert len(campaign_version(one)) == 8


def test_a_campaign_round_trips_through_its_json_with_the_same_version() -> None:
    original = _campaign(
        "id: w\ntrigger: {event: a}\ngoal: {event: b, within: 7d}\n"
        "steps: [{split: [{if: {segment: s}, then: [{send: x}]}, {else: [{send: y}]}]},"
        " {wait_until: {event: c, max: 1d}}, {time_window: {from: '09:00', to: '17:00'}}]"
    )
    again = Campaign.model_validate_json(original.model_dump_json(by_alias=True, exclude_defaults=True))
    assert again == original
    assert campaign_version(again) == campaign_version(original)
