"""Reconciliation: a new claim against what is known, on a timeline, never destructive.

A claim is compared with a bounded set of candidates: the facts about the same subject and
attribute (and, for an attribute that holds several values at once, the same value; "likes" and
"dislikes" of one value are one line). The decision is one of

- **confirm**: the fact in effect when the claim became true says the same, so the claim's
  episodes are added to its sources (a duplicate never becomes a second fact);
- **add**: a new fact, after which the line's timeline is recomputed: each fact's ``valid_to`` is
  when the next fact that contradicts it became true, and ``superseded_by`` names it. A fact
  learned late (an old message imported today) lands at its own place on the timeline, and may
  be superseded on arrival;
- **noop**: a claim that a value ended, when that value had ended already. An end of a value
  not known yet ("no longer in Lisbon" before anything said of Lisbon) is kept as a fact of its
  own: a start learned later ("moved to Lisbon last May") then ends there, so the story does not
  depend on the order the two were processed in.

Nothing is deleted here: a superseded fact keeps its text and sources, with ``valid_to`` (world
time) and ``expired_at`` (when we learned it) set. A delete of a fact's only episodes removes it
and :func:`relink` recomputes its line, which may restore the fact it had superseded.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..backends.base import Transaction
from ..records import OPPOSITES, Claim, FactInfo, Keys, Row
from ..text import norm_name
from ..types import Scope

#: How many facts of one line a claim is compared with (newest first).
CANDIDATES = 50
#: A start date a statement carried ("Maya lives in Porto (since 28 May 2024)").
_SINCE = re.compile(r" \(since [^)]*\)$")


@dataclass
class Decisions:
    """What reconciling a batch of claims did: ids of facts added, confirmed, superseded."""

    added: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    ignored: int = 0
    #: Facts whose text changed (a start learned later): their vectors are to be made again.
    restated: list[str] = field(default_factory=list)


def reconcile(
    tx: Transaction,
    scope: Scope,
    claim: Claim,
    *,
    tz_offset: int | None,
    now: float,
    actor: str,
    out: Decisions,
) -> str | None:
    """Fold one claim into the scope's facts; the id of the fact that now carries it."""
    line = _line(tx, scope, claim.subject, claim.attribute, claim.value, claim.single)
    timeline = sorted(line, key=_order)
    prev = _in_effect(timeline, claim.valid_from, claim.single)
    if prev is not None and _same(prev, claim):
        out.confirmed += [prev.id] if tx.add_sources(
            scope.tenant, prev.id, claim.source_ids, actor
        ) else []  # fmt: skip
        return prev.id
    if claim.valid_to is not None:  # a closed past ("used to"): one fact per statement
        twin = next((f for f in timeline if _same(f, claim)), None)
        if twin is not None:
            tx.add_sources(scope.tenant, twin.id, claim.source_ids, actor)
            out.confirmed.append(twin.id)
            return twin.id
    if claim.ends and claim.single and (prev is None or not _same_value(prev, claim.value)):
        began = [f for f in timeline if _same_value(f, claim.value) and not _fact(f).ends]
        if any(_fact(f).valid_from <= claim.valid_from for f in began):
            out.ignored += 1  # "left Google" when Google had ended already: nothing ends
            return None
        # Not known yet: kept, so that a start learned later ends there.
    # Whatever of ``prev`` was said after the claim's time must come after it, as a fact of its
    # own, before the claim can be placed (or merged with what follows it).
    if (
        prev is not None
        and claim.valid_to is None
        and _split(tx, scope, prev, claim.valid_from, actor, out)
    ):
        timeline = sorted(
            _line(tx, scope, claim.subject, claim.attribute, claim.value, claim.single),
            key=_order,
        )
    later = [f for f in timeline if _fact(f).valid_from > claim.valid_from]
    if later and claim.valid_to is None and _same(later[0], claim):
        # The same statement, heard of earlier than we knew: it held since then.
        first = later[0]
        tx.add_sources(scope.tenant, first.id, claim.source_ids, actor)
        _write(tx, first, replace(_fact(first), valid_from=claim.valid_from), "confirm", actor)
        if (first.text, first.occurred_at) != (claim.text, claim.valid_from):
            # Stated as the earliest statement states it ("... (since May 2023)"), and placed
            # at its start: as if the statements had been heard in the order they were made.
            tx.update(replace(first, text=claim.text, keys=Keys(own=claim.text),
                              occurred_at=claim.valid_from, updated_at=now), actor)  # fmt: skip
            tx.stale(scope.tenant, [first.id])  # its vector is of the old text
            out.restated.append(first.id)
        out.confirmed.append(first.id)
        _rechain(tx, scope, claim, now, actor, out)
        # A statement says its fact held when it was made: said after the fact ended (a move
        # back, told as "I moved to Bergen last May" after "I live in Oslo"), it starts the fact
        # again from then, as it would have had it been heard in order.
        (again,) = tx.get(scope.tenant, [first.id])
        ended = _fact(again).valid_to
        if ended is not None and _split(tx, scope, again, ended, actor, out):
            _rechain(tx, scope, claim, now, actor, out)
        return first.id
    row = fact_row(scope, claim, tz_offset=tz_offset, now=now)
    tx.insert([row], actor)
    out.added.append(row.id)
    _rechain(tx, scope, claim, now, actor, out)
    return row.id


def relink(
    tx: Transaction, scope: Scope, fact: FactInfo, now: float, actor: str, out: Decisions
) -> None:
    """Recompute the timeline of a fact's line (after a fact of it was deleted)."""
    claim = Claim(
        subject=fact.subject,
        attribute=fact.attribute,
        value=fact.value,
        text="",
        kind=fact.claim_kind,
        source_ids=(),
        valid_from=fact.valid_from,
        single=fact.single,
    )
    _rechain(tx, scope, claim, now, actor, out)


def fact_row(scope: Scope, claim: Claim, *, tz_offset: int | None, now: float) -> Row:
    """A new fact record for a claim (its key is its own standalone statement)."""
    return Row(
        id=str(uuid.uuid4()),
        scope=scope,
        kind="fact",
        session_id=None,
        role=None,
        name=claim.subject,
        text=claim.text,
        occurred_at=claim.valid_from,
        recorded_at=now,
        updated_at=now,
        metadata={},
        time_mentions=[],
        keys=Keys(own=claim.text),
        tz_offset=tz_offset,
        source_ids=list(claim.source_ids),
        fact=FactInfo(
            subject=claim.subject,
            attribute=claim.attribute,
            value=claim.value,
            claim_kind=claim.kind,
            single=claim.single,
            ends=claim.ends,
            valid_from=claim.valid_from,
            stated_to=claim.valid_to,
            valid_to=claim.valid_to,
            expired_at=None if claim.valid_to is None else now,
            confidence=claim.confidence,
        ),
    )


# -- the timeline of a line ----------------------------------------------------------------------


def _line(
    tx: Transaction, scope: Scope, subject: str, attribute: str, value: str, single: bool
) -> list[Row]:
    attributes = [attribute] + ([OPPOSITES[attribute]] if attribute in OPPOSITES else [])
    return tx.facts_about(scope, subject, attributes, None if single else value, CANDIDATES)


def _split(tx: Transaction, scope: Scope, row: Row, at: float, actor: str, out: Decisions) -> bool:
    """A statement is about to be placed inside the span of ``row``: the sources of ``row`` said
    after ``at`` (a repeat heard of before an earlier one, "I moved back to Lisbon" merged with
    "I live in Lisbon") become a fact of their own, from the first of them, so that the new
    statement can end one and be ended by the other. Returns whether it split."""
    sources = tx.get(scope.tenant, row.source_ids)
    after = sorted((s for s in sources if s.occurred_at > at), key=lambda s: s.occurred_at)
    if not after or len(after) == len(sources):
        return False
    start = after[0].occurred_at
    fact = replace(_fact(row), valid_from=start, valid_to=None, expired_at=None,
                   superseded_by=None)  # fmt: skip
    twin = replace(
        row, id=str(uuid.uuid4()), text=_SINCE.sub("", row.text), occurred_at=start,
        recorded_at=time.time(), updated_at=time.time(), keys=Keys(own=_SINCE.sub("", row.text)),
        source_ids=[s.id for s in after], fact=fact, dedupe_key=None,
    )  # fmt: skip
    tx.insert([twin], actor)
    tx.remove_sources(scope.tenant, row.id, [s.id for s in after], actor)
    row.source_ids = [i for i in row.source_ids if i not in set(twin.source_ids)]
    out.added.append(twin.id)
    return True


def _merge_repeats(tx: Transaction, timeline: list[Row], actor: str) -> list[Row]:
    """Two facts of a line that say the same, with nothing between them that contradicts it
    (what is left when the fact that separated them was deleted), become one: the earlier keeps
    both's sources and the later goes."""
    kept: list[Row] = []
    last: Row | None = None
    for row in timeline:
        fact = _fact(row)
        if fact.stated_to is not None:
            kept.append(row)
            continue
        if last is not None and _same_statement(_fact(last), fact):
            tx.add_sources(row.scope.tenant, last.id, row.source_ids, actor)
            last.source_ids = [*last.source_ids, *row.source_ids]
            tx.delete(row.scope.tenant, [row.id], actor)
            continue
        kept.append(row)
        last = row
    return kept


def _rechain(
    tx: Transaction, scope: Scope, claim: Claim, now: float, actor: str, out: Decisions
) -> None:
    """Give every fact of the claim's line the end the timeline implies."""
    timeline = sorted(
        _line(tx, scope, claim.subject, claim.attribute, claim.value, claim.single), key=_order
    )
    timeline = _merge_repeats(tx, timeline, actor)
    for row in timeline:
        fact = _fact(row)
        ender, at = _ender(timeline, row)
        end = _earliest(fact.stated_to, at)
        by = None if ender is None or end != at else ender.id
        if (end, by) == (fact.valid_to, fact.superseded_by):
            continue
        if end is None:
            _write(tx, row, replace(fact, valid_to=None, expired_at=None, superseded_by=None),
                   "restore", actor)  # fmt: skip
            out.restored.append(row.id)
        else:
            expired = fact.expired_at if fact.valid_to is not None else now
            cause = ender.source_ids if ender is not None and by is not None else ()
            _write(tx, row, replace(fact, valid_to=end, expired_at=expired, superseded_by=by),
                   "supersede", actor, cause)  # fmt: skip
            out.superseded.append(row.id)


def _ender(timeline: Sequence[Row], row: Row) -> tuple[Row | None, float | None]:
    """The first later fact of the line that contradicts ``row``, and when: another value of a
    single-valued attribute, the opposite attribute or an end of the same value, or (for an end)
    the value asserted again, from when it became true; a closed past statement of the same
    value ("used to live in Lisbon") at its stated end. Otherwise a closed past ends nothing."""
    fact = _fact(row)
    if fact.stated_to is not None:
        return None, None
    best: tuple[Row | None, float | None] = (None, None)
    for other in timeline:
        f = _fact(other)
        if other.id == row.id:
            continue
        if f.stated_to is not None:
            at = f.stated_to if _same_statement(fact, f) and fact.valid_from < f.stated_to else None
        elif (f.valid_from, other.recorded_at) > (fact.valid_from, row.recorded_at):
            at = f.valid_from if _contradicts(fact, f) else None
        else:
            at = None
        if at is not None and (best[1] is None or at < best[1]):
            best = (other, at)
    return best


def _same_statement(a: FactInfo, b: FactInfo) -> bool:
    return (
        a.attribute == b.attribute and a.ends == b.ends and norm_name(a.value) == norm_name(b.value)
    )


def _contradicts(old: FactInfo, new: FactInfo) -> bool:
    same_value = norm_name(old.value) == norm_name(new.value)
    if old.ends:
        return same_value and not new.ends and new.attribute == old.attribute
    if new.ends:
        return same_value and new.attribute == old.attribute
    if new.attribute != old.attribute:  # likes -> dislikes of the same value
        return same_value
    return old.single and not same_value


def _in_effect(timeline: Sequence[Row], at: float, single: bool) -> Row | None:
    """The open fact of the line in effect at ``at`` (the latest that began by then)."""
    found = None
    for row in timeline:
        f = _fact(row)
        if f.valid_from <= at and f.stated_to is None:
            found = row
    return found


def _same(row: Row, claim: Claim) -> bool:
    f = _fact(row)
    return (
        f.attribute == claim.attribute
        and f.ends == claim.ends
        and _same_value(row, claim.value)
        and (f.stated_to is None) == (claim.valid_to is None)
    )


def _same_value(row: Row, value: str) -> bool:
    return norm_name(_fact(row).value) == norm_name(value)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _order(row: Row) -> tuple[float, float]:
    return (_fact(row).valid_from, row.recorded_at)


def _fact(row: Row) -> FactInfo:
    assert row.fact is not None  # facts_about reads facts only
    return row.fact


def _write(
    tx: Transaction, row: Row, info: FactInfo, event: str, actor: str, cause: Sequence[str] = ()
) -> None:
    tx.set_validity(row.scope.tenant, row.id, info, event, actor, cause)
    row.fact = info
