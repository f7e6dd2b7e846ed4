"""Time expressions resolved against the time they were said, query time windows, timestamps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engramdb import InvalidTimestamp
from engramdb.temporal import (
    annotate,
    find_time_mentions,
    parse_query_time,
    parse_timestamp,
    speaker_clock,
    speaker_offset,
)

MON_8_MAY_2023 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
SAT_2_MAR_2024 = datetime(2024, 3, 2, 9, 15, tzinfo=UTC)  # a leap year
SUN_1_JAN_2023 = datetime(2023, 1, 1, 10, 0, tzinfo=UTC)
THU_18_APR_2024 = datetime(2024, 4, 18, 21, 5, tzinfo=UTC)
MON_15_JAN_2024 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
WED_10_MAY_2023 = datetime(2023, 5, 10, 18, 0, tzinfo=UTC)
SAT_13_MAY_2023 = datetime(2023, 5, 13, 18, 0, tzinfo=UTC)
SUN_14_MAY_2023 = datetime(2023, 5, 14, 18, 0, tzinfo=UTC)
PLUS_2 = timezone(timedelta(hours=2))
PLUS_9 = timezone(timedelta(hours=9))
MINUS_2 = timezone(timedelta(hours=-2))


def _machine_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> Iterator[None]:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is Tokyo's (UTC+9, no daylight saving)."""
    yield from _machine_zone(monkeypatch, "Asia/Tokyo")


@pytest.fixture
def in_lisbon(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is Lisbon's (UTC+0 in winter, UTC+1 in summer)."""
    yield from _machine_zone(monkeypatch, "Europe/Lisbon")


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        # Days named relative to when it was said.
        ("I went to a support group yesterday.", MON_8_MAY_2023, "yesterday = 7 May 2023"),
        ("the day before yesterday", MON_8_MAY_2023, "the day before yesterday = 6 May 2023"),
        ("this morning I ran", MON_8_MAY_2023, "this morning = 8 May 2023"),
        ("dinner tonight?", MON_8_MAY_2023, "tonight = 8 May 2023"),
        ("see you tomorrow", MON_8_MAY_2023, "tomorrow = 9 May 2023"),
        ("the party last night", MON_8_MAY_2023, "last night = 7 May 2023"),
        ("yesterday was a blast", SUN_1_JAN_2023, "yesterday = 31 December 2022"),
        ("yesterday was a blast", datetime(2024, 3, 1, tzinfo=UTC), "yesterday = 29 February 2024"),
        # Weekdays: the one just gone, unless the clause speaks of the future.
        ("We met last Saturday", MON_8_MAY_2023, "last Saturday = 6 May 2023"),
        ("We met last Saturday", SAT_2_MAR_2024, "last Saturday = 24 February 2024"),
        ("On Saturday I swam", MON_8_MAY_2023, "On Saturday = 6 May 2023"),
        ("I'll swim on Saturday", MON_8_MAY_2023, "on Saturday = 13 May 2023"),
        ("next Friday works", MON_8_MAY_2023, "next Friday = 12 May 2023"),
        ("Sunday, May 7 was fun", MON_8_MAY_2023, "Sunday, May 7 = 7 May 2023"),
        # Weeks, weekends, months, years.
        ("last week was busy", MON_8_MAY_2023, "last week = the week of 1 May 2023"),
        (
            "last week was busy",
            datetime(2023, 1, 2, tzinfo=UTC),
            "last week = the week of 26 December 2022",
        ),
        ("this weekend we hike", MON_8_MAY_2023, "this weekend = the weekend of 13 May 2023"),
        ("last weekend", SAT_2_MAR_2024, "last weekend = the weekend of 24 February 2024"),
        (
            "I relaxed over the weekend",
            MON_8_MAY_2023,
            "over the weekend = the weekend of 6 May 2023",
        ),
        ("I'll see you next month", MON_8_MAY_2023, "next month = June 2023"),
        ("last month was rough", datetime(2023, 1, 10, tzinfo=UTC), "last month = December 2022"),
        ("next month we fly", datetime(2023, 12, 31, tzinfo=UTC), "next month = January 2024"),
        ("last year", MON_8_MAY_2023, "last year = 2022"),
        ("the year before last", MON_8_MAY_2023, "the year before last = 2021"),
        # Counted back or ahead.
        ("two weeks ago I started", MON_8_MAY_2023, "two weeks ago = the week of 24 April 2023"),
        ("3 days ago", MON_8_MAY_2023, "3 days ago = 5 May 2023"),
        ("a couple of days ago", MON_8_MAY_2023, "a couple of days ago = 6 May 2023"),
        ("a month ago I quit", MON_8_MAY_2023, "a month ago = April 2023"),
        ("I started surfing five years ago", MON_8_MAY_2023, "five years ago = 2018"),
        ("in 2 weeks", MON_8_MAY_2023, "in 2 weeks = the week of 22 May 2023"),
        ("I'll be back in a week", MON_8_MAY_2023, "in a week = the week of 15 May 2023"),
        ("3 days from now", MON_8_MAY_2023, "3 days from now = 11 May 2023"),
        # Vague counts are spans around the likely time.
        ("a few days ago", MON_8_MAY_2023, "a few days ago = the week of 3 May 2023"),
        ("several weeks ago", MON_8_MAY_2023, "several weeks ago = April 2023"),
        ("a few years ago", MON_8_MAY_2023, "a few years ago = 2017 to 2021"),
        ("the other day", MON_8_MAY_2023, "the other day = the week of 1 May 2023"),
        ("in the past week", MON_8_MAY_2023, "the past week = the week of 1 May 2023"),
        ("over the last 3 months", MON_8_MAY_2023, "the last 3 months = February to May 2023"),
        # Relative to the date told before (or right after).
        ("the week before was busy", MON_8_MAY_2023, "the week before = the week of 1 May 2023"),
        (
            "Last week was busy; the week before was calm.",
            MON_8_MAY_2023,
            "Last week = the week of 1 May 2023; the week before = the week of 24 April 2023",
        ),
        (
            "I moved on May 1. The next day I unpacked.",
            MON_8_MAY_2023,
            "May 1 = 1 May 2023; The next day = 2 May 2023",
        ),
        (
            "I moved on May 1. Two days later I unpacked.",
            MON_8_MAY_2023,
            "May 1 = 1 May 2023; Two days later = 3 May 2023",
        ),
        (
            "the week before 16 November 2023",
            MON_8_MAY_2023,
            "the week before = the week of 6 November 2023",
        ),
        # Seasons (northern hemisphere).
        ("last summer was hot", MON_8_MAY_2023, "last summer = June to August 2022"),
        (
            "last summer was hot",
            datetime(2023, 11, 1, tzinfo=UTC),
            "last summer = June to August 2023",
        ),
        ("this summer will be hot", MON_8_MAY_2023, "this summer = June to August 2023"),
        ("last winter", MON_15_JAN_2024, "last winter = December 2022 to February 2023"),
        ("this winter", MON_15_JAN_2024, "this winter = December 2023 to February 2024"),
        ("the summer of 2021", MON_8_MAY_2023, "the summer of 2021 = June to August 2021"),
        # Month names.
        ("It's on the 24th of March.", SAT_2_MAR_2024, "24th of March = 24 March 2024"),
        ("On May 1st I ran", MON_8_MAY_2023, "May 1st = 1 May 2023"),
        ("in May we moved", datetime(2023, 12, 1, tzinfo=UTC), "in May = May 2023"),
        ("in May we move", THU_18_APR_2024, "in May = May 2024"),  # no tense: the nearer May
        ("in May we moved", THU_18_APR_2024, "in May = May 2023"),
        ("so I need to move in May", THU_18_APR_2024, "in May = May 2024"),
        ("we'll move in May", THU_18_APR_2024, "in May = May 2024"),
        ("in December", MON_15_JAN_2024, "in December = December 2023"),
        ("last May", MON_8_MAY_2023, "last May = May 2022"),
        ("next January", MON_15_JAN_2024, "next January = January 2025"),
        ("May 1st, 2023", MON_8_MAY_2023, "May 1st, 2023 = 1 May 2023"),
        (
            "from June to August we travelled",
            MON_8_MAY_2023,
            "from June to August = June to August 2022",
        ),
        # Calendar dates: spelled out already, nothing to add.
        ("born on 29 February 2024", MON_8_MAY_2023, ""),
        ("we went there in 2021", MON_8_MAY_2023, ""),
        ("in May 2022", MON_8_MAY_2023, ""),
        ("met her on 2023-04-02", MON_8_MAY_2023, "2023-04-02 = 2 April 2023"),
        # Holidays.
        (
            "last Christmas",
            datetime(2023, 12, 25, 18, tzinfo=UTC),
            "last Christmas = 25 December 2022",
        ),
        (
            "on Thanksgiving",
            datetime(2023, 12, 1, tzinfo=UTC),
            "on Thanksgiving = 23 November 2023",
        ),
        ("Easter 2024", MON_8_MAY_2023, "Easter 2024 = 31 March 2024"),
    ],
)
def test_expressions_resolve_against_the_message_time(
    text: str, ref: datetime, expected: str
) -> None:
    assert annotate(text, ref) == expected


@pytest.mark.parametrize(
    "text",
    [
        "May I ask you something?",
        "I may be late",
        "we march on",
        "the sun is out",
        "we should go",
        "a good day",
        "second place",
        "It was a long week for everyone there",
        "Jan's car is red",
        "I run every Saturday",
        "I work Monday to Friday",
        "my Tuesday dance classes",
        "Good Friday service",
        "a picnic in Winter Park",
        "the last week of May",
        "the last year I lived there",
        "there are 30 days in a month",
        "Rome wasn't built in a day",
        "I finished it in 3 days",
        "I'm waking up earlier on Saturdays",
        "The day before the exam I studied.",
        "31 April is not a date",
        "I have 2 kids and 3 cats",
        "How long ago was that?",
        "a fall in prices",
    ],
)
def test_ordinary_words_are_not_dates(text: str) -> None:
    assert find_time_mentions(text, MON_8_MAY_2023) == []


def test_longest_match_wins_and_order_is_kept() -> None:
    mentions = find_time_mentions("the day before yesterday and last Friday", MON_8_MAY_2023)
    assert [m.text for m in mentions] == ["the day before yesterday", "last Friday"]


@pytest.mark.parametrize(
    ("text", "start", "end", "granularity"),
    [
        ("yesterday", datetime(2023, 5, 7), datetime(2023, 5, 8), "day"),
        ("last week", datetime(2023, 5, 1), datetime(2023, 5, 8), "week"),
        ("last weekend", datetime(2023, 5, 6), datetime(2023, 5, 8), "weekend"),
        ("last month", datetime(2023, 4, 1), datetime(2023, 5, 1), "month"),
        ("last summer", datetime(2022, 6, 1), datetime(2022, 9, 1), "season"),
        ("last year", datetime(2022, 1, 1), datetime(2023, 1, 1), "year"),
        ("a few days ago", datetime(2023, 5, 3), datetime(2023, 5, 7), "week"),
        ("a few months ago", datetime(2022, 12, 1), datetime(2023, 4, 1), "season"),
    ],
)
def test_mentions_are_half_open_intervals(
    text: str, start: datetime, end: datetime, granularity: str
) -> None:
    (m,) = find_time_mentions(text, MON_8_MAY_2023)
    assert (m.start, m.end, m.granularity) == (
        start.replace(tzinfo=UTC),
        end.replace(tzinfo=UTC),
        granularity,
    )


def test_an_aware_reference_keeps_the_speakers_calendar() -> None:
    # 00:30 on 8 May in UTC+2 is still 7 May in UTC: "yesterday" is the speaker's 7 May.
    (m,) = find_time_mentions("yesterday", datetime(2023, 5, 8, 0, 30, tzinfo=PLUS_2))
    assert m.start == datetime(2023, 5, 7, tzinfo=PLUS_2)
    assert m.label() == "7 May 2023"


def test_a_naive_reference_is_utc() -> None:
    naive = find_time_mentions("last week", datetime(2023, 5, 8, 13, 56))
    assert naive == find_time_mentions("last week", MON_8_MAY_2023)
    assert naive[0].start.tzinfo is UTC


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did I do last week?", datetime(2023, 5, 1), datetime(2023, 5, 8)),
        ("What happened in May 2023?", datetime(2023, 5, 1), datetime(2023, 6, 1)),
        ("What did I read in May?", datetime(2023, 5, 1), datetime(2023, 6, 1)),
        ("two months ago", datetime(2023, 3, 1), datetime(2023, 4, 1)),
        ("what did I buy yesterday", datetime(2023, 5, 7), datetime(2023, 5, 8)),
        ("what did we do last year", datetime(2022, 1, 1), datetime(2023, 1, 1)),
        ("trips in 2022", datetime(2022, 1, 1), datetime(2023, 1, 1)),
        ("since March", datetime(2023, 3, 1), datetime(2999, 1, 1)),
        ("anything after March?", datetime(2023, 4, 1), datetime(2999, 1, 1)),
        ("anything before 2022?", datetime(1900, 1, 1), datetime(2022, 1, 1)),
        ("books read until last week", datetime(1900, 1, 1), datetime(2023, 5, 8)),
        ("in the past two weeks", datetime(2023, 4, 24), datetime(2023, 5, 9)),
        (
            "Where was John between August 11 and August 15 2022?",
            datetime(2022, 8, 11),
            datetime(2022, 8, 16),
        ),
        (
            "what have I been doing recently?",
            datetime(2023, 4, 8, 13, 56),
            datetime(2023, 5, 8, 13, 56),
        ),
    ],
)
def test_query_time_windows(query: str, start: datetime, end: datetime) -> None:
    window = parse_query_time(query, MON_8_MAY_2023)
    assert window is not None
    assert (window.start, window.end) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    "query",
    [
        "When did Caroline go to the support group?",
        "Where does Maya live?",
        "How long ago was the race?",
        "Which streaming service did I start using most recently?",
        "What did May say about the trip?",
        "What did I say to June?",
    ],
)
def test_questions_without_a_time_constraint(query: str) -> None:
    assert parse_query_time(query, MON_8_MAY_2023) is None


def test_query_windows_follow_as_of() -> None:
    window = parse_query_time("what did I do last week", datetime(2024, 1, 3))  # naive = UTC
    assert window is not None
    assert (window.start, window.end) == (
        datetime(2023, 12, 25, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-05-08T13:56:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08T13:56:00Z", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08t13:56:00z", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08T15:56:00+02:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08", datetime(2023, 5, 8, tzinfo=UTC)),
        ("2023-05-08 13:56", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("  2023-05-08 13:56  ", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:05 am on 1 January, 2024", datetime(2024, 1, 1, 0, 5, tzinfo=UTC)),
        ("12:30 pm on 29 February, 2024", datetime(2024, 2, 29, 12, 30, tzinfo=UTC)),
        ("2023/05/20 (Sat) 02:21", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        ("2023/05/20", datetime(2023, 5, 20, tzinfo=UTC)),
        (1683554160, datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        (1683554160.5, datetime(2023, 5, 8, 13, 56, 0, 500000, tzinfo=UTC)),
        ("1683554160", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        (
            datetime(2023, 5, 8, 15, 56, tzinfo=PLUS_2),
            datetime(2023, 5, 8, 13, 56, tzinfo=UTC),
        ),
    ],
)
def test_parse_timestamp(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value)  # type: ignore[arg-type]
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "yesterday-ish",
        "",
        "2023-13-45",
        "2023-02-29",
        "1:56 pm on 30 February, 2023",
        "2023/05/40 (Sat) 02:21",
        "13:56 on 8 Mayo, 2023",
        None,
        True,
        False,
        [2023],
        float("nan"),
        float("inf"),
        float("-inf"),
        1e300,
        -1e300,
        10**20,
        -(10**20),
        pytest.param(10**5000, id="int-too-long-to-print"),
        "-99999999999",
        # Instants outside the years 1 to 9999 once in UTC.
        datetime(1, 1, 1, tzinfo=PLUS_2),
        datetime(9999, 12, 31, 23, tzinfo=MINUS_2),
        "0001-01-01T00:00:00+02:00",
        "9999-12-31T23:00:00-02:00",
        "2023-05-08\ud800",
        "2023-05-08\x00",
        pytest.param("2023-05-08" + " 13:56" * 200_000, id="long-text"),
        pytest.param("x" * 1_000_000, id="a-megabyte-of-x"),
        b"2023-05-08",
        date(2023, 5, 8),
        Decimal("1683554160"),
        object(),
    ],
)
def test_bad_timestamps_say_what_to_use(value: object) -> None:
    with pytest.raises(InvalidTimestamp, match="ISO 8601") as raised:
        parse_timestamp(value)  # type: ignore[arg-type]
    assert raised.value.value is value
    assert len(str(raised.value)) < 400  # a megabyte of junk is not a megabyte of message


def test_bad_timestamps_are_named_by_the_caller() -> None:
    with pytest.raises(InvalidTimestamp, match=r"^as_of 'soon' is not a date"):
        parse_timestamp("soon", where="as_of")
    with pytest.raises(InvalidTimestamp, match=r"^timestamp 'soon' is not a date"):
        parse_timestamp("soon")


def test_a_naive_datetime_is_local_time(in_tokyo: None) -> None:
    naive = datetime(2023, 5, 8, 22, 56)  # 22:56 in Tokyo is 13:56 in UTC
    assert parse_timestamp(naive) == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_timestamp(naive).timestamp() == naive.timestamp()
    assert abs(parse_timestamp(datetime.now()) - datetime.now(UTC)) < timedelta(seconds=5)


def test_naive_text_is_utc_on_any_machine(in_tokyo: None) -> None:
    assert parse_timestamp("2023-05-08T13:56:00") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_timestamp("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def test_every_form_of_one_instant_is_that_instant(in_tokyo: None) -> None:
    forms: list[str | datetime | int | float] = [
        datetime(2023, 5, 8, 22, 56),
        datetime(2023, 5, 8, 22, 56, tzinfo=PLUS_9),
        datetime(2023, 5, 8, 15, 56, tzinfo=PLUS_2),
        "2023-05-08T13:56:00Z",
        "2023-05-08T13:56:00",
        "2023-05-08T15:56:00+02:00",
        1683554160,
        1683554160.0,
        "1683554160",
    ]
    assert {parse_timestamp(form) for form in forms} == {MON_8_MAY_2023}


def test_a_naive_datetime_that_is_not_an_instant_in_utc(in_tokyo: None) -> None:
    # 05:00 on 1 January of year 1 in Tokyo is in year 0 in UTC.
    with pytest.raises(InvalidTimestamp, match="datetime"):
        parse_timestamp(datetime(1, 1, 1, 5))


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        (datetime(2023, 5, 8, 15, 56, tzinfo=PLUS_2), 7200),
        (datetime(2023, 5, 8, 11, 56, tzinfo=MINUS_2), -7200),
        (datetime(2023, 5, 8, 13, 56, tzinfo=UTC), 0),
        ("2023-05-08T15:56:00+02:00", 7200),
        ("2023-05-08T06:26:00-07:30", -27000),
        ("2023-05-08T13:56:00Z", 0),
        (datetime(2023, 5, 8, 22, 56), 9 * 3600),  # local: Tokyo
        ("2023-05-08T13:56:00", None),  # names no clock
        ("1:56 pm on 8 May, 2023", None),
        (1683554160, None),
        ("1683554160", None),
        (None, None),
        ("not a date", None),
        ("0001-01-01T00:00:00+02:00", None),  # not an instant parse_timestamp accepts
    ],
)
def test_speaker_offset(raw: object, offset: int | None, in_tokyo: None) -> None:
    assert speaker_offset(raw) == offset


def test_speaker_offset_of_a_naive_datetime_is_the_local_one_at_that_instant(
    in_lisbon: None,
) -> None:
    assert speaker_offset(datetime(2023, 1, 15, 12, 0)) == 0
    assert speaker_offset(datetime(2023, 7, 15, 12, 0)) == 3600


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (7200, datetime(2023, 5, 8, 15, 56, tzinfo=PLUS_2)),
        (-7200, datetime(2023, 5, 8, 11, 56, tzinfo=MINUS_2)),
        (None, MON_8_MAY_2023),
        (0, MON_8_MAY_2023),
    ],
)
def test_speaker_clock(offset: int | None, expected: datetime) -> None:
    on_clock = speaker_clock(MON_8_MAY_2023, offset)
    assert on_clock == MON_8_MAY_2023
    assert (on_clock.hour, on_clock.utcoffset()) == (expected.hour, expected.utcoffset())


def test_speaker_clock_round_trips_the_speakers_offset() -> None:
    raw = "2023-05-08T00:30:00+02:00"
    on_clock = speaker_clock(parse_timestamp(raw), speaker_offset(raw))
    assert on_clock.isoformat() == raw
    assert annotate("yesterday", on_clock) == "yesterday = 7 May 2023"


@pytest.mark.parametrize(
    ("instant", "offset"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), -7200),  # would be year 0
        (datetime(9999, 12, 31, 23, tzinfo=UTC), 7200),  # would be year 10000
        (MON_8_MAY_2023, 86_400),  # not an offset
        (MON_8_MAY_2023, 10**30),
    ],
)
def test_speaker_clock_falls_back_to_utc(instant: datetime, offset: int) -> None:
    on_clock = speaker_clock(instant, offset)
    assert on_clock == instant
    assert on_clock.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "ref", "start"),
    [
        # Said on a weekday, the clause's tense decides.
        ("I finished reading it this weekend", WED_10_MAY_2023, datetime(2023, 5, 6)),
        ("Did you do anything fun this weekend?", WED_10_MAY_2023, datetime(2023, 5, 6)),
        ("I'm going hiking this weekend", WED_10_MAY_2023, datetime(2023, 5, 13)),
        ("We'll go hiking this weekend", WED_10_MAY_2023, datetime(2023, 5, 13)),
        ("this weekend we hike", WED_10_MAY_2023, datetime(2023, 5, 13)),
        # Said on the weekend, it is this one either way.
        ("I finished reading it this weekend", SAT_13_MAY_2023, datetime(2023, 5, 13)),
        ("I'm going hiking this weekend", SAT_13_MAY_2023, datetime(2023, 5, 13)),
        ("I finished reading it this weekend", SUN_14_MAY_2023, datetime(2023, 5, 13)),
        ("I'm going hiking this weekend", SUN_14_MAY_2023, datetime(2023, 5, 13)),
    ],
)
def test_this_weekend_follows_the_tense(text: str, ref: datetime, start: datetime) -> None:
    (m,) = find_time_mentions(text, ref)
    assert (m.start, m.end, m.granularity) == (
        start.replace(tzinfo=UTC),
        start.replace(tzinfo=UTC) + timedelta(days=2),
        "weekend",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I finished it this week", "this week = the week of 8 May 2023"),
        ("I'll finish it this week", "this week = the week of 8 May 2023"),
        ("I finished it this month", "this month = May 2023"),
        ("I'll finish it this month", "this month = May 2023"),
        ("I finished it this year", "this year = 2023"),
    ],
)
def test_this_week_month_and_year_are_current_in_either_tense(text: str, expected: str) -> None:
    assert annotate(text, WED_10_MAY_2023) == expected


def test_what_did_i_do_this_weekend_asked_midweek() -> None:
    window = parse_query_time("what did I do this weekend?", WED_10_MAY_2023)
    assert window is not None
    assert (window.start, window.end) == (
        datetime(2023, 5, 6, tzinfo=UTC),
        datetime(2023, 5, 8, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("Saturday or ſaturday?", MON_8_MAY_2023),  # re.I takes the long s for an "s"
        ("next year", datetime(9999, 6, 1, tzinfo=UTC)),
        ("last year", datetime(1, 6, 1, tzinfo=UTC)),
        ("next Christmas", datetime(9999, 12, 26, tzinfo=UTC)),
    ],
)
def test_mentions_that_are_no_date_are_dropped(text: str, ref: datetime) -> None:
    assert [m.text for m in find_time_mentions(text, ref)] in ([], ["Saturday"])


@pytest.mark.parametrize(
    ("query", "as_of"),
    [
        ("until yesterday", datetime(1900, 1, 1, tzinfo=UTC)),
        ("since last year", datetime(5000, 6, 1, tzinfo=UTC)),
        ("after next month", datetime(2998, 12, 15, tzinfo=UTC)),
    ],
)
def test_a_mention_beyond_the_far_bound_is_not_opened(query: str, as_of: datetime) -> None:
    window = parse_query_time(query, as_of)
    assert window is not None
    assert window.start < window.end
    (mention,) = find_time_mentions(query, as_of)
    assert (window.start, window.end) == (mention.start, mention.end)
