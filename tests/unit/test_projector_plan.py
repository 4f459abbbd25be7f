"""The projector's planning, without PostgreSQL: decoding projection messages into commands with
their identities, and folding a batch into segments of rows around erasures."""

from __future__ import annotations

from agents.projector.plan import decode_message, plan_batch
from schemas.commands import Activity, JourneyEvent, PersonSnapshot, SendEmail
from schemas.wire import encode_commands

T0 = 1_772_442_000.0


def line(person: str, summary: str = "track") -> Activity:
    return Activity(person=person, at=T0, input_kind="track", summary=summary)


def journey(kind: str, at: float = T0, **fields: object) -> JourneyEvent:
    return JourneyEvent(event=kind, person="ana", campaign_id="w", campaign_version="v1",
                        journey_id="j1", at=at, **fields)


def decoded(*commands, source: str = "0:7"):
    projections, refusals = decode_message(encode_commands(list(commands)), source)
    assert refusals == []
    return projections


def test_a_message_that_is_not_json_is_refused_whole_with_its_text():
    projections, [refusal] = decode_message(b"{nope", "1:5")
    assert projections == []
    assert (refusal.source, refusal.value) == ("1:5", "{nope")
    assert refusal.reason.startswith("not a JSON command message")


def test_an_item_that_is_not_a_command_is_refused_and_its_siblings_kept():
    raw = b'{"commands": [{"kind": "activity", "person": "ana", "at": 1, "input_kind": "k", "summary": "s"},' \
          b' {"kind": "activity", "person": "bo"}]}'
    projections, [refusal] = decode_message(raw, "0:1")
    assert [p.command.person for p in projections] == ["ana"]
    assert (refusal.person, refusal.index) == ("bo", 1)


def test_the_same_message_read_twice_gives_the_same_fingerprints():
    first = decoded(line("ana"), line("bo"))
    again = decoded(line("ana"), line("bo"), source="3:99")
    assert [p.fingerprint for p in first] == [p.fingerprint for p in again]


def test_identical_lines_in_one_message_get_distinct_fingerprints():
    a, b = decoded(line("ana"), line("ana"))
    assert a.fingerprint != b.fingerprint


def test_an_erasure_after_a_persons_rows_starts_a_segment_that_erases_them_first():
    segments, _ = plan_batch(decoded(
        line("ana"), line("bo"), PersonSnapshot(person="ana", at=T0, deleted=True), line("ana", "again"),
    ))
    assert [(s.erase_first, sorted(s.touched)) for s in segments] == [([], ["ana", "bo"]), (["ana"], ["ana"])]
    assert [a.summary for a in segments[1].activity] == ["again"]


def test_erasures_of_people_without_rows_in_the_segment_share_it():
    segments, _ = plan_batch(decoded(
        line("bo"), PersonSnapshot(person="ana", at=T0, deleted=True),
        PersonSnapshot(person="cy", at=T0, deleted=True),
    ))
    assert [(s.erase_first, sorted(s.touched)) for s in segments] == [(["ana", "cy"], ["bo"])]


def test_a_journeys_events_fold_into_where_it_stands():
    [segment], _ = plan_batch(decoded(
        journey("entered", position="0"),
        journey("step", step="0", step_kind="send", position="1", resume_at=T0 + 60),
        journey("step", T0 + 60, step="1", step_kind="wait", position="1"),
        journey("completed", T0 + 60, reason="all steps done"),
    ))
    now = segment.journeys["j1"]
    assert (now.status, now.position, now.resume_at, now.entered_at, now.ended_at, now.updated_at) == (
        "completed", None, None, T0, T0 + 60, T0 + 60)
    assert sorted(segment.journey_steps) == [("j1", "0"), ("j1", "1")]
    assert sorted(segment.journey_events) == [("j1", "completed"), ("j1", "entered")]


def test_a_conversion_alone_does_not_move_the_journey():
    [segment], _ = plan_batch(decoded(journey("converted", reason="goal reached")))
    now = segment.journeys["j1"]
    assert (now.moved, now.converted_at) == (False, T0)


def test_a_command_that_is_no_read_model_is_refused():
    send = SendEmail(message_id="m1", person="ana", to=None, template="t", decided_at=T0)
    segments, [refusal] = plan_batch(decoded(line("ana"), send))
    assert [len(s.activity) for s in segments] == [1]
    assert "send_email is not a read-model command" in refusal.reason
