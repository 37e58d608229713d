"""Go-style duration strings: parsing, formatting and the admission rule's expression agree (pure).

No cluster: the pattern is checked with Python's re, which agrees with RE2 on this grammar.
"""

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execflow.api.durations import DURATION_PATTERN, format_duration, parse_duration

MAX_DELTA = datetime.timedelta(days=10_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", datetime.timedelta(0)),
        ("0s", datetime.timedelta(0)),
        ("500ms", datetime.timedelta(milliseconds=500)),
        ("30s", datetime.timedelta(seconds=30)),
        ("5m", datetime.timedelta(minutes=5)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("1.5s", datetime.timedelta(seconds=1.5)),
        ("2h45m30.25s", datetime.timedelta(hours=2, minutes=45, seconds=30.25)),
        ("250us", datetime.timedelta(microseconds=250)),
        ("1500ns", datetime.timedelta(microseconds=2)),
        ("1m1m", datetime.timedelta(minutes=2)),
        ("48h", datetime.timedelta(days=2)),
    ],
)
def test_parse_duration_accepts_go_style_strings(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "5", "10 s", "5min", "1d", "-5s", "+5s", "1.s", ".5s", "s", "5m ", "1h 30m", "ms5", "5S"],
)
def test_parse_duration_rejects_malformed_strings_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*expected a Go-style duration"):
        parse_duration(text)


def test_parse_duration_rejects_values_too_large_for_a_timedelta() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_duration("999999999999h")


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(milliseconds=500), "500ms"),
        (datetime.timedelta(microseconds=1500), "1500us"),
        (datetime.timedelta(seconds=30), "30s"),
        (datetime.timedelta(minutes=5), "5m"),
        (datetime.timedelta(hours=1, minutes=30), "1h30m"),
        (datetime.timedelta(seconds=1.5), "1.5s"),
        (datetime.timedelta(hours=1, seconds=5), "1h5s"),
        (datetime.timedelta(days=2), "48h"),
    ],
)
def test_format_duration_writes_the_shortest_go_style_string(
    delta: datetime.timedelta, expected: str
) -> None:
    assert format_duration(delta) == expected


def test_format_duration_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(datetime.timedelta(seconds=-1))


@given(st.timedeltas(min_value=datetime.timedelta(0), max_value=MAX_DELTA))
def test_formatted_durations_parse_back_to_the_same_timedelta(delta: datetime.timedelta) -> None:
    text = format_duration(delta)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == delta


@given(st.from_regex(r"\A([0-9]{1,4}(\.[0-9]{1,6})?(ns|us|ms|s|m|h)){1,4}\Z"))
def test_every_string_the_pattern_admits_parses(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) >= datetime.timedelta(0)


@given(st.text(alphabet="0123456789.hmsunµ +-dD", max_size=8))
def test_parse_duration_succeeds_exactly_when_the_pattern_matches(text: str) -> None:
    matches = re.fullmatch(DURATION_PATTERN, text) is not None
    try:
        parse_duration(text)
    except ValueError:
        parsed = False
    else:
        parsed = True
    assert parsed == matches
