"""Time: parse caller timestamps, resolve relative expressions, read a query's time window.

All rule-based and offline. Expressions are resolved against a reference time — the message's own
timestamp at write time ("yesterday" said on 8 May 2023 is 7 May 2023), or ``as_of`` for a query.
Intervals are half-open ``[start, end)`` in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..errors import InvalidTimestamp
from ..types import TimeMention

MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
WEEKDAYS = {
    d: i
    for i, d in enumerate(
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    )
}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "couple of": 2,
    "a few": 3,
    "few": 3,
    "several": 3,
}
SEASONS = {"spring": (3, 3), "summer": (6, 3), "autumn": (9, 3), "fall": (9, 3), "winter": (12, 3)}

_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|"
    r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NUM = (
    r"(?P<n>\d+|a couple of|couple of|a few|few|several|an?|one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve)"
)
_UNIT = r"(?P<unit>day|week|month|year|weekend)s?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_WEEKDAY = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"

# --- caller timestamps ------------------------------------------------------------------------

_LOCOMO = re.compile(
    r"^\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})\s*$", re.I
)
_LONGMEMEVAL = re.compile(r"^\s*(\d{4})/(\d{2})/(\d{2})\s*(?:\([A-Za-z]+\))?\s*(\d{2}):(\d{2})\s*$")


def parse_timestamp(value: object) -> datetime:
    """A caller-supplied time as an aware UTC datetime.

    Accepts ISO 8601 (with or without zone or time, ``Z`` too), datetimes, epoch seconds, and
    the benchmark forms ``1:56 pm on 8 May, 2023`` and ``2023/05/20 (Sat) 02:21``. Naive values
    are taken as UTC.

    Raises:
        InvalidTimestamp: anything else.
    """
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, bool):
        raise InvalidTimestamp(value)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidTimestamp(value) from exc
    if not isinstance(value, str) or not value.strip():
        raise InvalidTimestamp(value)
    text = value.strip()
    for parse in (_parse_iso, _parse_locomo, _parse_longmemeval):
        parsed = parse(text)
        if parsed is not None:
            return _utc(parsed)
    raise InvalidTimestamp(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _parse_locomo(text: str) -> datetime | None:
    m = _LOCOMO.match(text)
    if not m or m.group(5).lower() not in MONTHS:
        return None
    hour = int(m.group(1)) % 12 + (12 if m.group(3).lower() == "pm" else 0)
    try:
        return datetime(
            int(m.group(6)), MONTHS[m.group(5).lower()], int(m.group(4)), hour, int(m.group(2))
        )
    except ValueError:
        return None


def _parse_longmemeval(text: str) -> datetime | None:
    m = _LONGMEMEVAL.match(text)
    if not m:
        return None
    try:
        year, month, day, hour, minute = (int(g) for g in m.groups())
        return datetime(year, month, day, hour, minute)
    except ValueError:
        return None


# --- intervals ----------------------------------------------------------------------------------


def _day(ref: datetime, offset: int = 0) -> tuple[datetime, datetime]:
    start = ref.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=offset)
    return start, start + timedelta(days=1)


def _week(ref: datetime, offset: int = 0) -> tuple[datetime, datetime]:
    start = _day(ref)[0] - timedelta(days=ref.weekday()) + timedelta(weeks=offset)
    return start, start + timedelta(weeks=1)


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _month(ref: datetime, offset: int = 0) -> tuple[datetime, datetime]:
    y, m = _add_months(ref.year, ref.month, offset)
    y2, m2 = _add_months(y, m, 1)
    tz = ref.tzinfo
    return datetime(y, m, 1, tzinfo=tz), datetime(y2, m2, 1, tzinfo=tz)


def _year(ref: datetime, offset: int = 0) -> tuple[datetime, datetime]:
    tz = ref.tzinfo
    return (
        datetime(ref.year + offset, 1, 1, tzinfo=tz),
        datetime(ref.year + offset + 1, 1, 1, tzinfo=tz),
    )


def _weekend(ref: datetime, offset: int) -> tuple[datetime, datetime]:
    start = _week(ref, offset)[0] + timedelta(days=5)
    return start, start + timedelta(days=2)


def _months_span(ref: datetime, year: int, month: int, count: int) -> tuple[datetime, datetime]:
    y2, m2 = _add_months(year, month, count)
    return datetime(year, month, 1, tzinfo=ref.tzinfo), datetime(y2, m2, 1, tzinfo=ref.tzinfo)


# --- rules -------------------------------------------------------------------------------------

Resolved = tuple[datetime, datetime, str]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str], datetime], Resolved | None]]


def _n(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text.lower()]


def _ago(m: re.Match[str], ref: datetime) -> Resolved | None:
    n, unit = _n(m.group("n")), m.group("unit").lower()
    sign = -1 if m.group("dir").lower() == "ago" else 1
    return _shift(ref, unit, sign * n)


def _in_n(m: re.Match[str], ref: datetime) -> Resolved | None:
    return _shift(ref, m.group("unit").lower(), _n(m.group("n")))


def _shift(ref: datetime, unit: str, n: int) -> Resolved | None:
    if abs(n) > 200:
        return None
    if unit == "day":
        return (*_day(ref, n), "day")
    if unit == "week":
        return (*_week(ref, n), "week")
    if unit == "weekend":
        return (*_weekend(ref, n), "weekend")
    if unit == "month":
        return (*_month(ref, n), "month")
    return (*_year(ref, n), "year")


def _relative_unit(m: re.Match[str], ref: datetime) -> Resolved | None:
    which, unit = m.group("which").lower(), m.group("unit").lower()
    offset = {"last": -1, "past": -1, "previous": -1, "this": 0, "next": 1}[which]
    return _shift(ref, unit, offset)


def _named_day(m: re.Match[str], ref: datetime) -> Resolved | None:
    word = m.group(0).lower()
    if "day before yesterday" in word:
        return (*_day(ref, -2), "day")
    if "day after tomorrow" in word:
        return (*_day(ref, 2), "day")
    if "yesterday" in word or "last night" in word:
        return (*_day(ref, -1), "day")
    if "tomorrow" in word:
        return (*_day(ref, 1), "day")
    return (*_day(ref), "day")


def _weekday(m: re.Match[str], ref: datetime) -> Resolved | None:
    target = WEEKDAYS[m.group("weekday").lower()]
    which = (m.group("which") or "").lower()
    diff = ref.weekday() - target
    if which == "next":
        return (*_day(ref, (target - ref.weekday()) % 7 or 7), "day")
    if which == "this":
        return (*_day(ref, target - ref.weekday()), "day")
    # "last Saturday" / "on Saturday" in a conversation about what happened: the most recent one
    # before today ("last Saturday" said on a Saturday is a week ago).
    return (*_day(ref, -(diff % 7 or 7)), "day")


def _week_before(m: re.Match[str], ref: datetime) -> Resolved | None:
    return (
        *(_weekend(ref, -1) if "weekend" in m.group(0).lower() else _week(ref, -1)),
        "weekend" if "weekend" in m.group(0).lower() else "week",
    )


def _season(m: re.Match[str], ref: datetime) -> Resolved | None:
    start_month, length = SEASONS[m.group("season").lower()]
    which = m.group("which").lower()
    # The season "of" a year starts in that year (winter 2023 = Dec 2023 - Feb 2024).
    current = ref.year if ref.month >= start_month else ref.year - 1
    if start_month != 12 and ref.month < start_month:
        current = ref.year  # this year's spring/summer/autumn has not started yet
    ended = _months_span(ref, current, start_month, length)[1] <= ref
    if which in ("last", "past"):
        year = current if ended else current - 1
    elif which == "next":
        year = current + 1 if ref >= _months_span(ref, current, start_month, length)[0] else current
    else:
        year = current
    return (*_months_span(ref, year, start_month, length), "season")


def _nearest_year(ref: datetime, month: int, day: int, which: str) -> int | None:
    """The year that puts (month, day) nearest to ``ref``, favouring the past two to one.

    "On the 24th of March" said on 2 March is this March; "in May" said in December is the May
    just gone; "next"/"last" force the direction.
    """
    best: tuple[float, int] | None = None
    for year in (ref.year - 1, ref.year, ref.year + 1):
        try:
            moment = datetime(year, month, day, tzinfo=ref.tzinfo)
        except ValueError:
            continue
        ahead = (moment - ref).total_seconds() / 86400
        if (which == "next" and ahead <= 0) or (which == "last" and ahead > 0):
            continue
        cost = 2 * ahead if ahead > 0 else -ahead
        if best is None or cost < best[0]:
            best = (cost, year)
    return None if best is None else best[1]


def _month_name(m: re.Match[str], ref: datetime) -> Resolved | None:
    groups = m.groupdict()
    month = MONTHS[m.group("month").lower()]
    which = (groups.get("which") or "").lower()
    day = int(groups["day"]) if groups.get("day") else None
    year = (
        int(groups["year"]) if groups.get("year") else _nearest_year(ref, month, day or 15, which)
    )
    if year is None:
        return None
    if day is None:
        return (*_months_span(ref, year, month, 1), "month")
    try:
        start = datetime(year, month, day, tzinfo=ref.tzinfo)
    except ValueError:
        return None
    return start, start + timedelta(days=1), "day"


def _year_only(m: re.Match[str], ref: datetime) -> Resolved | None:
    return (*_year(ref.replace(year=int(m.group("year"))), 0), "year")


def _iso_date(m: re.Match[str], ref: datetime) -> Resolved | None:
    try:
        start = datetime(
            int(m.group("y")), int(m.group("mo")), int(m.group("d")), tzinfo=ref.tzinfo
        )
    except ValueError:
        return None
    return start, start + timedelta(days=1), "day"


def _compile(pattern: str, flags: int = re.I) -> re.Pattern[str]:
    return re.compile(pattern, flags)


# Month names must be capitalised: "may" and "march" are ordinary words too.
_MONTH_CAP = (
    "(?P<month>" + "|".join(sorted({n.capitalize() for n in MONTHS}, key=len, reverse=True)) + ")"
)

RULES: list[Rule] = [
    (_compile(r"\b(?P<y>(?:19|20)\d{2})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})\b"), _iso_date),
    (_compile(r"\bthe day (?:before yesterday|after tomorrow)\b"), _named_day),
    (
        _compile(
            r"\b(?:yesterday|today|tonight|tomorrow|last night|this (?:morning|afternoon|"
            r"evening))\b"
        ),
        _named_day,
    ),
    (_compile(rf"\b{_NUM} {_UNIT} (?P<dir>ago|from now)\b"), _ago),
    (_compile(rf"\bin {_NUM} {_UNIT}\b"), _in_n),
    (_compile(r"\bthe (?:week|weekend) before\b"), _week_before),
    (
        _compile(
            r"\b(?P<which>last|this|next|past|previous) (?P<unit>day|week|weekend|month|"
            r"year)\b"
        ),
        _relative_unit,
    ),
    (_compile(rf"\b(?:(?P<which>last|this|next|on) )?{_WEEKDAY}\b"), _weekday),
    (
        _compile(
            r"\b(?P<which>last|this|next|past) (?P<season>spring|summer|autumn|fall|"
            r"winter)\b"
        ),
        _season,
    ),
    (_compile(rf"\b{_DAY}(?: of)? {_MONTH_CAP}(?:,? {_YEAR})?\b", 0), _month_name),
    (_compile(rf"\b{_MONTH_CAP} {_DAY}(?:,? {_YEAR})?\b", 0), _month_name),
    (_compile(rf"\b{_MONTH_CAP},? {_YEAR}\b", 0), _month_name),
    (
        _compile(
            rf"\b(?P<which>[Ll]ast|[Nn]ext|[Tt]his|[Ii]n|[Ss]ince|[Bb]efore|[Aa]fter|"
            rf"[Ee]arly|[Ll]ate|[Mm]id|[Dd]uring) {_MONTH_CAP}\b",
            0,
        ),
        _month_name,
    ),
    (_compile(rf"\b(?:in|since|during|of|back in|before|after|until) {_YEAR}\b"), _year_only),
]


def find_time_mentions(text: str, ref: datetime) -> list[TimeMention]:
    """Time expressions in ``text`` resolved against ``ref``: non-overlapping, in text order.

    Where two rules match overlapping spans, the longest wins ("the day before yesterday" over
    "yesterday").
    """
    ref = _utc(ref)
    found: list[tuple[int, int, TimeMention]] = []
    for pattern, resolve in RULES:
        for m in pattern.finditer(text):
            resolved = resolve(m, ref)
            if resolved is None:
                continue
            start, end, granularity = resolved
            found.append((m.start(), m.end(), TimeMention(m.group(0), start, end, granularity)))
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    chosen: list[tuple[int, int, TimeMention]] = []
    for item in found:
        if all(item[1] <= c[0] or item[0] >= c[1] for c in chosen):
            chosen.append(item)
    return [c[2] for c in sorted(chosen, key=lambda c: c[0])]


def annotate(text: str, ref: datetime) -> str:
    """The resolved dates of a text as a short note: ``"yesterday = 7 May 2023"`` (or "")."""
    return "; ".join(f"{m.text} = {m.label()}" for m in find_time_mentions(text, ref))


_OPEN = re.compile(r"\b(?P<dir>since|after|before|until)\b", re.I)
_RECENT = re.compile(r"\b(?:recently|lately|these days|nowadays)\b", re.I)
_FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def parse_query_time(query: str, as_of: datetime) -> TimeMention | None:
    """The time window a question restricts itself to, relative to ``as_of``, or None.

    "What did I do last week?" restricts; "When did I go to the gym?" does not (it asks for a
    date). "since March" / "before 2022" give open intervals; "recently" the last 30 days.
    """
    as_of = _utc(as_of)
    mentions = find_time_mentions(query, as_of)
    if not mentions:
        if _RECENT.search(query):
            return TimeMention("recently", as_of - timedelta(days=30), as_of, "week")
        return None
    mention = mentions[0]
    prefix = query[: query.find(mention.text)]
    open_word = _OPEN.search(mention.text) or _OPEN.search(prefix[-12:])
    if open_word:
        direction = open_word.group("dir").lower()
        if direction in ("since", "after"):
            return TimeMention(mention.text, mention.start, _FAR_FUTURE, mention.granularity)
        return TimeMention(mention.text, _FAR_PAST, mention.start, mention.granularity)
    return mention
