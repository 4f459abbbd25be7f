"""Segment-spec messages map to inputs: who, when, what."""

from __future__ import annotations

import pytest

from schemas.inputs import Identify, MergeInto, Track
from schemas.segment_messages import SegmentMessage
from streams.http.errors import ApiError
from streams.http.segment_spec import batch_inputs, message_inputs
from streams.http.segment_spec import event_time as event_time_of


def event_time(message, now):
    return event_time_of(SegmentMessage.model_validate(message), now)

NOW = 1_700_000_100.0


def test_identify_with_a_user_id_sets_traits_as_attributes():
    [item] = message_inputs("identify", {"userId": "ana", "traits": {"plan": "pro"}}, NOW)
    assert item == Identify(person="ana", at=NOW, attributes={"plan": "pro"})


def test_identify_with_user_and_anonymous_id_folds_the_anonymous_person_in():
    [item] = message_inputs("identify", {"userId": "ana", "anonymousId": "c-1"}, NOW)
    assert isinstance(item, Identify) and (item.person, item.anonymous_id) == ("ana", "c-1")


def test_identify_with_only_an_anonymous_id_describes_the_anonymous_person():
    [item] = message_inputs("identify", {"anonymousId": "c-1", "traits": {"a": 1}}, NOW)
    assert isinstance(item, Identify) and (item.person, item.anonymous_id) == ("anon:c-1", None)


def test_a_numeric_user_id_is_a_string_id():
    [item] = message_inputs("identify", {"userId": 42}, NOW)
    assert item.person == "42"


def test_track_maps_event_properties_and_message_id():
    message = {"userId": "ana", "event": "Order Completed", "properties": {"total": 9}, "messageId": "m-1"}
    [item] = message_inputs("track", message, NOW)
    assert item == Track(person="ana", at=NOW, name="Order Completed", data={"total": 9}, event_id="m-1")


def test_an_anonymous_track_goes_to_the_anonymous_person():
    [item] = message_inputs("track", {"anonymousId": "c-1", "event": "Viewed"}, NOW)
    assert item.person == "anon:c-1"


def test_page_is_a_page_view_named_by_its_name():
    message = {"userId": "ana", "name": "Pricing", "category": "Docs", "properties": {"url": "https://x/p"}}
    [item] = message_inputs("page", message, NOW)
    assert isinstance(item, Track)
    assert (item.type, item.name, item.data) == ("page", "Pricing", {"url": "https://x/p", "category": "Docs"})


def test_a_screen_without_a_name_is_named_screen():
    [item] = message_inputs("screen", {"userId": "ana"}, NOW)
    assert isinstance(item, Track) and (item.type, item.name) == ("screen", "screen")


def test_group_sets_the_group_id_and_prefixed_traits_on_the_person():
    [item] = message_inputs("group", {"userId": "ana", "groupId": "acme", "traits": {"plan": "team"}}, NOW)
    assert item == Identify(person="ana", at=NOW, attributes={"group_id": "acme", "group_plan": "team"})


def test_alias_merges_the_previous_id_into_the_user_id():
    [item] = message_inputs("alias", {"previousId": "old", "userId": "ana"}, NOW)
    assert item == MergeInto(person="old", at=NOW, into="ana")


def test_timestamp_alone_is_taken_as_is():
    assert event_time({"timestamp": "2023-11-14T22:13:20Z"}, NOW) == 1_700_000_000.0


def test_sent_at_corrects_the_senders_clock_skew():
    # The sender's clock is 50 s behind: it sent at 22:14:10 its time, we received at NOW (22:15:00).
    message = {"timestamp": "2023-11-14T22:13:20Z", "sentAt": "2023-11-14T22:14:10Z"}
    assert event_time(message, NOW) == 1_700_000_000.0 + 50


def test_a_batch_level_sent_at_corrects_every_message():
    body = {"sentAt": "2023-11-14T22:14:10Z", "batch": [{"type": "track", "userId": "a", "event": "e", "timestamp": "2023-11-14T22:13:20Z"}]}
    assert batch_inputs(body, NOW)[0].at == 1_700_000_050.0


def test_original_timestamp_stands_in_for_a_missing_timestamp():
    assert event_time({"originalTimestamp": "2023-11-14T22:13:20.000+00:00"}, NOW) == 1_700_000_000.0


def test_without_any_timestamp_it_happened_now():
    assert event_time({}, NOW) == NOW


def test_a_batch_yields_every_message_in_order():
    body = {"batch": [
        {"type": "identify", "userId": "a"},
        {"type": "track", "userId": "a", "event": "e"},
        {"type": "alias", "previousId": "b", "userId": "a"},
    ]}
    assert [i.kind for i in batch_inputs(body, NOW)] == ["identify", "track", "merge_into"]


@pytest.mark.parametrize(
    ("kind", "message", "reason"),
    [
        ("track", {"event": "e"}, "`userId` or `anonymousId` is required"),
        ("track", {"userId": "a"}, "`event` must be a non-empty string"),
        ("track", {"userId": "a", "event": "x" * 101}, "longer than 100 bytes"),
        ("track", {"userId": "a", "event": "e", "properties": []}, "`properties` must be an object"),
        ("track", {"userId": "a", "event": "e", "timestamp": "yesterday"}, "not an ISO 8601 timestamp"),
        ("track", {"userId": "a", "event": "e", "timestamp": "2023-11-14T22:13:20"}, "needs a time zone"),
        ("identify", {"userId": ["a"]}, "`userId` must be a string"),
        ("identify", {"userId": "a", "traits": "x"}, "`traits` must be an object"),
        ("group", {"userId": "a"}, "group needs `groupId`"),
        ("alias", {"userId": "a"}, "alias needs `previousId` and `userId`"),
        ("track", {"userId": "a", "event": "e", "properties": {"b": "x" * 33_000}}, "larger than 32768 bytes"),
    ],
)
def test_bad_messages_are_400_with_the_reason(kind, message, reason):
    with pytest.raises(ApiError, match=reason) as caught:
        message_inputs(kind, message, NOW)
    assert caught.value.status == 400


def test_a_bad_message_in_a_batch_names_its_index():
    body = {"batch": [{"type": "track", "userId": "a", "event": "e"}, {"type": "track", "userId": "a"}]}
    with pytest.raises(ApiError, match=r"batch\[1\]: `event`"):
        batch_inputs(body, NOW)


def test_a_batch_message_of_unknown_type_is_refused():
    with pytest.raises(ApiError, match=r"`batch\[0\].type` must be one of"):
        batch_inputs({"batch": [{"type": "boom", "userId": "a"}]}, NOW)


def test_a_batch_body_needs_a_batch_array():
    with pytest.raises(ApiError, match="`batch` must be an array"):
        batch_inputs({"batch": {}}, NOW)


@pytest.mark.parametrize("address", ["a@x.test, b@y.test", '"A" <a@x.test>', "g: a@x.test;", "nobody"])
def test_an_identify_with_anything_but_one_bare_email_is_refused(address):
    with pytest.raises(ApiError, match=r"`traits\.email` must be one email address") as caught:
        message_inputs("identify", {"userId": "ana", "traits": {"email": address}}, NOW)
    assert caught.value.status == 400


def test_identify_reads_rudderstacks_context_traits_under_the_root_traits():
    message = {"userId": "ana", "context": {"traits": {"plan": "pro", "a": 1}}, "traits": {"a": 2}}
    [item] = message_inputs("identify", message, NOW)
    assert item.attributes == {"plan": "pro", "a": 2}
