"""Properties of the time functions over any input: they fail only in the documented way."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from engramdb import InvalidTimestamp
from engramdb.temporal import (
    annotate,
    find_time_mentions,
    parse_query_time,
    parse_timestamp,
    speaker_clock,
    speaker_offset,
)

FAST = settings(max_examples=200, deadline=None, database=None)

# Every code point, surrogates and NUL included: text.characters() leaves surrogates out.
ANY_CHAR = st.characters()
ANY_TEXT = st.text(ANY_CHAR, max_size=80)
DAY = timedelta(hours=23, minutes=59)
OFFSETS = st.timedeltas(min_value=-DAY, max_value=DAY)
ZONES = st.one_of(st.builds(timezone, OFFSETS), st.timezones())
NAIVE_OR_AWARE = st.one_of(st.none(), ZONES)
# Words the rules look for, so that generated texts hit the resolvers and not only the misses.
WORDS = (
    *("yesterday", "today", "tomorrow", "tonight", "recently", "now", "other"),
    *("day", "days", "week", "weekend", "month", "year", "summer", "winter"),
    *("last", "next", "this", "coming", "past", "previous", "the", "a", "few", "several"),
    *("ago", "later", "in", "from", "before", "after", "since", "until", "between", "and", "of"),
    *("2", "3", "12", "1000", "9999", "2023", "1999", "1st", "24th", "2023-04-02", "2023/13/40"),
    *("May", "March", "June", "december", "Monday", "saturday", "Sunday", "ſunday"),
    *("Christmas", "Easter", "Thanksgiving", "will", "went", ".", ","),
)
SENTENCES = st.lists(st.one_of(st.sampled_from(WORDS), ANY_TEXT), max_size=12).map(" ".join)
# Aware reference times far enough from year 1 and 9999 for a zone to be applied to them.
REFERENCES = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES
)
# Any datetime, naive or aware, and often one within a day of year 1 or 9999, where a zone can
# carry the instant out of range.
DATETIMES = st.builds(
    datetime.replace,
    st.one_of(
        st.datetimes(),
        st.datetimes(max_value=datetime(1, 1, 2)),
        st.datetimes(min_value=datetime(9999, 12, 30)),
    ),
    tzinfo=NAIVE_OR_AWARE,
)
TIMESTAMP_TEXT = st.one_of(
    ANY_TEXT,
    DATETIMES.map(datetime.isoformat),
    st.from_regex(r"\A-?\d{9,11}(\.\d{1,3})?\Z"),
    st.from_regex(r"\A\d{1,2}:\d\d [ap]m on \d{1,2} [A-Z][a-z]{2,8}, \d{4}\Z"),
    st.from_regex(r"\A\d{4}/\d{1,2}/\d{1,2}( \(\w{3}\))?( \d{1,2}:\d\d)?\Z"),
)
ANY_TIMESTAMP = st.one_of(
    TIMESTAMP_TEXT,
    st.floats(),
    st.integers(),
    DATETIMES,
    st.none(),
    st.booleans(),
    st.binary(max_size=20),
)


@FAST
@given(ANY_TIMESTAMP)
def test_parse_timestamp_returns_utc_or_raises_invalid_timestamp(value: object) -> None:
    try:
        parsed = parse_timestamp(value)  # type: ignore[arg-type]
    except InvalidTimestamp as error:
        assert len(str(error)) < 500
        return
    assert parsed.tzinfo is UTC
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Not ``parsed == value``: Python never equates a time in a DST gap with another zone's.
        assert parsed == value.astimezone(UTC)


@FAST
@given(ANY_TIMESTAMP)
def test_speaker_clock_shows_the_same_instant(value: object) -> None:
    try:
        instant = parse_timestamp(value)  # type: ignore[arg-type]
    except InvalidTimestamp:
        assert speaker_offset(value) is None
        return
    offset = speaker_offset(value)
    on_clock = speaker_clock(instant, offset)
    assert on_clock == instant
    assert on_clock.utcoffset() is not None


# Zones for the machine's local time: UTC+14 and UTC-11 reach furthest from UTC.
MACHINE_ZONES = ("UTC", "Asia/Tokyo", "Europe/Lisbon", "Pacific/Kiritimati", "Pacific/Pago_Pago")


@contextmanager
def machine_zone(zone: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@FAST
@given(DATETIMES.map(lambda value: value.replace(tzinfo=None)), st.sampled_from(MACHINE_ZONES))
def test_a_naive_datetime_is_read_as_python_reads_it(value: datetime, zone: str) -> None:
    with machine_zone(zone):
        try:
            parsed = parse_timestamp(value)
        except InvalidTimestamp:
            assert speaker_offset(value) is None
            return
        assert abs(parsed.timestamp() - value.timestamp()) < 1e-3
        assert speaker_offset(value) is not None


@FAST
@given(SENTENCES, REFERENCES)
def test_mentions_never_raise_and_are_intervals(text: str, ref: datetime) -> None:
    for mention in find_time_mentions(text, ref):
        assert mention.start < mention.end
    annotate(text, ref)


@FAST
@given(SENTENCES, REFERENCES)
def test_query_windows_never_raise_and_are_intervals(text: str, ref: datetime) -> None:
    window = parse_query_time(text, ref)
    assert window is None or window.start < window.end
