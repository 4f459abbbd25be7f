"""`trusted` builds exactly what validated construction builds, for every model the core makes."""

from __future__ import annotations

from schemas.commands import Activity, JourneyEvent, PersonSnapshot, RenderContext, SendEmail, trusted
from schemas.history import EventAggregate, EventRecord, History

CASES = [
    (Activity, dict(person="ana", at=1.5, input_kind="track", summary="track x", changes={"a": [1, 2]},
                    event_name="x", event_type="event", event_data={"k": "v"}, input={"kind": "track"})),
    (Activity, dict(person="ana", at=1.5, input_kind="identify", summary="identify")),
    (PersonSnapshot, dict(person="ana", at=2.0, email="a@x.io", attributes={"plan": "pro"},
                          segments={"vip": 1.0})),
    (JourneyEvent, dict(event="step", person="ana", campaign_id="c", campaign_version="v", journey_id="j",
                        at=3.0, reason="r", step="0", step_kind="send", detail={"template": "t"},
                        position="1", resume_at=9.0)),
    (EventRecord, dict(name="x", at=1.0, data={"a": 1})),
    (EventAggregate, dict(count=2, first_at=1.0, last_at=2.0)),
]


def test_trusted_models_equal_validated_ones_and_serialise_the_same():
    for model, values in CASES:
        made, checked = trusted(model, **values), model(**values)
        assert made == checked, model.__name__
        assert made.model_dump_json() == checked.model_dump_json(), model.__name__
        assert made.model_fields_set == checked.model_fields_set, model.__name__


def test_trusted_nested_commands_equal_validated_ones():
    history = trusted(History, aggregates={"x": trusted(EventAggregate, count=1, first_at=1.0, last_at=1.0)},
                      recent=[trusted(EventRecord, name="x", at=1.0)])
    context = trusted(RenderContext, customer={"a": 1}, event={"b": 2}, event_name="x",
                      campaign={"id": "c"}, history=history)
    values = dict(message_id="m", person="ana", to="a@x.io", template="t", campaign_id="c",
                  campaign_version="v", journey_id="j", step="0", decided_at=1.0, reason="r",
                  transactional=False, context=context)
    made, checked = trusted(SendEmail, **values), SendEmail.model_validate(
        {**values, "context": context.model_dump()}
    )
    assert made == checked
    assert made.model_dump_json() == checked.model_dump_json()


def test_trusted_defaults_are_fresh_for_every_model():
    one, two = trusted(Activity, person="a", at=0.0, input_kind="x", summary=""), trusted(
        Activity, person="b", at=0.0, input_kind="x", summary="")
    one.changes["k"] = 1
    assert two.changes == {}
