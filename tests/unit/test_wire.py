"""The input topic's wire format: one input or an envelope, and clear reasons for bad ones."""

import pytest

from schemas.inputs import Identify, Track
from schemas.wire import InvalidInput, decode_inputs, encode_envelope, encode_input


def test_a_single_input_decodes_to_one_input():
    raw = b'{"kind": "track", "person": "ana", "at": 1.0, "name": "signed_up"}'
    assert decode_inputs(raw) == [Track(person="ana", at=1.0, name="signed_up")]


def test_an_envelope_round_trips_in_order():
    items = [Identify(person="ana", at=1.0, attributes={"plan": "trial"}), Track(person="bo", at=2.0, name="x")]
    assert decode_inputs(encode_envelope(items)) == items


def test_encode_input_round_trips():
    item = Track(person="ana", at=3.0, name="viewed", data={"n": 1}, event_id="e1")
    assert decode_inputs(encode_input(item)) == [item]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"kind": "track", "person": "ana", "at": 1}', "name"),
        (b'{"kind": "explode", "person": "ana", "at": 1}', "kind"),
        (b'{"kind": "identify", "person": "", "at": 1}', "person"),
    ],
)
def test_invalid_messages_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidInput, match=reason):
        decode_inputs(raw)
