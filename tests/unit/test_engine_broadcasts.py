"""A broadcast reaching one person: sent to members who may get it, once, and remembered."""

from __future__ import annotations

from agents.person.campaign_set import CampaignSet
from agents.person.engine import decide
from agents.person.ids import broadcast_message_id
from schemas.campaigns import SegmentDefinition
from schemas.commands import SendEmail
from schemas.inputs import BroadcastSend, Identify, SegmentMembership, Suppress, Unsubscribe

T0 = 1_772_442_000.0
CAMPAIGNS = CampaignSet.build([], segments=[SegmentDefinition(id="vip", manual=True)])


def person(*inputs, start=None):
    state = start
    commands = []
    for item in inputs:
        state, out = decide(state, item, CAMPAIGNS, item.at)
        commands += out
    return state, commands


def broadcast(at: float = 10.0, segment: str | None = "vip", transactional: bool = False) -> BroadcastSend:
    return BroadcastSend(
        person="ana", at=T0 + at, broadcast_id="b1", campaign_id="spring",
        campaign_version="v1", template="newsletter", segment=segment, transactional=transactional,
    )


def sends(commands) -> list[SendEmail]:
    return [c for c in commands if isinstance(c, SendEmail)]


def member(at: float = 1.0) -> list:
    return [
        Identify(person="ana", at=T0, attributes={"email": "ana@example.com"}),
        SegmentMembership(person="ana", at=T0 + at, segment="vip"),
    ]


def test_a_segment_member_gets_the_broadcast_with_its_deterministic_message_id():
    state, commands = person(*member(), broadcast())
    [send] = sends(commands)
    assert send.message_id == broadcast_message_id("b1", "ana")
    assert send.template == "newsletter" and send.to == "ana@example.com"
    assert send.journey_id == "broadcast:b1"
    assert [m.id for m in state.messages] == [send.message_id]


def test_someone_outside_the_segment_gets_nothing():
    _, commands = person(Identify(person="ana", at=T0, attributes={"email": "ana@example.com"}), broadcast())
    assert sends(commands) == []


def test_the_same_broadcast_reaching_a_person_twice_sends_once():
    _, commands = person(*member(), broadcast(), broadcast(at=20.0))
    assert len(sends(commands)) == 1


def test_an_unsubscribed_person_gets_only_a_transactional_broadcast():
    unsubscribed = [*member(), Unsubscribe(person="ana", at=T0 + 2)]
    _, commands = person(*unsubscribed, broadcast())
    assert sends(commands) == []
    _, commands = person(*unsubscribed, broadcast(transactional=True))
    assert len(sends(commands)) == 1


def test_a_suppressed_or_unknown_person_gets_nothing():
    _, commands = person(*member(), Suppress(person="ana", at=T0 + 2), broadcast())
    assert sends(commands) == []
    state, commands = person(broadcast())
    assert state is None and commands == []
