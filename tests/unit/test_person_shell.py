"""The shell step, without Kafka: replay guard, one record per person, rebuilds, dead letters, erasure."""

from __future__ import annotations

import pytest
import yaml

from agents.person.campaign_set import CampaignSet
from agents.person.shell import PersonCache, ShellConfig
from agents.person.state_codec import decode_state
from schemas.campaigns import Campaign
from schemas.commands import Activity, SendEmail
from schemas.inputs import Delete, Identify, Track
from schemas.wire import encode_envelope, encode_input

T0 = 1_772_442_000.0
WELCOME = CampaignSet.build([
    Campaign.model_validate(yaml.safe_load("id: welcome\ntrigger: {event: signed_up}\nsteps: [{send: welcome}]"))
])


class Store:
    """The local store as the cache sees it: (partition, key) -> bytes, written by checkpoints."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get((partition, key))

    def write(self, records) -> None:
        for partition, key, value in records:
            if value is None:
                self.data.pop((partition, key), None)
            else:
                self.data[(partition, key)] = value


def message(*inputs) -> bytes:
    return encode_envelope(inputs) if len(inputs) > 1 else encode_input(inputs[0])


def signup(person: str = "ana", at: float = 0.0):
    return (
        Identify(person=person, at=T0 + at, attributes={"email": f"{person}@example.com"}),
        Track(person=person, at=T0 + at, name="signed_up", event_id=f"{person}-signup"),
    )


def sends(commands) -> list[SendEmail]:
    return [c for _, c in commands if isinstance(c, SendEmail)]


@pytest.fixture
def store() -> Store:
    return Store()


def test_a_person_touched_by_many_messages_is_one_record_at_the_checkpoint(store: Store) -> None:
    cache = PersonCache(store.get)
    for offset in range(10):
        cache.apply_message(0, offset, T0 + offset, b"ana", message(
            Track(person="ana", at=T0 + offset, name="view")), WELCOME)
    checkpoint = cache.checkpoint(WELCOME)
    assert [(p, k) for p, k, _ in checkpoint.records] == [(0, b"ana")]
    assert checkpoint.inputs == 10
    assert decode_state(checkpoint.records[0][2]).totals["view"].count == 10


def test_an_input_at_or_below_the_last_position_is_skipped_as_a_replay(store: Store) -> None:
    cache = PersonCache(store.get)
    cache.apply_message(0, 5, T0, b"ana", message(*signup()), WELCOME)
    store.write(cache.checkpoint(WELCOME).records)
    fresh = PersonCache(store.get)
    assert fresh.apply_message(0, 5, T0, b"ana", message(*signup()), WELCOME) == []
    assert fresh.checkpoint(WELCOME).commands == []


def test_replaying_the_same_messages_decides_the_same_message_ids(store: Store) -> None:
    first, second = PersonCache(store.get), PersonCache(Store().get)
    for cache in (first, second):
        cache.apply_message(0, 0, T0 + 1, b"ana", message(*signup()), WELCOME)
    ids = [[s.message_id for s in sends(c.checkpoint(WELCOME).commands)] for c in (first, second)]
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_an_input_decide_cannot_apply_is_dead_lettered_and_the_person_rebuilt(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agents.person.shell as shell

    real = shell.decide

    def flaky(state, item, *args, **kwargs):
        if isinstance(item, Track) and item.name == "poison":
            if state is not None:
                state.attributes["half"] = "applied"  # a partial change that must not survive
            raise RuntimeError("boom")
        return real(state, item, *args, **kwargs)

    monkeypatch.setattr(shell, "decide", flaky)
    cache = PersonCache(store.get)
    cache.apply_message(0, 0, T0, b"ana", message(*signup()), WELCOME)
    cache.apply_message(0, 1, T0 + 1, b"ana", message(Track(person="ana", at=T0 + 1, name="poison")), WELCOME)
    cache.apply_message(0, 2, T0 + 2, b"ana", message(Track(person="ana", at=T0 + 2, name="view")), WELCOME)
    checkpoint = cache.checkpoint(WELCOME)
    [letter] = checkpoint.dead_letters
    assert "boom" in letter.reason and b"poison" in letter.value
    state = decode_state(checkpoint.records[0][2])
    assert "half" not in state.attributes and state.totals["view"].count == 1
    assert len(sends(checkpoint.commands)) == 1


def test_an_input_that_would_make_the_record_too_big_is_dead_lettered(store: Store) -> None:
    cache = PersonCache(store.get, ShellConfig(max_state_bytes=4096))
    cache.apply_message(0, 0, T0, b"ana", message(*signup()), WELCOME)
    big = Identify(person="ana", at=T0 + 1, attributes={"bio": "x" * 5000})
    cache.apply_message(0, 1, T0 + 1, b"ana", message(big), WELCOME)
    cache.apply_message(0, 2, T0 + 2, b"ana", message(Identify(person="ana", at=T0 + 2, attributes={"plan": "pro"})), WELCOME)
    checkpoint = cache.checkpoint(WELCOME)
    [letter] = checkpoint.dead_letters
    assert "over the 4096-byte limit" in letter.reason
    state = decode_state(checkpoint.records[0][2])
    assert "bio" not in state.attributes and state.attributes["plan"] == "pro"
    assert len(checkpoint.records[0][2]) <= 4096


def test_a_message_that_is_not_an_input_is_dead_lettered_with_its_reason(store: Store) -> None:
    cache = PersonCache(store.get)
    assert cache.apply_message(0, 0, T0, b"x", b"not json", WELCOME) == []
    [letter] = cache.checkpoint(WELCOME).dead_letters
    assert letter.reason.startswith("invalid input: not JSON") and letter.value == b"not json"


def test_an_erased_person_leaves_a_tombstone_and_a_salted_marker_not_their_id(store: Store) -> None:
    cache = PersonCache(store.get)
    cache.apply_message(0, 0, T0, b"ana", message(*signup()), WELCOME)
    cache.apply_message(0, 1, T0 + 10, b"ana", message(Delete(person="ana", at=T0 + 10)), WELCOME)
    checkpoint = cache.checkpoint(WELCOME)
    assert (0, b"ana", None) in checkpoint.records
    [marker] = [r for r in checkpoint.records if r[1] != b"ana"]
    assert b"ana" not in marker[1]
    [deletion] = [c for _, c in checkpoint.commands if isinstance(c, Activity) and c.input_kind == "delete"]
    assert "ana" not in deletion.person and "ana" not in deletion.summary


def test_late_events_for_an_erased_person_are_dropped_and_a_later_identify_starts_afresh(store: Store) -> None:
    cache = PersonCache(store.get)
    cache.apply_message(0, 0, T0, b"ana", message(*signup()), WELCOME)
    cache.apply_message(0, 1, T0 + 10, b"ana", message(Delete(person="ana", at=T0 + 10)), WELCOME)
    store.write(cache.checkpoint(WELCOME).records)
    later = PersonCache(store.get)
    # The same signup again (a client retry from before the delete) sends nothing.
    later.apply_message(0, 2, T0 + 20, b"ana", message(*signup()), WELCOME)
    assert later.dropped_late == 2 and later.checkpoint(WELCOME).records == []
    later.apply_message(0, 3, T0 + 30, b"ana", message(*signup(at=30)), WELCOME)
    assert len(sends(later.checkpoint(WELCOME).commands)) == 1
