"""Track API bodies are checked against Customer.io's limits before anything is published."""

import base64

import pytest

from streams.http.track_api import ApiError, check_basic_auth, identify_input, track_input


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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "non-empty string `name`"),
        ({"name": ""}, "non-empty string `name`"),
        ({"name": "x" * 101}, "longer than 100 bytes"),
        ({"name": "a", "data": [1]}, "`data` must be a JSON object"),
        ({"name": "a", "timestamp": "yesterday"}, "Unix seconds"),
        ({"name": "a", "timestamp": True}, "Unix seconds"),
        ({"name": "a", "type": "click"}, "event, page, screen"),
        ({"name": "a", "id": 7}, "`id` must be a string"),
    ],
)
def test_bad_track_bodies_are_400_with_the_reason(body, message):
    with pytest.raises(ApiError, match=message) as caught:
        track_input("ana", body, now=1.0)
    assert caught.value.status == 400


def test_event_data_over_100kb_is_413():
    with pytest.raises(ApiError) as caught:
        track_input("ana", {"name": "a", "data": {"blob": "x" * 100_001}}, now=1.0)
    assert caught.value.status == 413


def test_identify_refuses_more_than_300_attributes():
    with pytest.raises(ApiError, match="too many attributes"):
        identify_input("ana", {f"a{i}": i for i in range(301)}, now=1.0)


def test_identify_refuses_a_value_over_1000_bytes():
    with pytest.raises(ApiError, match="longer than 1000 bytes"):
        identify_input("ana", {"bio": "x" * 1001}, now=1.0)


def test_identify_keeps_the_attributes():
    assert identify_input("ana", {"email": "a@example.com"}, now=2.0).attributes == {"email": "a@example.com"}
