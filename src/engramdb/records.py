"""The neutral data of every layer: stored rows, their index keys, filters and cursors.

Nothing here imports the rest of the package except errors and types, so backends, the write path
and the read path can all share it without importing each other.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InvalidCursor
from .types import KINDS, Scope

Vector = npt.NDArray[np.float32]
#: Candidate lists: (memory id, score), best first.
Scored = list[tuple[str, float]]

KIND_CODES: dict[str, int] = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Keys:
    """What a record is indexed and embedded under, as fields (never one string to re-parse).

    ``own`` is the record's speaker, text and resolved dates; ``context_name`` and
    ``context_text`` are the end of the turn before it in its session, which a reply is found
    through ("Loved it!" answers "...did you like the concert?").
    """

    own: str
    context_name: str | None = None
    context_text: str = ""

    def quoted(self) -> str:
        """The quoted turn as the lexical index reads it (weighted below the own words)."""
        if not self.context_text:
            return ""
        return (
            f"{self.context_name} {self.context_text}" if self.context_name else self.context_text
        )


@dataclass
class Row:
    """A record as stored. Times are epoch seconds; ``tz_offset`` is the speaker's UTC offset in
    seconds when the caller's timestamp said it (None: unknown, shown as UTC)."""

    id: str
    scope: Scope
    kind: str
    session_id: str | None
    role: str | None
    name: str | None
    text: str
    occurred_at: float
    recorded_at: float
    updated_at: float
    metadata: dict[str, Any]
    time_mentions: builtins.list[dict[str, Any]]
    keys: Keys
    #: Identity of the event for idempotent adds (None: always a new event).
    dedupe_key: str | None = None
    tz_offset: int | None = None
    source_ids: builtins.list[str] = field(default_factory=list)
    #: What a fact states and when it holds (kind "fact" only).
    fact: FactInfo | None = None
    #: Entities it mentions, when read for an export or written by an import.
    mentions: builtins.list[EntityLink] = field(default_factory=list)
    #: When it was archived: kept and listed, but out of search, context, facts and profile.
    archived_at: float | None = None
    #: Its vector and embedded-text hash, when an export or a migration carries them.
    embedding: tuple[str, Vector] | None = None


@dataclass
class FactInfo:
    """The statement of a fact record and its two timelines.

    World time: ``valid_from``/``valid_to`` (``valid_to`` None: still true). System time:
    ``expired_at`` is when engramdb learned that it stopped being true, ``superseded_by`` the
    fact that ended it. ``stated_to`` is an end the statement itself gave ("I used to live in
    Lisbon"), kept apart so that reconciliation can recompute ``valid_to`` from the timeline.
    """

    subject: str
    attribute: str
    value: str
    claim_kind: str
    single: bool
    ends: bool
    valid_from: float
    valid_to: float | None = None
    expired_at: float | None = None
    superseded_by: str | None = None
    stated_to: float | None = None
    confidence: float = 1.0

    def holds_at(self, moment: float) -> bool:
        """Whether the fact was true in the world at ``moment``."""
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)

    def known_at(self, moment: float) -> FactInfo:
        """The fact as it stood at ``moment``: an end that came after it (a move told later) was
        not known then, and answering as of ``moment`` must not tell it; an end its own
        statement gave ("until June") was."""
        if self.valid_to is None or self.valid_to <= moment:
            return self
        return replace(self, valid_to=self.stated_to, expired_at=None, superseded_by=None)


@dataclass(frozen=True)
class Filter:
    """Restrictions applied inside candidate search and listing (all optional, all ANDed).

    ``since``/``until`` bound the event time (``until`` is exclusive); ``metadata`` is equality on
    top-level keys of the record's metadata.
    """

    since: float | None = None
    until: float | None = None
    session_id: str | None = None
    kinds: tuple[str, ...] | None = None
    metadata: tuple[tuple[str, Any], ...] = ()
    #: Facts only: those still true (valid_to unset), or those true at an instant.
    current_facts: bool = False
    facts_valid_at: float | None = None
    #: Archived records only (True), none of them (False), or both (None).
    archived: bool | None = None

    def needs_rows(self) -> bool:
        """Whether the filter looks at stored fields that the in-memory indexes do not keep."""
        return (
            self.session_id is not None
            or bool(self.metadata)
            or self.current_facts
            or self.facts_valid_at is not None
            or self.archived is not None
        )


@dataclass(frozen=True)
class Job:
    """Derived work recorded with the write that needs it (today: embed one record's key)."""

    id: int
    kind: str
    memory_id: str
    tenant: str
    attempts: int
    last_error: str | None


def listing_fingerprint(scope: Scope, flt: Filter) -> str:
    """What a cursor is valid for: the scope and the filter of the listing that made it."""
    parts: list[Any] = [scope.tenant, scope.user_id, scope.agent_id, flt.session_id, flt.kinds]
    if flt.current_facts or flt.facts_valid_at is not None:  # (earlier cursors stay valid)
        parts += [flt.current_facts, flt.facts_valid_at]
    if flt.archived is not None:
        parts.append(("archived", flt.archived))
    payload = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(fingerprint: str, position: int) -> str:
    """An opaque cursor: the listing it belongs to and the last position returned."""
    raw = json.dumps({"v": 1, "f": fingerprint, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: object, fingerprint: str) -> int:
    """The position a cursor continues after.

    Raises:
        InvalidCursor: not a cursor, or one made by a listing of another scope or filter.
    """
    if not isinstance(cursor, str) or len(cursor) > 200:
        raise InvalidCursor(cursor)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor(cursor) from exc
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("p"), int):
        raise InvalidCursor(cursor)
    if data.get("f") != fingerprint:
        raise InvalidCursor(cursor, foreign=True)
    return int(data["p"])


def event_key(
    session_id: str | None, role: str | None, name: str | None, content: str, instant: float
) -> str:
    """Identity of a message whose caller gave its time: the same session, speaker, words and
    instant are the same event, however the instant was written (``Z``, ``+02:00``, epoch)."""
    payload = json.dumps(
        [session_id or "", role, name, content, round(instant * 1_000_000)], ensure_ascii=False
    )
    return "e:" + hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


# -- semantic memory: what extractors produce and reconciliation consumes -----------------------

#: Attributes a subject has one value of at a time: a new value supersedes the current one
#: ("lives in Porto" ends "lives in Lisbon"). Any other attribute holds several values at once
#: ("likes sushi" and "likes hiking"), and only a statement that ends a value ends it.
SINGLE_VALUED: frozenset[str] = frozenset(
    {
        "name", "age", "birthday", "hometown", "nationality", "lives_in", "works_at",
        "job_title", "studies_at", "relationship_status", "partner", "spouse", "mother",
        "father", "boss", "diet", "car", "phone", "commute", "schedule",
    }
)  # fmt: skip
#: Attributes that describe who the subject is, stably: the profile (core memory) holds the
#: current ones. Every ``preference`` claim belongs there too.
PROFILE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "name", "age", "birthday", "hometown", "nationality", "lives_in", "works_at",
        "job_title", "studies_at", "relationship_status", "partner", "spouse", "diet",
        "allergy", "health", "language", "hobby", "pet", "car", "likes", "dislikes",
        "favourite", "sister", "brother", "mother", "father", "child", "friend",
    }
)  # fmt: skip
#: Attributes whose values exclude each other: "dislikes sushi" ends "likes sushi".
OPPOSITES: dict[str, str] = {"likes": "dislikes", "dislikes": "likes"}
#: What a claim states: a fact about the subject, a preference, a plan, a dated event, or a
#: relationship between the subject and another entity.
CLAIM_KINDS: tuple[str, ...] = ("fact", "preference", "plan", "event", "relationship")
ENTITY_TYPES: tuple[str, ...] = ("person", "place", "organization", "pet", "thing")


@dataclass(frozen=True)
class EntityRef:
    """An entity a claim names. ``relation`` is its relation to the claim's subject when the
    claim says it ("sister", "employer", "home")."""

    name: str
    type: str  # one of ENTITY_TYPES
    relation: str | None = None


@dataclass(frozen=True)
class Claim:
    """One statement extracted from episodes, before it is reconciled with what is known.

    ``text`` stands alone: third person, the subject named, no pronouns, absolute dates
    ("Maya moved to Porto on 28 May 2024"). ``valid_from`` is when it became true in the world
    (resolved from "yesterday", "since 2019"; else the time of its first source), epoch seconds.
    ``ends`` marks a statement that a value stopped being true ("no longer lives in Lisbon",
    "quit smoking"): it closes the value rather than asserting it. ``single`` says whether the
    attribute holds one value at a time (see SINGLE_VALUED).
    """

    subject: str
    attribute: str
    value: str
    text: str
    kind: str
    source_ids: tuple[str, ...]
    valid_from: float
    valid_to: float | None = None
    ends: bool = False
    single: bool = False
    entities: tuple[EntityRef, ...] = ()
    confidence: float = 1.0


@dataclass(frozen=True)
class EntityLink:
    """An entity to record as mentioned (created under ``new_id`` if its name is new to the
    scope), with its relation to ``relation_of`` when one was stated."""

    new_id: str
    name: str
    type: str
    relation: str | None = None
    relation_of: str | None = None
