"""One value replacing another in a single statement.

"I switched from keto to vegan", "I traded in my Corolla for a Civic", "a Pixel instead of an
iPhone", "I left Northwind and joined Globex". The readers here find the old and the new words;
which attribute they are (a diet, a phone, an employer) is decided by the value checks of the
predicate table, so "switched from tea to coffee" states nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .patterns import PREDICATES, Predicate

_HINTS = r"(?:\s+(?P<hint>jobs|companies|employers|firms|teams|phones|cars|diets))?"
_FROM_TO = re.compile(
    r"^(?:switch(?:ed)?|(?P<ing>switching|changing|moving|going|relocating)|changed?|"
    r"moved?|relocated?|went|gone|transferred|upgraded|downgraded)"
    + _HINTS
    + r"(?:\s+(?:over|back|straight))?\s+(?:from|out\s+of|away\s+from)\s+(?P<old>.+?)"
    r"\s+(?:over\s+)?(?:to|into)\s+(?P<new>.+)$",
    re.I,
)
_FOR = re.compile(
    r"^(?:traded|swapped|exchanged|trade|swap|(?P<ing>trading|swapping))(?:\s+in)?\s+"
    r"(?P<old>.+?)\s+for\s+(?P<new>.+)$",
    re.I,
)
_WITH = re.compile(r"^(?:replaced|(?P<ing>replacing))\s+(?P<old>.+?)\s+with\s+(?P<new>.+)$", re.I)
_TO = re.compile(
    r"^(?:switched|switch|(?P<ing>switching|changing))"
    + _HINTS
    + r"(?:\s+over)?\s+to\s+(?P<new>.+)$",
    re.I,
)
# One cheap test first: most predicates start with none of the verbs above.
_CUE = re.compile(
    r"(?:switch|chang|mov|relocat|went|gone|go|transfer|upgrad|downgrad|trad|swap|exchang|"
    r"replac)",
    re.I,
)
_INSTEAD = re.compile(r"\binstead\s+of\s+(?P<old>.+)$", re.I)
# A verb that ends something without saying what kind of thing: "left Northwind" is an employer
# only when the same subject "joined Globex" in the same breath.
_LEAVE = re.compile(
    r"^(?:left|quit|ditched|dropped|sold|gave\s+up|got\s+rid\s+of|stopped|dumped|"
    r"broke\s+up\s+with|moved\s+(?:out\s+of|away\s+from|from))\s+(?P<old>.+)$",
    re.I,
)
_HINTED = {"jobs": "works_at", "companies": "works_at", "employers": "works_at",
           "firms": "works_at", "teams": "works_at", "phones": "phone", "cars": "car",
           "diets": "diet"}  # fmt: skip
_NAMED = frozenset(["works_at", "lives_in", "studies_at", "partner"])
_CAPITALISED = re.compile(r"\s*(?:(?:the|my|our)\s+)?(?-i:[A-ZÀ-Þ])", re.I)
_MOVES = re.compile(r"^(?:mov|relocat)", re.I)
#: Attributes a switch is tried as, in order, when nothing says which.
_BY_VALUE = ("diet", "phone", "car", "hobby")
#: Attributes one value of can replace another ("instead of", "left ... and joined ...").
SWITCHABLE = frozenset(["diet", "phone", "car", "hobby", "works_at", "lives_in", "studies_at",
                        "partner", "job_title"])  # fmt: skip


def _base(attribute: str) -> Predicate:
    """The table's first free-valued rule for an attribute: its check, entity and wording."""
    return next(
        p for p in PREDICATES if p.attribute == attribute and p.value is None and p.be is not True
    )


BASE: dict[str, Predicate] = {a: _base(a) for a in SWITCHABLE}


@dataclass(frozen=True)
class Switch:
    """A change read: the rule whose wording and check fit, the old value ("" when unknown or
    unclear) and the new one; ``planned`` for "I'm switching to ...", a change to come."""

    p: Predicate
    old: str
    new: str
    planned: bool


def switch(predicate: str) -> Switch | None:
    """The change a predicate states as "from A to B", "A for B", "A with B" or "to B"."""
    if not _CUE.match(predicate):
        return None
    for pattern in (_FROM_TO, _FOR, _WITH, _TO):
        m = pattern.match(predicate)
        if m is not None:
            return _classify(m, predicate)
    return None


def _classify(m: re.Match[str], predicate: str) -> Switch | None:
    groups = m.groupdict()
    hint = (groups.get("hint") or "").lower()
    if hint:
        attributes: tuple[str, ...] = (_HINTED[hint],)
    elif _MOVES.match(predicate):
        attributes = ("lives_in",)
    else:
        attributes = _BY_VALUE
    for attribute in attributes:
        p = BASE[attribute]
        new = p.check(m["new"])
        if new:
            old = groups.get("old")
            gone = (p.check(old) if old else None) or ""
            planned = groups.get("ing") is not None
            return Switch(replace(p, plan="switch to {v}"), gone, new, planned)
    return None


def instead(predicate: str, attribute: str) -> str | None:
    """The old value of "B instead of A", when A is a value of the same attribute."""
    m = _INSTEAD.search(predicate)
    return _old(m["old"], attribute) if m is not None else None


def left(predicate: str, attribute: str) -> str | None:
    """What "left X" / "sold X" ended, read as a value of ``attribute``."""
    m = _LEAVE.match(predicate)
    return _old(m["old"], attribute) if m is not None else None


def _old(tail: str, attribute: str) -> str | None:
    # A place, employer or person must be named: "sold the house in Leeds" left no "House".
    if attribute not in SWITCHABLE or (attribute in _NAMED and not _CAPITALISED.match(tail)):
        return None
    return BASE[attribute].check(tail)
