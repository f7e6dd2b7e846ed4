"""Statements not shaped ``subject + verb``: "my sister Inês", "my favourite band is X",
"my wedding is on June 5", "call me Sam", "Inês is my sister".

Each reader takes a clause and yields :class:`Found` records; the caller turns them into claims.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass

from . import lexicon as lex
from . import values as val
from .clauses import NAME, RELATIVE, stated

_REL = "|".join(sorted((re.escape(w) for w in lex.RELATIONS), key=len, reverse=True))
_PETS = "|".join(sorted(lex.PETS, key=len, reverse=True))
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTH_RE = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"

# "favourite", or a word that says the same of one thing in a category ("my number one band").
_TOP = r"(?:favou?rite|number\s+one|no\.?\s*1|#1|go-to|all[- ]time\s+favou?rite)"
_FAVOURITE = re.compile(
    rf"\b(?P<who>my|{NAME}'s)\s+(?:all[- ]time\s+|absolute\s+|current\s+|new\s+)?"
    rf"{_TOP}\s+(?P<cat>[a-z]+(?:\s+[a-z]+)?)\s+(?:is|are|was|has\s+to\s+be|would\s+be|"
    r"=|:|right\s+now\s+is)\s+(?P<v>.+)",
    re.I,
)
_FAVOURITE_AFTER = re.compile(
    r"^\s*(?P<v>[^,]+?)\s+(?:is|are)\s+(?:definitely\s+|probably\s+|still\s+|totally\s+)?"
    rf"my\s+(?:all[- ]time\s+|absolute\s+|new\s+)?{_TOP}\s+(?P<cat>[a-z]+(?:\s+[a-z]+)?)\s*$",
    re.I,
)
_IS_MY = re.compile(
    rf"^(?P<v>{NAME})\s+(?:is|was)\s+(?:now\s+|officially\s+)?my\s+(?:(?:older|younger|little|"
    rf"big|best|oldest|youngest|twin|good|close|new|current)\s+)?(?P<rel>{_REL})\b",
    re.I,
)
_HAVE_NAMED = re.compile(
    r"\b(?:I\s+have|I've\s+got|I\s+got)\s+(?:a|an|one|two|three|\w+)\s+(?:older\s+|younger\s+|"
    rf"little\s+|big\s+|twin\s+)?(?P<rel>{_REL})s?\s*,?\s+(?:named|called)\s+(?P<v>{NAME})",
    re.I,
)
_MY_PET = re.compile(
    rf"\b(?:my|our)\s+(?:(?:\w+)\s+)?(?P<k>{_PETS})\s*,?\s+(?P<v>{NAME})(?!\w)"
    r"(?P<died>,?\s+(?:died|passed\s+away|passed|was\s+put\s+down|ran\s+away))?",
    re.I,
)
_MY_CAR = re.compile(r"\bmy\s+(?:new\s+)?(?P<k>car|phone)\s+is\s+(?:a|an)\s+(?P<v>.+)", re.I)
_EVENTS = (
    "wedding|birthday|party|graduation|surgery|operation|interview|exam|exams|appointment|trip|"
    "vacation|holiday|flight|concert|recital|race|marathon|presentation|due\\s+date|"
    "anniversary|defen[cs]e|move|moving\\s+day|baby\\s+shower|conference|retirement|"
    "final|finals|match|game|tournament|show|gig|premiere|launch|deadline"
)
_MY_EVENT = re.compile(
    rf"\b(?:my|our)\s+(?P<v>(?:[\w-]+\s+){{0,2}}?(?:{_EVENTS}))\s+(?P<verb>is|was|will\s+be|'s)\b",
    re.I,
)
_BIRTHDAY = re.compile(
    r"\b(?:my\s+birthday\s+is|(?:I\s+was|I'm|I\s+am)\s+born)\s+(?:on\s+)?(?:the\s+)?(?P<v>.+)",
    re.I,
)
_DATE = re.compile(
    rf"^(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m1>{_MONTH_RE})|"
    rf"(?P<m2>{_MONTH_RE})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?)(?:,?\s+(?P<y>(?:19|20)\d\d))?\b",
    re.I,
)
_NAME_IS = re.compile(
    rf"\b(?:my\s+name\s+is|my\s+name's|call\s+me|I\s+go\s+by|people\s+call\s+me)\s+"
    rf"(?P<v>{NAME})(?!\w)",
    re.I,
)


@dataclass(frozen=True)
class Found:
    """One statement a reader found, before dates and wording are added."""

    subject: str
    attribute: str
    value: str
    text: str
    kind: str = "fact"
    entity: tuple[str, str, str | None] | None = None  # (name, type, relation)
    ends: bool = False
    dated: bool = False  # the claim is about the date the clause gives ("my wedding is on")
    #: The date the clause gives is when it became true ("today was my first day at Globex");
    #: a date to come makes it the ``plan``.
    start: bool = False
    plan: str | None = None


def read(clause: str, speaker: str) -> Iterator[Found]:
    """Every special statement in a clause."""
    yield from _relatives(clause, speaker)
    yield from _favourites(clause, speaker)
    yield from _pets(clause, speaker)
    yield from _small(clause, speaker)


def relationship(speaker: str, rel: str, name: str) -> Found:
    """ "Inês is Maya's sister", as a relationship claim of the speaker."""
    return Found(
        speaker, lex.RELATIONS[rel], name, f"{name} is {speaker}'s {rel}", "relationship",
        (name, "person", rel),
    )  # fmt: skip


def _relatives(clause: str, speaker: str) -> Iterator[Found]:
    for m in RELATIVE.finditer(clause):
        name = m["relname"]
        if name and name.lower() not in lex.NOT_NAMES and stated(clause, m.start()):
            yield relationship(speaker, m["rel"].lower(), name)
    for pattern in (_IS_MY, _HAVE_NAMED):
        for m in pattern.finditer(clause):
            if m["v"].lower() not in lex.NOT_NAMES and stated(clause, m.start()):
                yield relationship(speaker, m["rel"].lower(), m["v"])


def _favourites(clause: str, speaker: str) -> Iterator[Found]:
    for pattern in (_FAVOURITE, _FAVOURITE_AFTER):
        m = pattern.search(clause)
        if m is None or not stated(clause, m.start()):
            continue
        who = m.groupdict().get("who") or "my"
        subject = speaker if who.lower() == "my" else who[:-2]
        value = val.liked(m["v"])
        category = _category(m["cat"])
        if value and category:
            text = f"{subject}'s favourite {category.replace('_', ' ')} is {value}"
            yield Found(subject, f"favourite_{category}", value, text, "preference")


def _category(words: str) -> str | None:
    word = words.lower().strip()
    if word in lex.EMPTY_VALUES or word in ("thing", "part", "one"):
        return None
    word = {"color": "colour", "film": "movie", "films": "movie"}.get(word, word)
    if word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word.replace(" ", "_")


def _pets(clause: str, speaker: str) -> Iterator[Found]:
    for m in _MY_PET.finditer(clause):
        name, kind = m["v"], m["k"].lower()
        if name.lower() in lex.NOT_NAMES or not stated(clause, m.start()):
            continue
        died = m["died"] is not None
        text = f"{speaker}'s {kind} {name} died" if died else f"{speaker} has a {kind} named {name}"
        yield Found(speaker, "pet", name, text, "fact", (name, "pet", kind), ends=died)


def _small(clause: str, speaker: str) -> Iterator[Found]:
    m = _NAME_IS.search(clause)
    if m and m["v"].lower() not in lex.NOT_NAMES and stated(clause, m.start()):
        yield Found(speaker, "name", m["v"], f"{speaker}'s name is {m['v']}")
    m = _MY_CAR.search(clause)
    if m and stated(clause, m.start()):
        value = val.phrase(m["v"])
        if value:
            kind = m["k"].lower()
            verb = "drives" if kind == "car" else "has"
            yield Found(speaker, kind, value, f"{speaker} {verb} {_a(value)} {value}", "fact",
                        (value, "thing", kind))  # fmt: skip
    m = _BIRTHDAY.search(clause)
    if m and stated(clause, m.start()):
        day = birthday(m["v"])
        if day:
            yield Found(speaker, "birthday", day, f"{speaker}'s birthday is {day}")
    m = _MY_EVENT.search(clause)
    if m and stated(clause, m.start()):
        value = val.event_noun(m["v"])
        if value:
            yield Found(speaker, "event", value, f"{speaker}'s {value}", "event", dated=True)


def birthday(text: str) -> str | None:
    """ "March 3rd, 1990" -> "3 March 1990"; "the 5th of June" -> "5 June"."""
    m = _DATE.match(text.strip())
    if m is None:
        return None
    day = int(m["d1"] or m["d2"])
    prefix = (m["m1"] or m["m2"]).lower()[:3]
    month = next(name for name in _MONTHS if name.startswith(prefix))
    if not 1 <= day <= 31:
        return None
    year = f" {m['y']}" if m["y"] else ""
    return f"{day} {month.capitalize()}{year}"


def _a(value: str) -> str:
    return "an" if value[:1].lower() in "aeiou" else "a"


article = _a
