"""Time: parse caller timestamps, resolve relative expressions, read a query's time window.

All rule-based and offline. An expression is resolved against a reference time: the message's own
timestamp at write time ("yesterday" said on 8 May 2023 is 7 May 2023), or ``as_of`` for a query.

Intervals are half-open ``[start, end)`` in the reference's own zone (a naive reference is UTC):
"yesterday" is a day of the speaker's calendar, so its label names the right date.

Granularity says what the interval is: ``day``, ``week`` (Monday to Sunday, or a span of a few
days), ``weekend``, ``month``, ``season`` (three months, or any span of a few months) and
``year``. Vague counts ("a few weeks ago") resolve to a span around the likely time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

from dateutil.easter import easter
from dateutil.relativedelta import relativedelta

from .errors import InvalidTimestamp
from .types import TimeMention

_Span = tuple[datetime, datetime]
_Resolved = tuple[datetime, datetime, str]

_MONTH_NAMES = [
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
]
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_WEEKDAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAYS = {name: i for i, name in enumerate(_WEEKDAY_NAMES)}
_NUMBERS = {
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
}
_NUMBERS.update({"a": 1, "an": 1, "a couple of": 2, "couple of": 2})
#: Vague counts, and the range of units back (or ahead) they cover: "a few days ago" is 2-5 days.
_VAGUE = frozenset({"a few", "few", "several"})
_FEW = {"day": (2, 5), "week": (2, 4), "weekend": (2, 4), "month": (2, 5), "year": (2, 6)}
#: First month of each (northern hemisphere, meteorological) season; each lasts three months.
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_FIXED_HOLIDAYS = {
    "christmas eve": (12, 24),
    "christmas": (12, 25),
    "christmas day": (12, 25),
    "new years eve": (12, 31),
    "new years day": (1, 1),
    "halloween": (10, 31),
    "valentines day": (2, 14),
    "independence day": (7, 4),
    "the fourth of july": (7, 4),
    "the 4th of july": (7, 4),
}
_FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


# --- caller timestamps ---------------------------------------------------------------------

_LOCOMO = re.compile(
    r"^(?:(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+)?(\d{1,2})\s+([a-z]+)\.?,?\s+(\d{4})$", re.I
)
_LONGMEMEVAL = re.compile(
    r"^(\d{4})/(\d{1,2})/(\d{1,2})(?:\s*\([a-z]+\))?(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$", re.I
)
_EPOCH = re.compile(r"^-?\d{9,11}(?:\.\d+)?$")
#: Longer than any form parse_timestamp accepts ("2023-05-08T13:56:00.123456+02:00" is 32): text
#: this long is junk, not worth the parsers' time.
_MAX_TEXT = 64


def parse_timestamp(value: str | datetime | int | float, *, where: str = "timestamp") -> datetime:
    """Read a caller-supplied time as an aware UTC datetime.

    Accepts ISO 8601 with or without a time or zone (``2023-05-08``, ``2023-05-08 13:56``,
    ``2023-05-08T13:56:00Z``, ``...+02:00``), datetimes, epoch seconds (numbers, or strings of
    9-11 digits), and the benchmark forms ``1:56 pm on 8 May, 2023`` (LoCoMo) and
    ``2023/05/20 (Sat) 02:21`` (LongMemEval).

    A naive datetime is local time, as Python's own ``datetime.timestamp()`` reads it, so
    ``datetime.now()`` is now. Naive text is UTC: a conversation log's timestamps are the wall
    clock of the conversation, not of the machine that reads the log.

    Args:
        value: The timestamp as given by the caller.
        where: What the value is, to name it in the error ("as_of", "message 2 timestamp").

    Returns:
        The same instant, timezone-aware, in UTC.

    Raises:
        InvalidTimestamp: The value is none of the above, not a real date, or an instant outside
            the years 1 to 9999 in UTC.
    """
    given = _as_given(value)
    parsed = None if given is None else _to_utc(given)
    if parsed is None:
        raise InvalidTimestamp(value, where)  # which shows the value cut short
    return parsed


def speaker_offset(raw: object) -> int | None:
    """The UTC offset of the clock a caller's timestamp was given on, in seconds.

    Stored with each message, it shows the message's time on the speaker's own clock and puts
    "yesterday" on the speaker's calendar.

    Args:
        raw: The timestamp as the caller gave it (any value :func:`parse_timestamp` accepts).

    Returns:
        The offset an aware datetime, or text with ``Z`` or ``+02:00``, carries; for a naive
        datetime, the local offset at that instant (it is local time). None when the value names
        no clock (naive text, epoch seconds), is None, or is no timestamp at all.
    """
    given = _as_given(raw)
    offset = None if given is None or _to_utc(given) is None else given.utcoffset()
    return None if offset is None else round(offset.total_seconds())


def speaker_clock(instant: datetime, offset: int | None) -> datetime:
    """An instant on the speaker's clock: at the fixed offset :func:`speaker_offset` gave.

    Args:
        instant: An aware datetime, as :func:`parse_timestamp` returns.
        offset: Seconds east of UTC, or None for UTC.

    Returns:
        The same instant at that offset. In UTC when the offset is None or not a real one (a day
        or more), or when the instant at that offset would fall outside the years 1 to 9999.
    """
    try:
        return instant.astimezone(timezone(timedelta(seconds=offset or 0)))
    except (OverflowError, ValueError):
        return instant.astimezone(UTC)


def _as_given(value: object) -> datetime | None:
    """A caller's timestamp on the clock it was given in, or None if it is not one.

    Aware when the caller named the clock (an offset, a ``Z``, a datetime object: a naive one is
    on the local clock); naive when it did not (naive text; epoch seconds, as UTC).
    """
    if isinstance(value, datetime):
        return _on_own_clock(value)
    # bool is an int, but True is never meant as 1970-01-01T00:00:01.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value)
    if isinstance(value, str):
        return _parse_text(value.strip())
    return None


def _on_own_clock(value: datetime) -> datetime | None:
    try:
        if value.utcoffset() is None:  # naive, or a tzinfo that does not know its offset
            return value.replace(tzinfo=None).astimezone()
        return value
    # Local time within a day of year 1 or 9999 cannot be placed; a broken tzinfo.
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _to_utc(given: datetime) -> datetime | None:
    if given.tzinfo is None:
        return given.replace(tzinfo=UTC)
    try:
        return given.astimezone(UTC)
    except (OverflowError, ValueError):  # 1 January of year 1 at +02:00 is in year 0 in UTC
        return None


def _from_epoch(value: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(value, tz=UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):  # NaN, infinite, or beyond year 9999
        return None


def _parse_text(text: str) -> datetime | None:
    if len(text) > _MAX_TEXT:
        return None
    if _EPOCH.match(text):
        return _from_epoch(float(text))
    for parse in (_parse_iso, _parse_locomo, _parse_longmemeval):
        try:
            parsed = parse(text)
        except ValueError:  # not this form, or no such date (30 February, 25:00, ...)
            continue
        if parsed is not None:
            return parsed
    return None


def _parse_iso(text: str) -> datetime | None:
    if not text[:4].isdigit():
        return None
    # fromisoformat takes "Z" from 3.11 on, but not a lower-case "z".
    return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)


def _parse_locomo(text: str) -> datetime | None:
    m = _LOCOMO.match(text)
    if not m or m[5].lower() not in _MONTHS:
        return None
    hour, minute = (
        (int(m[1]) % 12 + (12 if m[3].lower() == "p" else 0), int(m[2])) if m[1] else (0, 0)
    )
    return datetime(int(m[6]), _MONTHS[m[5].lower()], int(m[4]), hour, minute)


def _parse_longmemeval(text: str) -> datetime | None:
    m = _LONGMEMEVAL.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    return datetime(year, month, day, hour, minute, second)


# --- intervals -----------------------------------------------------------------------------


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _day(ref: datetime, offset: int = 0) -> _Span:
    start = _midnight(ref) + timedelta(days=offset)
    return start, start + timedelta(days=1)


def _week(ref: datetime, offset: int = 0) -> _Span:
    start = _midnight(ref) - timedelta(days=ref.weekday()) + timedelta(weeks=offset)
    return start, start + timedelta(weeks=1)


def _weekend(ref: datetime, offset: int = 0) -> _Span:
    start = _week(ref, offset)[0] + timedelta(days=5)
    return start, start + timedelta(days=2)


def _months(year: int, month: int, count: int, ref: datetime) -> _Span:
    start = datetime(year, month, 1, tzinfo=ref.tzinfo)
    return start, start + relativedelta(months=count)


def _month(ref: datetime, offset: int = 0) -> _Span:
    start = datetime(ref.year, ref.month, 1, tzinfo=ref.tzinfo) + relativedelta(months=offset)
    return start, start + relativedelta(months=1)


def _year(ref: datetime, offset: int = 0) -> _Span:
    return _months(ref.year + offset, 1, 12, ref)


_UNIT_SPANS: dict[str, Callable[[datetime, int], _Span]] = {
    "day": _day,
    "week": _week,
    "weekend": _weekend,
    "month": _month,
    "year": _year,
}


def _unit(ref: datetime, unit: str, offset: int) -> _Resolved:
    return (*_UNIT_SPANS[unit](ref, offset), unit)


def _span(start: datetime, end: datetime) -> _Resolved:
    """An interval that is not one calendar unit, with the granularity that labels it best."""
    days = (end - start).days
    last = end - timedelta(days=1)
    if days <= 1:
        return start, end, "day"
    if days <= 8:
        return start, end, "week"
    if (start.year, start.month) == (last.year, last.month):
        return start, end, "month"
    return start, end, "season" if days <= 400 else "year"


# --- context: tense of the clause around a mention ----------------------------------------

_STOPS = ".!?;\n"
_CUES = re.compile(
    r"(?P<future>\b(?:will|shall|gonna|going\s+to|plan(?:s|ning)?\s+to|about\s+to|"
    r"hop(?:e|ing)\s+to|want\s+to|need\s+to|have\s+to|has\s+to|must|"
    r"can['’]?t\s+wait|looking\s+forward|upcoming|coming\s+up|soon|"
    r"next|how\s+about|let['’]?s|wanna|would\s+you\s+like)\b|['’]ll\b)|"
    r"(?P<past>\b(?:was(?:n['’]t)?|were(?:n['’]t)?|went|did(?:n['’]t)?|had|got|came|saw|met|"
    r"made|took|gave|ran|told|said|bought|spent|visited|finished|started|moved|used\s+to|ago|"
    r"yesterday|last|(?!(?:need|feed|seed|speed|indeed|bed|red|shed)\b)\w{2,}ed)\b)",
    re.I,
)


@dataclass
class _Context:
    """What a resolver may look at besides its match."""

    text: str
    ref: datetime
    #: Start of the previous mention in the text: what "the day after" counts from.
    anchor: datetime | None = None
    #: Start of a date right after the match: "the week before 16 November".
    following: datetime | None = None

    def tense(self, m: re.Match[str]) -> int:
        """+1 if the clause around ``m`` speaks of the future, -1 of the past, 0 if unknown.

        The cue word nearest to the mention decides ("I went there in May and will go back in
        June" reads each month with its own verb).
        """
        text = self.text
        lo = max(text.rfind(stop, 0, m.start()) for stop in _STOPS) + 1
        hi = min((i for stop in _STOPS if (i := text.find(stop, m.end())) >= 0), default=len(text))
        cues = [(m.start() - c.end(), c) for c in _CUES.finditer(text, lo, m.start())]
        cues += [(c.start() - m.end(), c) for c in _CUES.finditer(text, m.end(), hi)]
        if not cues:
            return 0
        nearest = min(cues, key=lambda cue: cue[0])[1]
        return 1 if nearest["future"] else -1


_Resolver = Callable[[re.Match[str], _Context], _Resolved | None]


def _norm(words: str | None) -> str:
    return " ".join((words or "").lower().replace("’", "'").split())


def _count(words: str) -> int:
    word = _norm(words)
    return int(word) if word.isdigit() else _NUMBERS[word]


# --- resolvers: relative to the reference --------------------------------------------------

_NAMED_DAYS = {
    "the day before yesterday": -2,
    "the day after tomorrow": 2,
    "yesterday": -1,
    "last night": -1,
    "tomorrow": 1,
}


def _named_day(m: re.Match[str], ctx: _Context) -> _Resolved:
    # Everything else the rule matches is today: "tonight", "this morning", "earlier today".
    return (*_day(ctx.ref, _NAMED_DAYS.get(_norm(m[0]), 0)), "day")


def _relative_unit(m: re.Match[str], ctx: _Context) -> _Resolved:
    which, unit = _norm(m["which"]), _norm(m["unit"])
    # On a weekday "this weekend" is the coming one, unless the clause speaks of the past: "I
    # finished it this weekend" said on a Wednesday. "This week" or "month" is the current one
    # in either tense, as is "this weekend" said on a Saturday or Sunday.
    if which == "this" and unit == "weekend" and ctx.tense(m) < 0:
        return _recent_weekend(ctx.ref)
    offset = {"this": 0, "next": 1, "coming": 1, "this coming": 1}.get(which, -1)
    return _unit(ctx.ref, unit, offset)


def _counted(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    """``two weeks ago``, ``in 3 days``, ``a few months ago``, ``two days later``."""
    unit, word, direction = _norm(m["unit"]), _norm(m["n"]), _norm(m["dir"])
    base = ctx.ref
    if direction == "later":  # counts from the date told before it, or means nothing
        if ctx.anchor is None:
            return None
        base = ctx.anchor
    sign = -1 if direction == "ago" else 1
    # "It was done in two days", "30 days in a month": durations. "In a week" is a date only
    # when the clause speaks of the future ("I'll be back in a week").
    if direction == "in" and ctx.tense(m) < (1 if word in ("a", "an", "one") else 0):
        return None
    if word in _VAGUE:
        return _approximate(base, unit, sign)
    n = _count(word)
    return _unit(base, unit, sign * n) if 0 < n <= 1000 else None


def _approximate(base: datetime, unit: str, sign: int) -> _Resolved:
    lo, hi = _FEW[unit]
    near, far = _UNIT_SPANS[unit](base, sign * lo), _UNIT_SPANS[unit](base, sign * hi)
    return _span(far[0], near[1]) if sign < 0 else _span(near[0], far[1])


def _rolling(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    """``the past week``, ``the last 3 months``: from that long before the reference to today."""
    unit, word = _norm(m["unit"]), _norm(m["n"]) or "1"
    if unit == "weekend" and not m["n"]:  # "the past weekend" is one weekend, not a window
        return _recent_weekend(ctx.ref)
    n = _FEW[unit][1] if word in _VAGUE else _count(word)
    if not 0 < n <= 1000:
        return None
    return _span(_midnight(ctx.ref - _duration(unit, n)), _day(ctx.ref)[1])


def _duration(unit: str, n: int) -> timedelta | relativedelta:
    if unit == "day":
        return timedelta(days=n)
    if unit in ("week", "weekend"):  # "the past two weekends": the two weeks they end
        return timedelta(weeks=n)
    return relativedelta(months=n) if unit == "month" else relativedelta(years=n)


def _the_other_day(m: re.Match[str], ctx: _Context) -> _Resolved:
    return _span(_day(ctx.ref, -7)[0], _day(ctx.ref, -1)[1])


def _weekday(m: re.Match[str], ctx: _Context) -> _Resolved:
    target, which = _WEEKDAYS[m["weekday"].lower()], _norm(m["which"])
    ahead = (target - ctx.ref.weekday()) % 7  # days to the coming one; 0 = today
    behind = (ctx.ref.weekday() - target) % 7
    if which in ("next", "coming", "this coming"):
        offset = ahead or 7
    elif which in ("last", "past", "this past"):
        offset = -(behind or 7)  # "last Saturday" said on a Saturday is a week ago
    elif which == "this":
        tense = ctx.tense(m)
        offset = ahead if tense > 0 else -behind if tense < 0 else target - ctx.ref.weekday()
    else:  # "on Saturday": the one just gone, unless the clause speaks of the future
        offset = (ahead or 7) if ctx.tense(m) > 0 else -(behind or 7)
    return (*_day(ctx.ref, offset), "day")


def _the_weekend(m: re.Match[str], ctx: _Context) -> _Resolved:
    """``over the weekend``: the one just gone (or under way), or the coming one."""
    if ctx.tense(m) > 0:
        return (*_weekend(ctx.ref), "weekend")
    return _recent_weekend(ctx.ref)


def _recent_weekend(ref: datetime) -> _Resolved:
    return (*_weekend(ref, 0 if ref.weekday() >= 5 else -1), "weekend")


def _season(m: re.Match[str], ctx: _Context) -> _Resolved:
    first = _SEASONS[m["season"].lower()]
    year = int(m["year"]) if m["year"] else _season_year(m, ctx, first)
    return (*_months(year, first, 3, ctx.ref), "season")


def _season_year(m: re.Match[str], ctx: _Context, first: int) -> int:
    """The year the meant season starts in. Winter starts in December and runs into the next."""
    ref = ctx.ref
    started = ref.year if ref.month >= first else ref.year - 1  # the latest one begun
    ongoing = ref < _months(started, first, 3, ref)[1]
    which = _norm(m["which"])
    if which in ("last", "past"):
        return started - 1 if ongoing else started
    if which == "next":
        return started + 1
    if which == "this":
        return ref.year - 1 if first == 12 and ref.month <= 6 else ref.year
    return started + 1 if ctx.tense(m) > 0 and not ongoing else started


# --- resolvers: calendar dates -------------------------------------------------------------


def _date(year: int, month: int, day: int, ref: datetime) -> _Resolved:
    start = datetime(year, month, day, tzinfo=ref.tzinfo)
    return start, start + timedelta(days=1), "day"


def _iso_date(m: re.Match[str], ctx: _Context) -> _Resolved:
    return _date(int(m["y"]), int(m["mo"]), int(m["d"]), ctx.ref)


def _month_day(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    """``May 1st``, ``the 24th of March``, ``1 May 2023``, ``Sunday, May 7``."""
    month, day = _MONTHS[m["month"].lower()], int(m["day"])
    if m["year"]:
        return _date(int(m["year"]), month, day, ctx.ref)
    start = _pick_year(m, ctx, lambda year: datetime(year, month, day, tzinfo=ctx.ref.tzinfo))
    return None if start is None else _date(start.year, month, day, ctx.ref)


def _pick_year(
    m: re.Match[str], ctx: _Context, make: Callable[[int], datetime], which: str = ""
) -> datetime | None:
    """Of the yearly dates ``make(year)``, the one meant: "last"/"next" or the clause's tense
    decide; with neither, the nearest, a past one counting as half as far ("on the 24th of
    March" said on 2 March is this March; "on May 1st" said on 8 May is the one just gone)."""
    options = []
    for year in range(ctx.ref.year - 4, ctx.ref.year + 5):  # a 29 February is within four
        try:
            options.append(make(year))
        except ValueError:
            continue
    today = _midnight(ctx.ref)
    if which == "this":
        return next((d for d in options if d.year == ctx.ref.year), None)
    tense = {"last": -1, "next": 1}.get(which, 0) or ctx.tense(m)
    strict = which in ("last", "next")  # "last Christmas" said on Christmas Day is a year ago
    if tense < 0:
        return max((d for d in options if d < today or (d == today and not strict)), default=None)
    if tense > 0:
        return min((d for d in options if d > today or (d == today and not strict)), default=None)
    return min(options, key=lambda d: 2 * (d - today).days if d > today else (today - d).days)


def _month_only(m: re.Match[str], ctx: _Context) -> _Resolved:
    """``in May``, ``last May``, ``since March``: by default the latest May begun by then.
    A year after it (``in mid-August 2023``) settles it."""
    month = _MONTHS[m["month"].lower()]
    year = int(m["year"]) if m["year"] else _year_of_month(month, _norm(m["which"]), m, ctx)
    return (*_months(year, month, 1, ctx.ref), "month")


def _year_of_month(month: int, which: str, m: re.Match[str], ctx: _Context) -> int:
    ref = ctx.ref
    latest = ref.year if month <= ref.month else ref.year - 1
    if which == "last":
        return latest - 1 if month == ref.month else latest
    if which == "next":
        return latest + 1
    if which == "this":
        return ref.year
    tense = ctx.tense(m)
    if tense == 0 and month != ref.month:
        # No verb to go by: the nearer of the two, counting months ahead double ("in May" said
        # in mid-April is next month; said in December it is the May just gone).
        ahead = (month - ref.month) % 12
        return latest + 1 if 2 * ahead < 12 - ahead else latest
    return latest + 1 if month != ref.month and tense > 0 else latest


def _month_year(m: re.Match[str], ctx: _Context) -> _Resolved:
    return (*_months(int(m["year"]), _MONTHS[m["month"].lower()], 1, ctx.ref), "month")


def _month_range(m: re.Match[str], ctx: _Context) -> _Resolved:
    """``from June to August``, ``between March and May 2023``: the range ending in the named
    year, or else like ``in August``."""
    first, last = _MONTHS[m["month"].lower()], _MONTHS[m["month2"].lower()]
    year = int(m["year"]) if m["year"] else _year_of_month(last, "", m, ctx)
    start = datetime(year if first <= last else year - 1, first, 1, tzinfo=ctx.ref.tzinfo)
    return _span(start, _months(year, last, 1, ctx.ref)[1])


def _year_only(m: re.Match[str], ctx: _Context) -> _Resolved:
    return (*_months(int(m["year"]), 1, 12, ctx.ref), "year")


def _year_range(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    first, last = int(m["year"]), int(m["year2"])
    if first >= last:
        return None
    return _months(first, 1, 12, ctx.ref)[0], _months(last, 1, 12, ctx.ref)[1], "year"


def _holiday(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    name = _norm(m["holiday"]).replace("'", "")

    def make(year: int) -> datetime:
        return datetime.combine(_holiday_date(name, year), datetime.min.time(), ctx.ref.tzinfo)

    if m["year"]:
        start = make(int(m["year"]))
    else:
        picked = _pick_year(m, ctx, make, _norm(m["which"]))
        if picked is None:
            return None
        start = picked
    return start, start + timedelta(days=1), "day"


def _holiday_date(name: str, year: int) -> datetime:
    if name.startswith("easter"):
        return datetime.combine(easter(year), datetime.min.time())
    if name == "thanksgiving":  # US: the fourth Thursday of November
        first = datetime(year, 11, 1)
        return first + timedelta(days=(3 - first.weekday()) % 7 + 21)
    month, day = _FIXED_HOLIDAYS[name]
    return datetime(year, month, day)


# --- resolvers: relative to the previous mention -------------------------------------------


def _adjacent(m: re.Match[str], ctx: _Context) -> _Resolved | None:
    """``the week before``, ``the day after``, ``the next day``, ``the previous month``."""
    unit, word = _norm(m["unit"]), _norm(m["dir"])
    step = -1 if word in ("before", "previous") else 1
    if ctx.following is not None and word in ("before", "after"):
        return _unit(ctx.following, unit, step)
    if ctx.anchor is not None:
        return _unit(ctx.anchor, unit, step)
    # With no date told before it, "the week before" can only mean the one before this one.
    return _unit(ctx.ref, unit, -1) if step < 0 and unit != "day" else None


def _before_last(m: re.Match[str], ctx: _Context) -> _Resolved:
    return _unit(ctx.ref, _norm(m["unit"]), -2)


# --- rules ---------------------------------------------------------------------------------


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    #: None marks a phrase that is not a date and hides the date-like words inside it.
    resolve: _Resolver | None
    #: Lower-case words one of which every match contains. Most messages name no date, and a
    #: substring test is a hundred times cheaper than running the pattern.
    triggers: tuple[str, ...]


def _rule(
    pattern: str, resolve: _Resolver | None, triggers: tuple[str, ...], ignore_case: bool = True
) -> _Rule:
    # A space in a pattern stands for any run of whitespace: chat text wraps and double-spaces.
    flags = re.I if ignore_case else 0
    return _Rule(re.compile(pattern.replace(" ", r"\s+"), flags), resolve, triggers)


def _alternatives(words: list[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


# "May", "March" and "August" are ordinary words too, so month names count only capitalised;
# the others may be written in lower case. Abbreviations only capitalised ("Jan", "Sept").
_MONTH_WORDS = [n.capitalize() for n in _MONTHS] + [
    n for n in _MONTH_NAMES if n not in ("march", "may", "august")
]


def _month_re(group: str = "month") -> str:
    # Not before an apostrophe or a letter: "April's", "Mayor", "Junes".
    return rf"(?P<{group}>{_alternatives(_MONTH_WORDS)})(?![\w'’])"


_WEEKDAY_ALT = _alternatives(_WEEKDAY_NAMES)
_WEEKDAY = rf"(?P<weekday>{_WEEKDAY_ALT})\b(?! of\b)"
_DAY = r"(?P<day>3[01]|[12]\d|0?[1-9])(?!\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d{2})(?![\d:])"
_NUM = (
    r"(?P<n>\d{1,4}|a couple of|couple of|a few|few|several|an?|one|two|three|four|five|six|seven"
    r"|eight|nine|ten|eleven|twelve)"
)
_UNIT = r"(?P<unit>day|week(?:end)?|month|year)s?"
_NOT_OF = r"(?! of\b)"  # "the last week of May" is not last week
# "the last year I lived there", "the last week for which ...": the final one, not a window.
_NOT_FINAL = r"(?! (?:of|for|in|on|at|that|which|when|before|i|we|you|he|she|they)\b)"
_COMMA = r"(?:,\s*|\s+)"  # "May 1, 2023", "May 1,2023", "May 1 2023"
_DATE_WEEKDAY = rf"(?:(?i:{_WEEKDAY_ALT}),? (?:the )?)?"
_MONTH_PREFIX = (
    r"(?P<which>(?i:last|next|this|in|since|during|before|after|until|till|through|around))"
)
_PART = r"(?i:early|mid|late)(?:-| )"
# Not "Winter Park", "the Autumn Frenzy": a capitalised word after it makes it part of a name.
_SEASON = r"(?P<season>spring|summer|autumn|fall|winter)\b(?!\s+(?-i:[A-Z]))"
_HOLIDAY = (
    r"(?P<holiday>christmas(?: eve| day)?|new year['’]?s (?:eve|day)|halloween|valentine['’]?s day"
    r"|easter(?: sunday)?|thanksgiving|independence day|the (?:fourth|4th) of july)\b"
)
_RANGE_WORD = r"(?:and|to|till|until|through|thru|-|–)"

_IN_MONTHS = tuple(name[:3] for name in _MONTH_NAMES)
_IN_YEARS = ("19", "20")
_IN_WEEKDAYS = tuple(_WEEKDAY_NAMES)
_IN_UNITS = ("day", "week", "month", "year")
_IN_SEASONS = tuple(_SEASONS)
_IN_HOLIDAYS = (
    "christmas",
    "new year",
    "halloween",
    "valentine",
    "easter",
    "thanksgiving",
    "independence",
    "july",
)

_RULES: list[_Rule] = [
    # Calendar dates.
    _rule(
        r"(?<![\d-])(?P<y>(?:19|20)\d{2})(?P<sep>[-/])(?P<mo>1[0-2]|0?[1-9])(?P=sep)"
        r"(?P<d>3[01]|[12]\d|0?[1-9])(?!\d)",
        _iso_date,
        _IN_YEARS,
    ),
    _rule(
        rf"\b{_DATE_WEEKDAY}{_DAY}(?: of)? {_month_re()}(?:{_COMMA}{_YEAR})?",
        _month_day,
        _IN_MONTHS,
        False,
    ),
    _rule(
        rf"\b{_DATE_WEEKDAY}{_month_re()} (?:the )?{_DAY}\b(?:{_COMMA}{_YEAR})?",
        _month_day,
        _IN_MONTHS,
        False,
    ),
    _rule(rf"\b{_month_re()}{_COMMA}(?:(?i:of) )?{_YEAR}", _month_year, _IN_MONTHS, False),
    _rule(
        rf"\b(?:{_MONTH_PREFIX} (?:{_PART})?|{_PART}){_month_re()}"
        rf"(?:{_COMMA}(?:(?i:of) )?{_YEAR})?",
        _month_only,
        _IN_MONTHS,
        False,
    ),
    _rule(
        rf"\b(?i:between|from) {_month_re()} (?i:{_RANGE_WORD}) {_month_re('month2')}"
        rf"(?:{_COMMA}{_YEAR})?",
        _month_range,
        ("between", "from"),
        False,
    ),
    _rule(
        r"\b(?:back in|in|since|during|of|before|after|until|till|through|around) " + _YEAR,
        _year_only,
        _IN_YEARS,
    ),
    _rule(
        rf"\b(?:between|from) {_YEAR} {_RANGE_WORD} (?P<year2>(?:19|20)\d{{2}})(?!\d)",
        _year_range,
        _IN_YEARS,
    ),
    # Days named relative to the reference.
    _rule(
        r"\b(?:the day before yesterday|the day after tomorrow|yesterday|last night|"
        r"(?:earlier |later )?today|tonight|tomorrow|this (?:morning|afternoon|evening))\b",
        _named_day,
        ("yesterday", "today", "tonight", "tomorrow", "night", "morning", "afternoon", "evening"),
    ),
    _rule(
        rf"\b(?:(?P<which>last|this coming|this past|this|next|coming|past|on) )?{_WEEKDAY}",
        _weekday,
        _IN_WEEKDAYS,
    ),
    _rule(r"\b(?:over|on|at|during) the weekend\b", _the_weekend, ("weekend",)),
    _rule(r"\bthe other (?:day|night)\b", _the_other_day, ("other",)),
    # Weeks, months, years relative to the reference.
    _rule(
        r"\b(?<!the\x20)(?:earlier |later )?"
        r"(?P<which>last|previous|this past|this coming|this|next|coming) "
        r"(?P<unit>week(?:end)?|month|year)\b" + _NOT_OF,
        _relative_unit,
        _IN_UNITS,
    ),
    _rule(rf"\b(?:the )?past (?:{_NUM} )?{_UNIT}\b{_NOT_OF}", _rolling, ("past",)),
    _rule(rf"\bthe last (?:{_NUM} )?{_UNIT}\b{_NOT_FINAL}", _rolling, ("last",)),
    _rule(rf"\b{_NUM} {_UNIT} (?P<dir>ago|from now|later)\b", _counted, ("ago", "now", "later")),
    _rule(rf"\b(?P<dir>in) {_NUM} {_UNIT}\b(?:['’]? time)?", _counted, _IN_UNITS),
    _rule(
        r"\b(?:the )?(?P<which>last|this|next|past|in|during|over|since|before|after|until)"
        rf" (?:the )?{_SEASON}(?:,? (?:of )?{_YEAR})?",
        _season,
        _IN_SEASONS,
    ),
    _rule(rf"\b(?:the )?{_SEASON},? (?:of )?{_YEAR}", _season, _IN_SEASONS),
    _rule(
        r"\b(?P<which>last|this|next|at|on|for|over|during|since|before|after|until|by) "
        rf"{_HOLIDAY}(?: {_YEAR})?",
        _holiday,
        _IN_HOLIDAYS,
    ),
    _rule(rf"\b{_HOLIDAY} {_YEAR}", _holiday, _IN_HOLIDAYS),
    # Relative to the date told before them.
    _rule(r"\bthe (?P<unit>day|week(?:end)?|month|year) before last\b", _before_last, ("before",)),
    _rule(
        r"\bthe (?P<unit>day|week(?:end)?|month|year) (?P<dir>before|after)\b",
        _adjacent,
        ("before", "after"),
    ),
    _rule(
        r"\bthe (?P<dir>next|following|previous) (?P<unit>day|week(?:end)?|month|year)\b",
        _adjacent,
        ("next", "following", "previous"),
    ),
    # Not dates: habits, ranges of weekdays, named days that are not the date they name.
    _rule(
        rf"\b(?:every|each|one|some|any|most|a|my|our|your|his|their)(?: other)? "
        rf"(?:{_WEEKDAY_ALT})\b",
        None,
        _IN_WEEKDAYS,
    ),
    _rule(
        rf"\b(?:{_WEEKDAY_ALT})\s*(?:-|–|to|through|thru|till|until)\s*(?:{_WEEKDAY_ALT})\b",
        None,
        _IN_WEEKDAYS,
    ),
    _rule(
        rf"\b(?:good|black|cyber|ash|holy|maundy) (?:{_WEEKDAY_ALT})\b|\bsunday (?:school|best)\b",
        None,
        _IN_WEEKDAYS,
    ),
]


# --- finding -------------------------------------------------------------------------------


class _Candidate(NamedTuple):
    start: int
    end: int
    match: re.Match[str]
    resolve: _Resolver | None


def _candidates(text: str) -> list[_Candidate]:
    lowered = text.lower()
    return [
        _Candidate(m.start(), m.end(), m, rule.resolve)
        for rule in _RULES
        if any(word in lowered for word in rule.triggers)
        for m in rule.pattern.finditer(text)
    ]


def _select(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping candidates, longest first, back in text order."""
    chosen: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.start - c.end, c.start)):
        if all(c.end <= o.start or c.start >= o.end for o in chosen):
            chosen.append(c)
    return sorted(chosen)


def _reference(ref: datetime) -> datetime:
    return ref.replace(tzinfo=UTC) if ref.tzinfo is None else ref


def _scan(text: str, ref: datetime) -> list[tuple[int, TimeMention]]:
    """Mentions with their offsets in ``text``, resolved in text order so that "the day after"
    can count from the date before it."""
    ctx = _Context(text, _reference(ref))
    chosen = [c for c in _select(_candidates(text)) if c.resolve is not None]
    found: list[tuple[int, TimeMention]] = []
    for i, c in enumerate(chosen):
        ctx.following = None
        if c.resolve is _adjacent and i + 1 < len(chosen):
            ctx.following = _following(text, c, chosen[i + 1], ctx)
        resolved = _resolve(c, ctx)
        if resolved is not None:
            found.append((c.start, TimeMention(c.match[0], *resolved)))
            ctx.anchor = resolved[0]
    return found


def _resolve(c: _Candidate, ctx: _Context) -> _Resolved | None:
    assert c.resolve is not None
    try:
        return c.resolve(c.match, ctx)
    # 31 April, year 10000, ...; or a word no table spells: under re.I a long s "ſ" is an "s"
    # and a dotless "ı" an "i", so "ſunday" matches but is not a key of _WEEKDAYS.
    except (ValueError, OverflowError, KeyError):
        return None


def _following(text: str, c: _Candidate, after: _Candidate, ctx: _Context) -> datetime | None:
    """The start of ``after`` if it directly follows ``c``, as in "the week before May 5"."""
    if text[c.end : after.start].strip():
        return None
    resolved = _resolve(after, _Context(text, ctx.ref))
    return None if resolved is None else resolved[0]


def find_time_mentions(text: str, ref: datetime) -> list[TimeMention]:
    """Find the time expressions in a text and resolve them against the time it was said.

    Where expressions overlap the longest wins ("the day before yesterday", not "yesterday").
    Ambiguous ones lean on the clause's tense: "on Saturday" and "in May" are the ones just gone
    unless the clause speaks of the future ("I'll go on Saturday").

    Args:
        text: A message.
        ref: When it was said. A naive datetime is taken as UTC; an aware one keeps its zone, so
            days follow the speaker's calendar.

    Returns:
        The mentions, in text order, none overlapping another.
    """
    return [mention for _, mention in _scan(text, ref)]


def annotate(text: str, ref: datetime) -> str:
    """Spell out the dates a text refers to, for its index entry and for display.

    Args:
        text: A message.
        ref: When it was said (see :func:`find_time_mentions`).

    Returns:
        ``"yesterday = 7 May 2023"``, several joined by ``"; "``, or ``""`` when the text names
        no date, or only ones it already spells out ("on 7 May 2023").
    """
    notes = []
    for mention in find_time_mentions(text, ref):
        label = _describe(mention)
        if label not in mention.text:
            notes.append(f"{mention.text} = {label}")
    return "; ".join(notes)


def _describe(mention: TimeMention) -> str:
    """``TimeMention.label``, but spans across years name both ends ("2017 to 2021")."""
    last = mention.end - timedelta(days=1)
    if mention.start.year == last.year:
        return mention.label()
    if mention.granularity == "year":
        return f"{mention.start.year} to {last.year}"
    if mention.granularity == "season":
        return f"{mention.start:%B %Y} to {last:%B %Y}"
    return mention.label()


# --- queries -------------------------------------------------------------------------------

_OPEN = re.compile(
    r"\b(?P<dir>since|after|before|until|till|up to|prior to|no later than|no earlier than)"
    r"(?:\s+the)?\s*$",
    re.I,
)
_OPEN_INSIDE = re.compile(r"^(?P<dir>since|after|before|until|till)\b", re.I)
_RANGE_START = re.compile(r"\b(?:between|from)\s*$", re.I)
_RANGE_GAP = re.compile(r"^\s*(?:and|to|till|until|through|thru|-|–)\s*$", re.I)
# "most recently" asks for the latest, it does not restrict to the last weeks.
_RECENT = re.compile(
    r"(?<!most\s)(?<!more\s)(?<!mostly\s)\b(?:recently|lately|of late|these days|nowadays)\b",
    re.I,
)


def parse_query_time(query: str, as_of: datetime) -> TimeMention | None:
    """Find the time window a search query restricts itself to.

    "What did I do last week?" restricts; "When did I go to the gym?" does not (it asks for a
    date). "since March" and "after 2021" give intervals open to the future, "before 2022" and
    "until May" open to the past (bounded by 1900 and 2999: a mention beyond them is not opened);
    "recently" is the 30 days up to ``as_of``.

    Args:
        query: The search query.
        as_of: The time the query is asked at (naive = UTC).

    Returns:
        The window, or None when the query sets no time constraint.
    """
    as_of = _reference(as_of)
    mentions = _scan(query, as_of)
    if not mentions:
        if _RECENT.search(query):
            return TimeMention("recently", as_of - timedelta(days=30), as_of, "week")
        return None
    offset, mention = mentions[0]
    if len(mentions) > 1:
        ranged = _range(query, mentions[0], mentions[1])
        if ranged is not None:
            return ranged
    return _open_ended(query[:offset], mention)


def _range(
    query: str, first: tuple[int, TimeMention], second: tuple[int, TimeMention]
) -> TimeMention | None:
    """``between August 11 and August 15 2023``: from the start of one to the end of the other."""
    (at, a), (at2, b) = first, second
    if not _RANGE_START.search(query[:at]) or a.start >= b.end:
        return None
    if not _RANGE_GAP.match(query[at + len(a.text) : at2]):
        return None
    return TimeMention(query[at : at2 + len(b.text)], *_span(a.start, b.end))


def _open_ended(before: str, mention: TimeMention) -> TimeMention:
    found = _OPEN.search(before[-24:]) or _OPEN_INSIDE.match(mention.text)
    if found is None:
        return mention
    word = _norm(found["dir"])
    if word in ("since", "no earlier than"):
        start, end = mention.start, _FAR_FUTURE
    elif word == "after":
        start, end = mention.end, _FAR_FUTURE
    elif word in ("before", "prior to"):
        start, end = _FAR_PAST, mention.start
    else:
        start, end = _FAR_PAST, mention.end
    if start >= end:  # only an as_of outside 1900-2999 puts the mention beyond the far bound
        return mention
    return TimeMention(mention.text, start, end, mention.granularity)
