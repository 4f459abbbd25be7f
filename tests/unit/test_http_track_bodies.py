"""Track API bodies are checked against their models and Customer.io's limits before anything is published."""

import base64

import pytest

from schemas.inputs import Devices, Identify, MergeInto, Unsubscribe
from schemas.track_api import AnonymousTrackBody, DeviceBody, IdentifyBody, MergeBody, TrackBody
from streams.http.auth import check_basic_auth
from streams.http.errors import ApiError
from streams.http.track_api import anonymous_track_input, device_input, identify_inputs, merge_input
from streams.http.track_api import track_input as track_from_model
from streams.http.validation import parse_model


def track_input(person, body, now):
    return track_from_model(person, parse_model(TrackBody, body), now)


def identify_input(person, body, now):
    return identify_inputs(person, parse_model(IdentifyBody, body), now)[0]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_right_credentials_pass():
    check_basic_auth(basic("site", "key"), "site", "key")


@pytest.mark.parametrize("header", [None, "Bearer x", "Basic !!!", basic("site", "wrong"), basic("other", "key")])
def test_wrong_or_missing_credentials_are_401(header):
    with pytest.raises(ApiError) as caught:
        check_basic_auth(header, "site", "key")
    assert caught.value.status == 401


def test_track_uses_the_event_timestamp_when_given():
    item = track_input("ana", {"name": "signed_up", "timestamp": 1700000000, "id": "e1"}, now=5.0)
    assert (item.at, item.event_id, item.name) == (1700000000.0, "e1", "signed_up")


def test_track_without_a_timestamp_happens_now():
    assert track_input("ana", {"name": "signed_up"}, now=5.0).at == 5.0


@pytest.mark.parametrize("kind", ["event", "page", "screen"])
def test_track_keeps_the_type(kind):
    assert track_input("ana", {"name": "/pricing", "type": kind}, now=5.0).type == kind


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "`name` is required"),
        ({"name": ""}, "`name` must not be empty"),
        ({"name": "  "}, "`name` must not be blank"),
        ({"name": "x" * 101}, "cannot be longer than 100 bytes"),
        ({"name": "é" * 51}, "cannot be longer than 100 bytes"),
        ({"name": "a", "data": [1]}, "`data` must be an object"),
        ({"name": "a", "data": {"blob": "x" * 100_001}}, "event data cannot be longer than 100000 bytes"),
        ({"name": "a", "timestamp": "yesterday"}, "`timestamp` must be Unix seconds"),
        ({"name": "a", "timestamp": True}, "`timestamp` must be Unix seconds"),
        ({"name": "a", "timestamp": 1e15}, "`timestamp` must be Unix seconds"),
        ({"name": "a", "type": "click"}, "`type` must be one of event, page or screen"),
        ({"name": "a", "id": 7}, "`id` must be a string"),
    ],
)
def test_bad_track_bodies_are_400_with_the_reason(body, message):
    with pytest.raises(ApiError, match=message) as caught:
        track_input("ana", body, now=1.0)
    assert caught.value.status == 400


def test_identify_refuses_more_than_300_attributes():
    with pytest.raises(ApiError, match="more than 300 attributes"):
        identify_input("ana", {f"a{i}": i for i in range(301)}, now=1.0)


def test_identify_accepts_exactly_300_attributes():
    assert len(identify_input("ana", {f"a{i}": i for i in range(300)}, now=1.0).attributes) == 300


def test_identify_refuses_an_attribute_name_over_150_bytes():
    with pytest.raises(ApiError, match="longer than 150 bytes"):
        identify_input("ana", {"n" * 151: 1}, now=1.0)


def test_identify_refuses_a_value_over_1000_bytes():
    with pytest.raises(ApiError, match="'bio' cannot be longer than 1000 bytes"):
        identify_input("ana", {"bio": "x" * 1001}, now=1.0)


def test_identify_keeps_the_attributes():
    assert identify_input("ana", {"email": "a@example.com"}, now=2.0).attributes == {"email": "a@example.com"}


def test_identify_with_update_flag_only_updates():
    item = identify_input("ana", {"_update": True, "plan": "pro"}, now=2.0)
    assert (item.update_only, item.attributes) == (True, {"plan": "pro"})


def test_identify_moves_anonymous_id_out_of_the_attributes():
    item = identify_input("ana", {"anonymous_id": "cookie-1", "email": "a@example.com"}, now=2.0)
    assert (item.anonymous_id, item.attributes) == ("cookie-1", {"email": "a@example.com"})


def test_identify_keeps_created_at_as_an_attribute():
    assert identify_input("ana", {"created_at": 1700000000}, now=2.0).attributes["created_at"] == 1700000000


def test_identify_with_unsubscribed_also_yields_an_unsubscribe():
    inputs = identify_inputs("ana", parse_model(IdentifyBody, {"unsubscribed": True}), now=2.0)
    assert inputs == [
        Identify(person="ana", at=2.0, attributes={"unsubscribed": True}),
        Unsubscribe(person="ana", at=2.0, unsubscribed=True),
    ]


def test_identify_with_unsubscribed_false_resubscribes():
    inputs = identify_inputs("ana", parse_model(IdentifyBody, {"unsubscribed": False}), now=2.0)
    assert inputs[1] == Unsubscribe(person="ana", at=2.0, unsubscribed=False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"_update": "yes"}, "`_update` must be true or false"),
        ({"created_at": "last week"}, "`created_at` must be Unix seconds"),
        ({"email": 5}, "`email` must be a string"),
        ({"unsubscribed": "true"}, "`unsubscribed` must be true or false"),
        ({"anonymous_id": 12}, "`anonymous_id` must be a string"),
    ],
)
def test_bad_identify_bodies_are_400_with_the_reason(body, message):
    with pytest.raises(ApiError, match=message) as caught:
        parse_model(IdentifyBody, body)
    assert caught.value.status == 400


def test_an_anonymous_event_belongs_to_the_anonymous_person():
    body = parse_model(AnonymousTrackBody, {"name": "viewed", "anonymous_id": "cookie-1", "data": {"x": 1}})
    item = anonymous_track_input(body, now=3.0)
    assert (item.person, item.name, item.data) == ("anon:cookie-1", "viewed", {"x": 1})


def test_an_anonymous_event_without_anonymous_id_is_refused():
    with pytest.raises(ApiError, match="`anonymous_id` is required") as caught:
        parse_model(AnonymousTrackBody, {"name": "viewed"})
    assert caught.value.status == 400


def test_a_device_body_becomes_an_add_devices_input():
    body = {"device": {"id": "tok-1", "platform": "ios", "last_used": 1700000000, "app_version": "2.1"}}
    assert device_input("ana", parse_model(DeviceBody, body), now=4.0) == Devices(
        person="ana", at=4.0, action="add", device_id="tok-1", platform="ios",
        last_used=1700000000.0, attributes={"app_version": "2.1"},
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "`device` is required"),
        ({"device": {"platform": "ios"}}, "`device.id` is required"),
        ({"device": {"id": "t", "platform": "windows"}}, "`device.platform` must be one of ios or android"),
        ({"device": {"id": "t", "platform": "ios", "last_used": "now"}}, "`device.last_used` must be Unix seconds"),
    ],
)
def test_bad_device_bodies_are_400(body, message):
    with pytest.raises(ApiError, match=message):
        parse_model(DeviceBody, body)


def test_merge_customers_merges_the_secondary_into_the_primary():
    item = merge_input(parse_model(MergeBody, {"primary": {"id": "ana"}, "secondary": {"id": "ana-dup"}}), now=5.0)
    assert item == MergeInto(person="ana-dup", at=5.0, into="ana")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"primary": {"email": "a@example.com"}, "secondary": {"id": "b"}}, "Nudge identifies people by `id` only"),
        ({"primary": {"id": "a"}, "secondary": {"cio_id": "f00"}}, "Nudge identifies people by `id` only"),
        ({"primary": {"id": "a"}}, "`secondary` is required"),
        ({"primary": {"id": "a"}, "secondary": {"id": "a"}}, "the same person"),
        ({"primary": {"phone": "1"}, "secondary": {"id": "a"}}, "`primary.id` is required"),
    ],
)
def test_bad_merges_are_400_with_the_reason(body, message):
    with pytest.raises(ApiError, match=message):
        parse_model(MergeBody, body)
