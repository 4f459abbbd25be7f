"""Durations: integers with units s m h d w, concatenated."""

import pytest

from schemas.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("48h", 172800), ("48h1m", 172860), ("11d4h48m", 967680), ("2w", 1209600),
     ("-3d", -259200), ("0s", 0), (90, 90)],
)
def test_durations_parse_to_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["48x", "h", "", "1.5h", "3 days", True])
def test_a_malformed_duration_names_the_units(text: object) -> None:
    with pytest.raises(DurationError, match="use s m h d w"):
        parse_duration(text)


def test_durations_format_back_to_their_shortest_spelling() -> None:
    assert format_duration(967680) == "11d4h48m"
    assert format_duration(0) == "0s"
