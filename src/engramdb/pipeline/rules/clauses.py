"""Reading a message as clauses: who each one is about and in what mood it is said.

A clause is read as ``subject + auxiliaries + predicate``. The subject is "I"/"we" (the speaker),
"my sister Inês" (a named relative), "my sister" (an unnamed one) or a capitalised name. The
auxiliaries decide the mood: negated ("don't", "no longer"), past ("used to"), future ("will",
"going to"), or hypothetical ("would", "could", "want to"), which is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from . import lexicon as lex

# Apostrophes are unified first; the replacement keeps every offset, so time mentions found in
# the original text are still found in the clauses.
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;\n]+|$)")
# A comma followed by a conjunction, or "but", starts a new clause; a plain "and" does not
# ("I love sushi and ramen"), the subject scan finds a second subject after it anyway.
_CLAUSE_BREAK = re.compile(r",\s*(?:and|but|so|because|although|though|while)\s+|\s+but\s+", re.I)

_REL = "|".join(sorted((re.escape(w) for w in lex.RELATIONS), key=len, reverse=True))
NAME = r"(?-i:[A-ZÀ-Þ][^\W\d_]+(?:[ -][A-ZÀ-Þ][^\W\d_]+)?)"
_MODIFIER = (
    r"(?:(?:older|younger|little|big|baby|best|oldest|youngest|eldest|twin|new|good|close|"
    r"step-?)\s+)?"
)
RELATIVE = re.compile(
    rf"\bmy\s+{_MODIFIER}(?P<rel>{_REL})(?:(?:,\s*|\s+)(?P<relname>{NAME})(?!\w|'s))?", re.I
)
_SUBJECT = re.compile(
    rf"(?P<first>\b(?:I|we)\b|\b(?:my\s+\w+|{NAME})\s+and\s+I\b)"
    rf"|{RELATIVE.pattern}"
    rf"|(?<![\w'])(?P<name>{NAME})(?!\w|')",
    re.I,
)
# Words before a subject that make what follows not a statement of fact: a condition, a
# question, reported or imagined speech.
_GUARD = re.compile(
    r"\b(?:if|unless|whether|suppose|supposing|imagine|pretend|wish|dream|dreamt|dreamed|"
    r"said|says|say|told|tells|tell|thinks?|thought|believes?|heard|claims?|hopes?|hoping|"
    r"maybe|perhaps|probably|whenever|when|in\s+case|as\s+if|would|could|should|might|"
    r"what|where|why|how|who|do|does|did|can|will|are|is|were|was|have|has|whether|lest|"
    r"joked|joking|kidding|asks?|asked|wonder|wondering)\s*,?\s*$",
    re.I,
)
_FAR_GUARD = re.compile(
    r"\b(?:if|unless|whether|suppose|imagine|pretend|wish|said|says|told|tells|thinks|"
    r"believes|heard|claims|hopes|what\s+if|kidding|joking)\b",
    re.I,
)
_QUESTION_START = re.compile(
    r"^\s*(?:do|does|did|are|is|was|were|can|could|would|should|will|have|has|shall|may|"
    r"what|where|when|why|how|who|which|whose|ever)\b",
    re.I,
)

_AUX = re.compile(
    r"\s*(?:"
    r"(?P<pneg>did\s+not|didn't|didnt|never|have\s+not|haven't|has\s+not|hasn't)|"
    r"(?P<neg>do\s+not|don't|dont|does\s+not|doesn't|doesnt|no\s+longer|not|no\s+more)|"
    r"(?P<used>used\s+to|use\s+to)|"
    r"(?P<fut>will|'ll|shall|gonna|going\s+to(?=\s+(?-i:[a-z]))|about\s+to|"
    r"plan(?:ning)?\s+to|intend\s+to|scheduled\s+to|supposed\s+to)|"
    r"(?P<hyp>would|'d|could|might|may|should|must|wanna|want\s+to|wants\s+to|wish|"
    r"hope\s+to|hoping\s+to|need\s+to|needs\s+to|have\s+to|has\s+to|got\s+to|"
    r"thinking\s+(?:about|of)|considering|can(?!not|'t))|"
    r"(?P<perf>'ve|(?:have|has|had)(?=\s+(?:been|got|gotten|done|gone|had|become|begun|left|"
    r"quit|met|made|found|bought|sold|taken|known|seen|grown|\w+ed)\b))|"
    r"(?P<be>am|is|are|was|were|be|been|being|'m|'s|'re|im)|"
    r"(?P<adv>just|finally|recently|now|also|actually|really|still|currently|officially|"
    r"already|even|both|all|totally|basically|literally|definitely|absolutely|kinda|"
    r"sort\s+of|kind\s+of|mostly|only|happily|newly|proudly|ever|always|usually|"
    r"sometimes|often|originally|technically|honestly|seriously|personally|mainly|"
    r"eventually|then|once|too|since)"
    r")\b(?!')",
    re.I,
)
# "and" (or "then") before a lower-case word that starts no new subject joins a second predicate
# to the same subject: "I left Northwind and joined Globex". A capital ("Bosnia and Herzegovina")
# or a pronoun ("and she works at ...") is no such join.
_CONJUNCT = re.compile(
    r"\s*,?\s+(?:and(?:\s+then)?|then|&)\s+(?=(?-i:[a-z]))"
    r"(?!(?:i|we|he|she|it|they|you|my|his|her|their|our|its|this|that|there|who|which|what|"
    r"how|when|where|why|if)\b)",
    re.I,
)
# A diary-style clause without "I" ("Just moved to Lyon!", "got a dog from the shelter"): only
# a past-tense change verb at the very start is read as the speaker's.
_DIARY = re.compile(
    r"^\s*(?:(?:so|and|well|ok|okay|oh|yeah|also|update|news|big\s+news)\s*[,:!]?\s+)*"
    r"(?=(?:(?:just|finally|officially|recently|also)\s+)*(?:moved|relocated|joined|quit|left|"
    r"started|got|bought|sold|adopted|rescued|switched|went|took|retired|graduated|signed|"
    r"settled|traded|broke|landed|brought|swapped)\b)",
    re.I,
)
_ENDED = re.compile(r"\b(?:anymore|any\s+more|no\s+more)\b", re.I)
_PAST_BE = re.compile(r"^(?:was|were)$", re.I)


@dataclass(frozen=True)
class Mood:
    """How a clause holds its predicate."""

    negated: bool = False
    past: bool = False  # "used to": true before, not now
    future: bool = False
    be: bool = False  # a form of "be" came before the predicate ("I'm a nurse")
    was: bool = False  # ... in the past tense ("I was a nurse")
    perfect: bool = False
    skip: bool = False  # hypothetical, or a past negation: states nothing


@dataclass(frozen=True)
class Subject:
    """Who a clause is about, and the relative it names ("my sister Inês") if any."""

    name: str
    first_person: bool
    relation: str | None = None  # the word said: "sister", "wife"
    relative_name: str | None = None


def normalise(text: str) -> str:
    """The text with one kind of apostrophe (same length, so offsets still hold)."""
    return text.translate(_APOSTROPHES)


def clauses(text: str) -> Iterator[str]:
    """The statement clauses of a text: questions are dropped whole."""
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        if "?" in sentence or _QUESTION_START.match(sentence):
            continue
        yield from (c for c in _CLAUSE_BREAK.split(sentence.rstrip(".!;\n ")) if c.strip())


def subjects(clause: str, speaker: str) -> Iterator[tuple[Subject, str]]:
    """Each subject of a clause that starts a statement, with the words after it."""
    diary = _DIARY.match(clause)
    if diary is not None:
        yield Subject(speaker, first_person=True), clause[diary.end() :]
    for m in _SUBJECT.finditer(clause):
        if not stated(clause, m.start()):
            continue
        subject = _subject(m, speaker)
        if subject is not None:
            yield subject, clause[m.end() :]


def stated(clause: str, start: int) -> bool:
    """Whether words before ``start`` leave what follows a statement (no "if", "she said")."""
    before = clause[:start]
    return not (_GUARD.search(before) or _FAR_GUARD.search(before))


def _subject(m: re.Match[str], speaker: str) -> Subject | None:
    if m["first"]:
        return Subject(speaker, first_person=True)
    if m["rel"]:
        relname = m["relname"]
        if relname and relname.lower() not in lex.NOT_NAMES:
            return Subject(relname, False, m["rel"].lower(), relname)
        return Subject(f"{speaker}'s {m['rel'].lower()}", False, m["rel"].lower())
    name = m["name"]
    if name.lower() in lex.NOT_NAMES or name.split()[0].lower() in lex.NOT_NAMES:
        return None
    return Subject(name, first_person=False)


def mood(rest: str) -> tuple[Mood, str]:
    """The mood of the auxiliaries at the start of ``rest``, and the predicate after them."""
    flags, predicate = _auxiliaries(rest)
    return _mood(flags, rest, predicate), predicate


def conjuncts(predicate: str) -> list[str]:
    """A predicate split where "and"/"then" joins another to the same subject."""
    return _CONJUNCT.split(predicate)


def conjunct_mood(first: Mood, rest: str) -> tuple[Mood, str] | None:
    """The mood of a predicate joined to an earlier one: its own auxiliaries if it has any
    ("... and don't eat meat"), else the earlier one's ("I'm going to quit and move to Lyon":
    both planned). None when it states nothing: after a hypothetical, or after a negation whose
    reach is unclear ("I don't smoke and drink")."""
    flags, predicate = _auxiliaries(rest)
    own = _mood(flags, rest, predicate)
    if set(flags) - {"adv", "now"}:
        return own, predicate
    if first.skip or first.negated:
        return None
    inherited = Mood(
        negated=own.negated,
        past=first.past and "now" not in flags,
        future=first.future,
        be=first.be,
        was=first.was,
        perfect=first.perfect,
    )
    return inherited, predicate


def _auxiliaries(rest: str) -> tuple[dict[str, bool], str]:
    flags: dict[str, bool] = {}
    pos = 0
    while (m := _AUX.match(rest, pos)) is not None and m.end() > pos:
        group = m.lastgroup or "adv"
        flags[group] = True
        if group == "be" and _PAST_BE.match(m[group]):
            flags["was"] = True
        if group == "adv" and m[group].lower() == "now":
            flags["now"] = True
        pos = m.end()
    return flags, rest[pos:].lstrip()


def _mood(flags: dict[str, bool], rest: str, predicate: str) -> Mood:
    negated = flags.get("neg", False) or (bool(_ENDED.search(predicate)) and "not" in rest)
    return Mood(
        negated=negated,
        past=flags.get("used", False),
        future=flags.get("fut", False),
        be=flags.get("be", False),
        was=flags.get("was", False),
        perfect=flags.get("perf", False),
        skip=flags.get("hyp", False) or flags.get("pneg", False),
    )


def ended(predicate: str) -> bool:
    """Whether the clause says the value stopped ("... anymore")."""
    return bool(_ENDED.search(predicate))


def relatives(clause: str) -> Iterator[tuple[str, str]]:
    """(relation word, name) for each "my sister Inês" in a clause."""
    for m in RELATIVE.finditer(clause):
        relname = m["relname"]
        if relname and relname.lower() not in lex.NOT_NAMES:
            yield m["rel"].lower(), relname
