"""Set phrasings that state a fact or a change without a subject + verb the table reads.

"today was my first day at Globex", "they promoted me to team lead", "my new title is staff
engineer", "Sam and I are dating", "it's over with Sam", "home is Lyon now", "nobody beats
ramen". Each reader takes a clause and yields :class:`~.special.Found` records, like the
readers of :mod:`.special`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import lexicon as lex
from . import values as val
from .clauses import NAME, mood, stated
from .special import Found, article

# A clause may open with a filler before the phrase ("so", "well, ", "update:").
_OPEN = r"^\s*(?:(?:so|and|well|ok|okay|oh|yeah|also|anyway|update|news)\s*[,:!]?\s+)*"
# A name: capitalised words, maybe joined by "of" or "&" ("Bank of America", "Marks & Spencer").
_CAPITAL = r"(?P<v>(?-i:[A-ZÀ-Þ][\w&.'-]*(?:\s+(?:of\s+|&\s+)?[A-ZÀ-Þ][\w&.'-]*)*))"
# "today was", "it's": a copula before the phrase, which the question guard would refuse.
_COPULA = re.compile(r"(?:\b(?:today|yesterday|it|this|that)\s+)?(?:was|is|'s)\s*$", re.I)
# Words before a phrase that deny it or make it about the past: "I quit my job at Globex".
_UNDONE = re.compile(
    r"(?:n't|\b(?:not|never|no\s+longer|left|leave|leaving|quit|quitting|lost|lose|losing|"
    r"resign\w*|fired|laid\s+off|from|miss|missed|old|former|previous|last|ex))\s*$",
    re.I,
)

_FIRST_DAY = re.compile(
    r"\bmy\s+first\s+(?:day|week|shift)\s+(?:of\s+work\s+|at\s+work\s+)?(?:at|with)\s+" + _CAPITAL,
    re.I,
)
_JOB_AT = re.compile(
    r"\bmy\s+(?:new\s+|current\s+|day\s+|full-time\s+|part-time\s+)?(?:job|position|role|"
    r"internship)\s+(?:at|with)\s+" + _CAPITAL,
    re.I,
)
_TITLE = re.compile(
    r"\bmy\s+(?:new\s+|current\s+|official\s+)?(?P<k>job\s+title|title|role|position)"
    r"(?:\s+(?:at|with)\s+(?:the\s+)?[\w&.-]+)?\s+(?:is|'s)\s+(?:now\s+)?(?P<v>.+)",
    re.I,
)
_PROMOTED = re.compile(
    r"\b(?:promoted|(?P<hired>hired|took\s+on))\s+me\s+(?:to|as)\s+(?:a\s+|an\s+)?(?P<v>.+)", re.I
)
_HIRED_ME = re.compile(rf"\b(?P<v>{NAME})\s+(?:just\s+|finally\s+|officially\s+)?hired\s+me\b")
# Words a role starts or ends with when said without "a" ("my role is head of design").
_LEADS = frozenset(
    ["head", "chief", "lead", "senior", "junior", "principal", "staff", "vp", "director"]
)

_COUPLE = re.compile(rf"(?:^|\b(?:and|but|so)\s+|,\s*)(?P<v>{NAME})\s+and\s+I\s+(?P<rest>.+)")
_TOGETHER = re.compile(
    r"^(?:dating|together|a\s+couple|an\s+item|seeing\s+each\s+other|going\s+out|"
    r"in\s+a\s+relationship|official)\b",
    re.I,
)
_STARTED = re.compile(r"^(?:started|began)\s+(?:dating|seeing\s+each\s+other|going\s+out)\b", re.I)
_SPLIT = re.compile(
    r"^(?:broke\s+up|split(?:\s+up)?|separated|called\s+it\s+quits|(?P<be>over|done|finished)"
    r"(?:\s+(?:now|for\s+good))?\s*$)",
    re.I,
)
_WED = re.compile(r"^(?:got\s+|just\s+got\s+)?(?P<k>engaged|married)\b", re.I)
_OVER_WITH = re.compile(
    r"\b(?:it's|it\s+is|things\s+are|we're|we\s+are)\s+(?:so\s+|totally\s+|officially\s+|"
    rf"definitely\s+|really\s+)?over\s+(?:with|between)\s+(?:me\s+and\s+)?(?P<v>{NAME})(?!\w)",
    re.I,
)
_DUMPED_ME = re.compile(
    rf"\b(?P<v>{NAME})\s+(?:just\s+|finally\s+)?(?:dumped|left|broke\s+up\s+with)\s+me\b"
)

_HOME_IS = re.compile(
    _OPEN + r"(?:(?:my|our)\s+)?home\s+is\s+(?:now\s+)?(?:in\s+)?" + _CAPITAL + r"(?:\s+now)?\s*$",
    re.I,
)
_IS_HOME = re.compile(
    _OPEN + rf"(?P<v>{NAME})\s+is\s+(?:now\s+)?(?:my\s+|our\s+)?home(?:\s+now)?\s*$", re.I
)
_NEW_PLACE = re.compile(
    r"\b(?:my|our)\s+new\s+(?:flat|apartment|place|house|home|condo|studio)\s+in\s+" + _CAPITAL,
    re.I,
)

_BEATS = re.compile(
    _OPEN + r"(?:nobody|no\s+one|nothing|(?:you\s+)?can't\s+beat|(?:you\s+)?cannot\s+beat)"
    r"(?:\s+(?:beats|compares\s+to|tops))?\s+(?P<v>.+)",
    re.I,
)


def _said(clause: str, m: re.Match[str] | None) -> bool:
    """Whether a match is stated, and not undone by the words just before it."""
    if m is None:
        return False
    before = _COPULA.sub("", clause[: m.start()])
    return stated(before, len(before)) and not _UNDONE.search(before)


def _employer(speaker: str, tail: str, start: bool = False) -> Found | None:
    org = val.organisation(tail)
    if not org:
        return None
    return Found(speaker, "works_at", org, f"{speaker} works at {org}", "fact",
                 (org, "organization", "employer"), start=start,
                 plan=f"start working at {org}")  # fmt: skip


def _work(clause: str, speaker: str) -> Iterator[Found]:
    for pattern, start in ((_FIRST_DAY, True), (_JOB_AT, False), (_HIRED_ME, True)):
        m = pattern.search(clause)
        if _said(clause, m) and m is not None:
            found = _employer(speaker, m["v"], start)
            if found is not None:
                yield found
    m = _TITLE.search(clause) or _PROMOTED.search(clause)
    if _said(clause, m) and m is not None:
        title = _title(m["v"], loose=(m.groupdict().get("k") or "title").endswith("title"))
        if title:
            text = f"{speaker} works as {article(title)} {title}"
            yield Found(speaker, "job_title", title, text, "fact", start=True)


def _title(tail: str, loose: bool) -> str | None:
    """A job title; a "role" or "position" must look like one ("pretty chill" is not)."""
    if re.match(r"\s*(?:to|that|because|so|not|very|pretty|really|great|fine|ok|okay|good)\b",
                tail, re.I):  # fmt: skip
        return None
    value = val.phrase(tail)
    if value is None or loose:
        return value
    words = value.lower().split()
    if words[0] in _LEADS or words[-1] in _LEADS or val.occupation(value):
        return value
    return None


def _couple(clause: str, speaker: str) -> Iterator[Found]:
    m = _COUPLE.search(clause)
    if m is not None and m["v"].lower() not in lex.NOT_NAMES and stated(clause, m.start("v")):
        found = _couple_says(speaker, m["v"], m["rest"])
        if found is not None:
            yield found
    for pattern in (_OVER_WITH, _DUMPED_ME):
        over = pattern.search(clause)
        if over is not None and over["v"].lower() not in lex.NOT_NAMES and _said(clause, over):
            yield _broke_up(speaker, over["v"])


def _couple_says(speaker: str, name: str, rest: str) -> Found | None:
    """What "<name> and I ..." says of the speaker's partner."""
    how, predicate = mood(rest)
    if how.skip or how.future or how.past or how.was:
        return None
    split = _SPLIT.match(predicate)
    if split is not None and (how.be or not split["be"]) and not how.negated:
        return _broke_up(speaker, name)
    if _TOGETHER.match(predicate) and how.be:
        return _broke_up(speaker, name) if how.negated else _partner(speaker, name, "partner")
    if how.negated:
        return None
    if _STARTED.match(predicate):
        return _partner(speaker, name, "partner")
    wed = _WED.match(predicate)
    if wed is not None:
        return _partner(speaker, name, "spouse" if wed["k"].lower() == "married" else "fiancé")
    return None


def _partner(speaker: str, name: str, rel: str) -> Found:
    return Found(speaker, lex.RELATIONS[rel], name, f"{name} is {speaker}'s {rel}",
                 "relationship", (name, "person", rel))  # fmt: skip


def _broke_up(speaker: str, name: str) -> Found:
    return Found(speaker, "partner", name, f"{speaker} and {name} broke up", "relationship",
                 (name, "person", "partner"), ends=True)  # fmt: skip


def _home(clause: str, speaker: str) -> Iterator[Found]:
    for pattern in (_HOME_IS, _IS_HOME, _NEW_PLACE):
        m = pattern.search(clause)
        if _said(clause, m) and m is not None:
            place = val.proper(m["v"])
            if place and place.lower() not in lex.NOT_NAMES:
                yield Found(speaker, "lives_in", place, f"{speaker} lives in {place}", "fact",
                            (place, "place", "home"))  # fmt: skip
                return


def _likes(clause: str, speaker: str) -> Iterator[Found]:
    m = _BEATS.match(clause)
    if m is not None and stated(clause, m.start()):
        value = val.liked(m["v"])
        if value:
            yield Found(speaker, "likes", value, f"{speaker} likes {value}", "preference")


# One cheap scan first: which readers a clause has any cue for (most clauses have none).
_CUE = re.compile(
    r"\b(?:(?P<work>first\s+(?:day|week|shift)|job|position|role|internship|title|promoted|"
    r"hired|took\s+on)|(?P<couple>and\s+I|over|dumped|left\s+me|broke\s+up\s+with\s+me)|"
    r"(?P<home>home|new\s+(?:flat|apartment|place|house|condo|studio))|"
    r"(?P<likes>beats?|compares|tops))\b",
    re.I,
)
_READERS = {"work": _work, "couple": _couple, "home": _home, "likes": _likes}


def read(clause: str, speaker: str) -> Iterator[Found]:
    """Every set phrasing in a clause."""
    cues = {m.lastgroup for m in _CUE.finditer(clause)}
    for cue, reader in _READERS.items():
        if cue in cues:
            yield from reader(clause, speaker)
