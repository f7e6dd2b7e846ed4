"""The offline fact extractor: regular rules that turn chat turns into claims, no model.

It reads each user turn as clauses (``subject + auxiliaries + predicate``), matches the predicate
against a table (:mod:`.rules.patterns`) and a few non-verbal shapes (:mod:`.rules.special`),
and words each claim as a standalone third-person sentence with absolute dates. What it
understands and what it does not is in the docs ("The offline extractor"); the conventions:

* A state ("I live in Porto", "I moved to Porto yesterday") holds from the date the clause gives,
  else from the message's time; a dated change is worded "Maya lives in Porto (since 28 May
  2024)".
* An ending ("I no longer live in Lisbon", "I quit my job") is ``ends=True`` from the same date.
* A past state ("I used to live in Lisbon") has ``valid_to`` = the message's time (or the end of
  the period the clause gives) and ``valid_from`` = the start of that period, else
  :data:`UNKNOWN_START`; it is not ``ends`` and supersedes nothing.
* A plan ("we're going to Japan in March") holds from the message and, when dated, until the
  end of that date (``valid_to``); a dated event ("I ran a marathon last Sunday") is valid from
  its date.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..records import OPPOSITES, SINGLE_VALUED, Claim, EntityRef, Row
from ..types import TimeMention
from .rules import changes, dates, idioms
from .rules import clauses as cl
from .rules.patterns import ENDS_EMPTY, PREDICATES, Predicate
from .rules.special import Found, article, read, relationship

UNKNOWN_START = dates.UNKNOWN_START
_DAY = 86_400.0

# One search decides whether a turn can hold anything the rules read; most chat turns stop here.
_TRIGGER = re.compile(
    r"\b(?:liv|lived|resid|mov|relocat|based|from|born|grew|work|job|join|hired|employ|promot|"
    r"quit|left|leav|resign|laid|fired|retir|study|studi|student|enrol|admit|accept|graduat|"
    r"married|engaged|divorc|single|widow|broke|dating|seeing|driv|drove|bought|buy|got|get|"
    r"purchas|leas|own|have|has|had|sold|adopt|rescu|veg|keto|paleo|pesc|gluten|dairy|halal|"
    r"kosher|eat|allerg|intoleran|diagnos|suffer|struggl|pregnan|diabet|smok|vap|play|took|"
    r"tak|start|began|begun|go|went|do|does|did|practi|gave|give|stop|lov|like|enjoy|prefer|"
    r"dig|adore|fan|into|obsess|addict|hate|dislik|detest|loath|stand|despis|turned|am|i'?m|"
    r"is|are|was|were|been|my|call|will|gonna|going|plan|off|heading|flying|visit|travel|"
    r"favou?rite|name|birthday|wedding|switch|chang|trad|swap|replac|instead|settl|sign|home|"
    r"first|title|role|owner|team|employee|beat|gone|over|dump|split|together|fan|number|pack|"
    r"lost|fell|fallen|hook|crazy|nuts)",
    re.I,
)
_PAST_VERB = re.compile(
    r"^(?:\w+ed|ran|went|saw|met|had|got|won|lost|took|gave|made|did|bought|sold|flew|drove|"
    r"swam|rode|wrote|read|ate|drank|sang|began|became|broke|caught|came|found|built|left|"
    r"spent|hosted|threw|held|beat|finished|visited)\b",
    re.I,
)
_TRAVEL = re.compile(
    r"^(?:going|heading|flying|travel{1,2}ing|off|driving|visiting|go|travel|fly|visit|head)"
    r"\s+(?:to\s+|back\s+to\s+)?(?P<v>(?-i:[A-Z]).+)",
    re.I,
)
_TRAILING_PREP = re.compile(r"(?:\s+(?:on|in|at|during|this|next|last|by|for|the|of))+\s*$", re.I)
_MY = re.compile(r"\bmy\b", re.I)
_ME = re.compile(r"\bme\b", re.I)


def extract_rules(rows: Sequence[Row], *, subject_for: Callable[[Row], str | None]) -> list[Claim]:
    """Extract claims from chat turns with rules only (no model, no network).

    Args:
        rows: Episode rows, as :func:`engramdb.pipeline.messages.prepare` builds them (their
            ``time_mentions`` resolve "yesterday" and "in March").
        subject_for: The display name of a row's speaker when it is the user's turn, None
            otherwise. Rows it returns None for yield nothing: first-person statements need a
            speaker, and an assistant's words are not the user's facts.

    Returns:
        The claims, in the order of the rows and of the clauses in each row.
    """
    out: list[Claim] = []
    for row in rows:
        speaker = subject_for(row)
        # A dated turn may hold an event the verb table does not know ("I ran a marathon").
        if speaker and (row.time_mentions or _TRIGGER.search(row.text)):
            out.extend(_row_claims(row, speaker))
    return out


@dataclass(frozen=True)
class _Turn:
    """What every claim of one row shares."""

    row: Row
    speaker: str
    mentions: list[TimeMention]

    def claim(
        self,
        subject: str,
        attribute: str,
        value: str,
        text: str,
        kind: str,
        *,
        valid_from: float | None = None,
        valid_to: float | None = None,
        ends: bool = False,
        entities: tuple[EntityRef, ...] = (),
        confidence: float = 1.0,
    ) -> Claim:
        return Claim(
            subject=subject,
            attribute=attribute,
            value=value,
            text=text,
            kind=kind,
            source_ids=(self.row.id,),
            valid_from=self.row.occurred_at if valid_from is None else valid_from,
            valid_to=valid_to,
            ends=ends,
            single=is_single(attribute),
            entities=entities,
            confidence=confidence,
        )


def is_single(attribute: str) -> bool:
    """Whether an attribute holds one value at a time (favourites: one per category)."""
    return attribute in SINGLE_VALUED or attribute.startswith("favourite_")


def _row_claims(row: Row, speaker: str) -> list[Claim]:
    turn = _Turn(row, speaker, dates.mentions(row.time_mentions))
    claims: list[Claim] = []
    for clause in cl.clauses(cl.normalise(row.text)):
        mention = dates.in_clause(turn.mentions, clause)
        found = [*read(clause, speaker), *idioms.read(clause, speaker)]
        claims.extend(_special(f, mention, turn) for f in found)
        for subject, rest in cl.subjects(clause, speaker):
            claims.extend(_subject_claims(subject, rest, mention, turn))
    return _unique(claims)


def _unique(claims: list[Claim]) -> list[Claim]:
    seen: set[tuple[str, str, str, bool]] = set()
    out = []
    for c in claims:
        key = (c.subject, c.attribute, c.value.lower(), c.ends)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _special(found: Found, mention: TimeMention | None, turn: _Turn) -> Claim:
    entities = () if found.entity is None else (EntityRef(*found.entity),)
    if found.dated and mention is not None:
        future = mention.start.timestamp() > turn.row.occurred_at
        verb = "is" if future else "was"
        text = f"{found.text} {verb} {dates.on(mention)}"
        kind = "plan" if future else "event"
        return turn.claim(found.subject, "plan" if future else "event", found.value, text, kind,
                          valid_from=_plan_start(mention, turn) if future else
                          mention.start.timestamp(),
                          valid_to=mention.end.timestamp() if future else None)  # fmt: skip
    if found.dated:
        text = f"{found.text} is coming up"
        return turn.claim(found.subject, "plan", found.value, text, "plan")
    if found.start and mention is not None:
        return _started(found, mention, turn, entities)
    return turn.claim(found.subject, found.attribute, found.value, found.text, found.kind,
                      ends=found.ends, entities=entities)  # fmt: skip


def _started(
    found: Found, mention: TimeMention, turn: _Turn, entities: tuple[EntityRef, ...]
) -> Claim:
    """ "today was my first day at Globex": true since that day; "... is tomorrow": a plan."""
    start = mention.start.timestamp()
    if start > turn.row.occurred_at:
        plan = found.plan or found.text
        return _plan_claim(cl.Subject(found.subject, True), plan, mention, turn, entities)
    text = f"{found.text} ({dates.since(mention)})"
    return turn.claim(found.subject, found.attribute, found.value, text, found.kind,
                      valid_from=start, ends=found.ends, entities=entities)  # fmt: skip


def _plan_start(mention: TimeMention, turn: _Turn) -> float:
    return min(turn.row.occurred_at, mention.start.timestamp() - 1.0)


def _subject_claims(
    subject: cl.Subject, rest: str, mention: TimeMention | None, turn: _Turn
) -> list[Claim]:
    """The claims of one subject's predicate and of those "and" joins to it ("I left Northwind
    and joined Globex"); a "left X" that alone says nothing ends what a joined one starts."""
    mood, predicate = cl.mood(rest)
    if mood.skip:
        return []
    first, *others = cl.conjuncts(predicate)
    said = [(first, _table(subject, mood, first, mention, turn))]
    for text in others:
        joined = cl.conjunct_mood(mood, text)
        if joined is not None:
            said.append((joined[1], _table(subject, joined[0], joined[1], mention, turn)))
    claims = [c for _, found in said for c in found or ()]
    if said[0][1] is None:
        claims = _generic(subject, mood, predicate, mention, turn) + claims
    return claims + _left(subject, said, claims, mention, turn)


def _table(
    subject: cl.Subject, mood: cl.Mood, predicate: str, mention: TimeMention | None, turn: _Turn
) -> list[Claim] | None:
    """The claims of the first rule that fits a predicate; None when none does."""
    found = changes.switch(predicate)
    if found is not None:
        return _switch(found, subject, mood, mention, turn)
    for p in PREDICATES:
        # The cheap test first: a rule for "I'm ..." cannot fit "I ...", nor the reverse.
        if p.be is not None and p.be != mood.be:
            continue
        m = p.pattern.match(predicate)
        if m is not None:
            claims = _apply(p, m, subject, mood, predicate, mention, turn)
            if claims is not None:
                said = _Said(p, subject, "", mention, turn)
                return claims + _instead(p, claims, predicate, said)
    return None


def _switch(
    found: changes.Switch,
    subject: cl.Subject,
    mood: cl.Mood,
    mention: TimeMention | None,
    turn: _Turn,
) -> list[Claim]:
    """ "I switched from keto to vegan": the new value holds, the old one ends."""
    said = _Said(found.p, subject, found.new, mention, turn)
    if mood.future or (found.planned and not mood.past):
        return _plan(said)
    if mood.negated or mood.past:
        return []
    claims = _holds(said)
    if found.old:
        claims.append(_ends(_Said(found.p, subject, found.old, mention, turn), found.p.attribute))
    return claims


def _instead(p: Predicate, claims: list[Claim], predicate: str, said: _Said) -> list[Claim]:
    """ "I drive a Civic instead of the Corolla now": the Corolla ends."""
    new = next((c for c in claims if not c.ends and c.attribute == p.attribute), None)
    old = changes.instead(predicate, p.attribute) if new is not None else None
    if new is None or not old or old.lower() == new.value.lower():
        return []
    base = changes.BASE[p.attribute]
    return [_ends(_Said(base, said.subject, old, said.mention, said.turn), p.attribute)]


def _left(
    subject: cl.Subject,
    said: list[tuple[str, list[Claim] | None]],
    claims: list[Claim],
    mention: TimeMention | None,
    turn: _Turn,
) -> list[Claim]:
    """ "I left Northwind and joined Globex": a "left X" no rule read ends the value of the
    attribute another joined predicate starts, when X is a value of that kind."""
    started = [c.attribute for c in claims if not c.ends and c.attribute in changes.SWITCHABLE]
    ended = {c.attribute for c in claims if c.ends}
    out: list[Claim] = []
    for text, found in said:
        if found:
            continue
        for attribute in started:
            old = None if attribute in ended else changes.left(text, attribute)
            if old:
                base = changes.BASE[attribute]
                out.append(_ends(_Said(base, subject, old, mention, turn), attribute))
                ended.add(attribute)
                break
    return out


@dataclass(frozen=True)
class _Said:
    """One predicate match, read: who, what, the date the clause gives."""

    p: Predicate
    subject: cl.Subject
    value: str
    mention: TimeMention | None
    turn: _Turn
    extra: tuple[EntityRef, ...] = ()

    def words(self, template: str) -> str:
        return template.format(s=self.subject.name, v=self.value, a=article(self.value))

    def entities(self) -> tuple[EntityRef, ...]:
        own: tuple[EntityRef, ...] = ()
        if self.p.entity and self.value and self.p.attribute != "pet":
            own = (EntityRef(self.value, self.p.entity, self.p.relation),)
        if not self.subject.first_person and self.subject.relative_name:
            own += (EntityRef(self.subject.name, "person"),)
        return own + self.extra

    def make(self, attribute: str, template: str, kind: str, **kw: object) -> Claim:
        return self.turn.claim(
            self.subject.name, attribute, self.value, self.words(template), kind,
            entities=self.entities(), **kw,  # type: ignore[arg-type]
        )  # fmt: skip


def _value(p: Predicate, m: re.Match[str]) -> str | None:
    """The clean value of a match; "" when an optional value is absent; None: no match."""
    if p.value is not None:
        return p.value
    raw = m.groupdict().get("v")
    if raw is None:
        return "" if p.value_optional else None
    return p.check(raw)


def _apply(
    p: Predicate,
    m: re.Match[str],
    subject: cl.Subject,
    mood: cl.Mood,
    predicate: str,
    mention: TimeMention | None,
    turn: _Turn,
) -> list[Claim] | None:
    """The claims of one matching rule; None when the rule does not fit after all (the next
    rule is tried); [] when it fits but states nothing (a negated "from")."""
    if p.needs_negation != mood.negated and (p.needs_negation or p.negation == "state"):
        return None
    value = _value(p, m)
    if value is None:
        return None
    said = _pet(p, m, subject, value, mention, turn) or _Said(p, subject, value, mention, turn)
    return _decide(said, m, mood, predicate)


def _pet(
    p: Predicate,
    m: re.Match[str],
    subject: cl.Subject,
    value: str,
    mention: TimeMention | None,
    turn: _Turn,
) -> _Said | None:
    if p.attribute != "pet":
        return None
    kind = m["k"].lower().removesuffix("s")
    if value:
        wording = ("{s} has a " + kind + " named {v}", "{s} no longer has {v}",
                   "{s} used to have a " + kind + " named {v}")  # fmt: skip
        entity = (EntityRef(value, "pet", kind),)
        return _Said(_with_texts(p, wording), subject, value, mention, turn, entity)
    wording = ("{s} has a {v}", "{s} no longer has a {v}", "{s} used to have a {v}")
    return _Said(_with_texts(p, wording), subject, kind, mention, turn)


def _with_texts(p: Predicate, texts: tuple[str, str, str]) -> Predicate:
    return Predicate(**{**p.__dict__, "texts": texts})


def _decide(said: _Said, m: re.Match[str], mood: cl.Mood, predicate: str) -> list[Claim]:
    p = said.p
    progressive = m.groupdict().get("ing") is not None and p.change == "start"
    if mood.future or (progressive and not mood.past) or _ahead(said):
        return _plan(said)
    if mood.negated and not p.needs_negation:
        return _negated(said, predicate)
    if p.change == "end":
        return [_ends(said, p.attribute)]
    simple_past = m.groupdict().get("past") is not None and not mood.perfect
    if (
        p.change != "start"
        and p.simple_past != "keep"
        and (mood.past or simple_past or (mood.was and p.be is True))
    ):
        return _past(said, mood.past, predicate)
    return _holds(said)


def _ahead(said: _Said) -> bool:
    """ "I start at Hooli next week": a change dated to come is a plan, when one can be worded."""
    mention = said.mention
    return (
        said.p.change == "start"
        and said.p.plan is not None
        and mention is not None
        and mention.start.timestamp() > said.turn.row.occurred_at
    )


def _holds(said: _Said) -> list[Claim]:
    p, mention = said.p, said.mention
    template = said.p.wording()[0]
    start = None
    if p.dated and mention and mention.start.timestamp() <= said.turn.row.occurred_at:
        template += f" ({dates.since(mention)})"
        start = mention.start.timestamp()
    claims = [said.make(p.attribute, template, p.kind, valid_from=start)]
    partner = _partner(said)
    if partner is not None:
        claims.append(partner)
    if p.also_ends:
        claims.append(_ends(_Said(p, said.subject, "", mention, said.turn), p.also_ends))
    return claims


def _partner(said: _Said) -> Claim | None:
    """ "I got married to Tom": Tom is the speaker's spouse too."""
    if said.p.attribute != "relationship_status" or said.value not in ("married", "engaged"):
        return None
    found = _last_name(said)
    if found is None:
        return None
    rel = "spouse" if said.value == "married" else "fiancé"
    return _special(relationship(said.subject.name, rel, found), None, said.turn)


def _last_name(said: _Said) -> str | None:
    text = said.turn.row.text
    m = re.search(rf"\b(?:married|engaged)\s+to\s+({cl.NAME})", cl.normalise(text), re.I)
    return m.group(1) if m else None


def _ends(said: _Said, attribute: str) -> Claim:
    mention = said.mention
    template = said.p.wording()[1] if attribute == said.p.attribute else ""
    if not said.value:
        template = ENDS_EMPTY.get(attribute, "{s} no longer has a " + attribute.replace("_", " "))
    start = None
    if mention is not None and mention.start.timestamp() <= said.turn.row.occurred_at:
        template += f" ({dates.since(mention)})"
        start = mention.start.timestamp()
    return said.turn.claim(
        said.subject.name, attribute, said.value, said.words(template), said.p.kind,
        valid_from=start, ends=True, entities=said.entities() if said.value else (),
    )  # fmt: skip


def _negated(said: _Said, predicate: str) -> list[Claim]:
    p = said.p
    if p.negation == "drop":
        return []
    if p.negation == "opposite" and not cl.ended(predicate):
        opposite = OPPOSITES.get(p.attribute, p.attribute)
        template = "{s} " + ("dislikes" if opposite == "dislikes" else "likes") + " {v}"
        return [said.make(opposite, template, p.kind)]
    return [_ends(said, p.attribute)]


def _past(said: _Said, used_to: bool, predicate: str) -> list[Claim]:
    p, mention, at = said.p, said.mention, said.turn.row.occurred_at
    template = p.wording()[2]
    if p.simple_past == "event" and not used_to:
        return _event(said.subject, predicate, mention, said.turn) if mention else []
    if mention is not None and mention.end.timestamp() <= at + _DAY:
        end, start = min(mention.end.timestamp(), at), mention.start.timestamp()
        template += f" ({dates.on(mention)})"
    else:
        end, start = at, UNKNOWN_START
    start = min(start, end - _DAY)
    return [said.make(p.attribute, template, p.kind, valid_from=start, valid_to=end)]


def _event(subject: cl.Subject, predicate: str, mention: TimeMention, turn: _Turn) -> list[Claim]:
    """A dated past action, worded as said: "Maya ran a marathon on 26 May 2024"."""
    phrase = _phrase_before(predicate, mention)
    if phrase is None or mention.start.timestamp() > turn.row.occurred_at:
        return []
    text = f"{subject.name} {phrase} {dates.on(mention)}"
    return [
        turn.claim(subject.name, "event", phrase, text, "event",
                   valid_from=mention.start.timestamp(), confidence=0.8)
    ]  # fmt: skip


def _plan(said: _Said) -> list[Claim]:
    if said.p.plan is None:
        return []
    value = said.p.plan.format(v=said.value, a=article(said.value))
    return [_plan_claim(said.subject, value, said.mention, said.turn, said.entities())]


def _plan_claim(
    subject: cl.Subject,
    value: str,
    mention: TimeMention | None,
    turn: _Turn,
    entities: tuple[EntityRef, ...] = (),
) -> Claim:
    text = f"{subject.name} plans to {value}"
    end = None
    if mention is not None and mention.end.timestamp() > turn.row.occurred_at:
        text += f" {dates.on(mention)}"
        end = mention.end.timestamp()
    start = turn.row.occurred_at if end is None else min(turn.row.occurred_at, end - 1.0)
    return turn.claim(subject.name, "plan", value, text, "plan", valid_from=start, valid_to=end,
                      entities=entities)  # fmt: skip


def _generic(
    subject: cl.Subject, mood: cl.Mood, predicate: str, mention: TimeMention | None, turn: _Turn
) -> list[Claim]:
    """Travel plans, and any other clause the rules do not know that a date anchors: "we're
    going to Japan in March", "I ran a marathon last Sunday"."""
    if mood.negated:
        return []
    travel = _TRAVEL.match(predicate)
    if travel is not None and (mood.future or mood.be):
        place = cl_values_proper(travel["v"])
        if place:
            entity = (EntityRef(place, "place", "destination"),)
            return [_plan_claim(subject, f"travel to {place}", mention, turn, entity)]
    if mention is None:
        return []
    phrase = _phrase_before(predicate, mention)
    if phrase is None:
        return []
    future = mention.start.timestamp() > turn.row.occurred_at
    if mood.future and future:
        return [_plan_claim(subject, phrase, mention, turn)]
    if not mood.future and _PAST_VERB.match(phrase):
        return _event(subject, predicate, mention, turn)
    return []


def _phrase_before(predicate: str, mention: TimeMention) -> str | None:
    at = predicate.find(mention.text)
    if at <= 0:
        return None
    phrase = _TRAILING_PREP.sub("", predicate[:at]).strip(" ,")
    phrase = _ME.sub("them", _MY.sub("their", phrase))
    words = phrase.split()
    return phrase if 0 < len(words) <= 8 and re.match(r"^[\w'-]", phrase) else None


def cl_values_proper(tail: str) -> str | None:
    """A destination, as a place name (the values module's rule)."""
    from .rules.values import proper

    return proper(tail)
