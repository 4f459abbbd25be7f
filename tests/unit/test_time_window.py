"""Time windows: inside means now; outside means the next opening in the person's zone."""

from datetime import UTC, datetime

from agents.person.time_window import next_open, resolve_zone
from schemas.campaigns import TimeWindowSpec

WEEKDAYS = TimeWindowSpec.model_validate(
    {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_inside_the_window_goes_now() -> None:
    t = utc("2026-03-06T17:30")  # 12:30 in New York, a Friday
    assert next_open(WEEKDAYS, resolve_zone("America/New_York", "UTC"), t) == t


def test_after_hours_on_friday_waits_for_monday_morning_local_time() -> None:
    t = utc("2026-03-06T17:30")  # 18:30 in Berlin
    assert next_open(WEEKDAYS, resolve_zone("Europe/Berlin", "UTC"), t) == utc("2026-03-09T08:00")


def test_an_unknown_or_missing_zone_falls_back() -> None:
    assert resolve_zone("Mars/Olympus_Mons", "UTC").key == "UTC"
    assert resolve_zone(None, "Europe/Paris").key == "Europe/Paris"


def test_an_overnight_window_that_opened_yesterday_is_still_open() -> None:
    night = TimeWindowSpec.model_validate({"from": "22:00", "to": "06:00"})
    t = utc("2026-03-07T03:00")
    assert next_open(night, resolve_zone("UTC", "UTC"), t) == t
    assert next_open(night, resolve_zone("UTC", "UTC"), utc("2026-03-07T07:00")) == utc("2026-03-07T22:00")
