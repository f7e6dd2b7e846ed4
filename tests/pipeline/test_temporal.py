"""Time expressions resolved against the time they were said, and query time windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engramdb import InvalidTimestamp
from engramdb.pipeline.temporal import (
    annotate,
    find_time_mentions,
    parse_query_time,
    parse_timestamp,
)

MON_8_MAY_2023 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
SAT_2_MAR_2024 = datetime(2024, 3, 2, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        ("I went to a support group yesterday.", MON_8_MAY_2023, "yesterday = 7 May 2023"),
        ("the day before yesterday", MON_8_MAY_2023, "the day before yesterday = 6 May 2023"),
        ("this morning I ran", MON_8_MAY_2023, "this morning = 8 May 2023"),
        ("see you tomorrow", MON_8_MAY_2023, "tomorrow = 9 May 2023"),
        ("We met last Saturday", MON_8_MAY_2023, "last Saturday = 6 May 2023"),
        ("last Saturday", SAT_2_MAR_2024, "last Saturday = 24 February 2024"),
        ("two weeks ago I started", MON_8_MAY_2023, "two weeks ago = the week of 24 April 2023"),
        ("3 days ago", MON_8_MAY_2023, "3 days ago = 5 May 2023"),
        ("I'll see you next month", MON_8_MAY_2023, "next month = June 2023"),
        ("last month was rough", datetime(2023, 1, 10, tzinfo=UTC), "last month = December 2022"),
        ("last year", MON_8_MAY_2023, "last year = 2022"),
        ("last weekend", SAT_2_MAR_2024, "last weekend = the weekend of 24 February 2024"),
        ("the week before was busy", MON_8_MAY_2023, "the week before = the week of 1 May 2023"),
        ("last summer was hot", MON_8_MAY_2023, "last summer = June to August 2022"),
        (
            "last summer was hot",
            datetime(2023, 11, 1, tzinfo=UTC),
            "last summer = June to August 2023",
        ),
        ("It's on the 24th of March.", SAT_2_MAR_2024, "24th of March = 24 March 2024"),
        ("On May 1st I ran", MON_8_MAY_2023, "May 1st = 1 May 2023"),
        ("in May we move", datetime(2024, 4, 18, tzinfo=UTC), "in May = May 2024"),
        ("in May we moved", datetime(2023, 12, 1, tzinfo=UTC), "in May = May 2023"),
        ("we went there in 2021", MON_8_MAY_2023, "in 2021 = 2021"),
        ("met her on 2023-04-02", MON_8_MAY_2023, "2023-04-02 = 2 April 2023"),
        ("born on 29 February 2024", MON_8_MAY_2023, "29 February 2024 = 29 February 2024"),
        ("in 2 weeks", MON_8_MAY_2023, "in 2 weeks = the week of 22 May 2023"),
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
        "we march on",
        "the sun is out",
        "we should go",
        "I may be late",
        "a good day",
        "second place",
        "It was a long week for everyone there",
    ],
)
def test_ordinary_words_are_not_dates(text: str) -> None:
    assert find_time_mentions(text, MON_8_MAY_2023) == []


def test_longest_match_wins_and_order_is_kept() -> None:
    mentions = find_time_mentions("the day before yesterday and last Friday", MON_8_MAY_2023)
    assert [m.text for m in mentions] == ["the day before yesterday", "last Friday"]


def test_mentions_are_half_open_intervals() -> None:
    (m,) = find_time_mentions("yesterday", MON_8_MAY_2023)
    assert m.end - m.start == timedelta(days=1)
    assert m.start == datetime(2023, 5, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did I do last week?", datetime(2023, 5, 1), datetime(2023, 5, 8)),
        ("What happened in May 2023?", datetime(2023, 5, 1), datetime(2023, 6, 1)),
        ("two months ago", datetime(2023, 3, 1), datetime(2023, 4, 1)),
        ("what did I buy yesterday", datetime(2023, 5, 7), datetime(2023, 5, 8)),
        ("since March", datetime(2023, 3, 1), datetime(2999, 1, 1)),
        ("anything before 2022?", datetime(1900, 1, 1), datetime(2022, 1, 1)),
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
    ],
)
def test_questions_about_dates_are_not_time_windows(query: str) -> None:
    assert parse_query_time(query, MON_8_MAY_2023) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-05-08T13:56:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08T13:56:00Z", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08T15:56:00+02:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("2023-05-08", datetime(2023, 5, 8, tzinfo=UTC)),
        ("2023-05-08 13:56", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:05 am on 1 January, 2024", datetime(2024, 1, 1, 0, 5, tzinfo=UTC)),
        ("2023/05/20 (Sat) 02:21", datetime(2023, 5, 20, 2, 21, tzinfo=UTC)),
        (1683554160, datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        (
            datetime(2023, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2))),
            datetime(2023, 5, 8, 13, 56, tzinfo=UTC),
        ),
    ],
)
def test_parse_timestamp(value: object, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday-ish", "", "2023-13-45", None, True, [2023]])
def test_bad_timestamps_say_what_to_use(value: object) -> None:
    with pytest.raises(InvalidTimestamp, match="ISO 8601"):
        parse_timestamp(value)
