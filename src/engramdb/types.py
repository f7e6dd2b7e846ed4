"""Records and results that cross the public API.

All datetimes handed out are timezone-aware UTC. A naive timestamp given by a caller is taken as
UTC (a conversation log's wall clock); the original offset is kept in the record's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

ROLES: tuple[str, ...] = ("user", "assistant", "system", "tool")

#: Record kinds. A ``message`` is an episode: one turn as it was said. Derived kinds (facts,
#: summaries, ...) are added by the consolidation pipeline and point back to their messages.
KINDS: tuple[str, ...] = ("message", "fact", "summary", "profile", "lesson")


@dataclass(frozen=True)
class Scope:
    """Who a record belongs to. At least one of ``user_id`` / ``agent_id`` is set."""

    tenant: str = "default"
    user_id: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class TimeMention:
    """A time expression found in a text, resolved to an absolute interval ``[start, end)``."""

    text: str
    start: datetime
    end: datetime
    granularity: str  # "day", "week", "weekend", "month", "season", "year"

    def label(self) -> str:
        """A human date for the interval, e.g. ``7 May 2023`` or ``May 2023``."""
        if self.granularity in ("day", "time"):
            return f"{self.start.day} {self.start:%B %Y}"
        if self.granularity == "week":
            return f"the week of {self.start.day} {self.start:%B %Y}"
        if self.granularity == "weekend":
            return f"the weekend of {self.start.day} {self.start:%B %Y}"
        if self.granularity == "season":
            last = self.end - timedelta(days=1)
            return f"{self.start:%B} to {last:%B %Y}"
        if self.granularity == "month":
            return f"{self.start:%B %Y}"
        last_year = (self.end - timedelta(days=1)).year
        return (
            f"{self.start:%Y}"
            if last_year == self.start.year
            else f"{self.start:%Y} to {last_year}"
        )


@dataclass(frozen=True)
class Source:
    """Provenance: one message a memory came from."""

    id: str
    role: str
    name: str | None
    occurred_at: datetime
    session_id: str | None
    metadata: dict[str, Any]


@dataclass
class MemoryRecord:
    """A stored memory, as returned by ``get`` and ``list``."""

    id: str
    kind: str
    text: str
    scope: Scope
    session_id: str | None
    role: str | None
    name: str | None
    occurred_at: datetime
    recorded_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    time_mentions: list[TimeMention] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    #: Facts only: when it holds in the world (``valid_to`` None: still true), when engramdb
    #: learned it stopped (``expired_at``), the fact that replaced it, and what it states.
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    expired_at: datetime | None = None
    superseded_by: str | None = None
    subject: str | None = None
    attribute: str | None = None
    value: str | None = None
    #: When it was archived (None: it is not): kept and listed, out of search and context.
    archived_at: datetime | None = None

    @property
    def user_id(self) -> str | None:
        return self.scope.user_id

    @property
    def agent_id(self) -> str | None:
        return self.scope.agent_id


@dataclass
class Hit:
    """One search result: a memory, its score and where it came from."""

    id: str
    text: str
    kind: str
    score: float
    occurred_at: datetime
    session_id: str | None
    metadata: dict[str, Any]
    sources: list[Source]
    role: str | None = None
    name: str | None = None
    time_mentions: list[TimeMention] = field(default_factory=list)
    #: Why it was found: rank in each candidate list (``{"lexical": 3, "dense": 1}``).
    explain: dict[str, Any] = field(default_factory=dict)
    #: Facts only: when it holds in the world (``valid_to`` None: still true), when engramdb
    #: learned it stopped (``expired_at``), the fact that replaced it, and what it states.
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    expired_at: datetime | None = None
    superseded_by: str | None = None
    subject: str | None = None
    attribute: str | None = None
    value: str | None = None

    @property
    def current(self) -> bool:
        """Whether this is still true: any episode, or a fact whose validity has not ended."""
        return self.valid_to is None


@dataclass(frozen=True)
class HistoryEntry:
    """One change to a memory. History is append-only."""

    id: int
    memory_id: str
    event: str  # create, update, delete; facts: confirm, supersede, restore
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str
    at: datetime


@dataclass(frozen=True)
class Page:
    """One page of a listing. Pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[MemoryRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class Entity:
    """A named person, place, organization, pet or thing the memories of a scope mention.

    ``relation`` is what it is to ``relation_of`` when a message said so ("sister" of "Maya").
    """

    id: str
    name: str
    type: str
    aliases: list[str]
    relation: str | None
    relation_of: str | None
    mentions: int
    memory_ids: list[str]


@dataclass(frozen=True)
class ProfileEntry:
    """One current attribute of a profile, with the fact it comes from."""

    attribute: str
    value: str
    text: str
    since: datetime
    fact_id: str
    sources: list[str]


@dataclass(frozen=True)
class Profile:
    """Core memory: who the user (or agent) is now, from current facts, bounded in characters.

    ``text`` is what ``context()`` puts first; ``entries`` are the facts behind it.
    """

    user_id: str | None
    agent_id: str | None
    entries: list[ProfileEntry]
    text: str
    truncated: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ScopeSummary:
    """One user/agent pair of a tenant, with how many memories and facts it holds."""

    user_id: str | None
    agent_id: str | None
    memories: int
    facts: int
    last_at: datetime | None


@dataclass(frozen=True)
class UserSummary:
    """One user of a tenant over every agent it talks with: how many memories and facts it
    holds, those agents (by id), and when the latest of its memories happened."""

    user_id: str
    memories: int
    facts: int
    agents: list[str]
    last_at: datetime | None


@dataclass(frozen=True)
class AgentSummary:
    """One agent of a tenant over every user it talks with (``users``; memories kept for the
    agent alone count too), like :class:`UserSummary`."""

    agent_id: str
    memories: int
    facts: int
    users: list[str]
    last_at: datetime | None


@dataclass(frozen=True)
class BatchUpdate:
    """What :meth:`~engramdb.Memory.update_many` did.

    ``items`` are the memories it changed, as they are after the batch, in the order first
    named. ``replaced`` are the facts it was asked to change that a correction of their source
    message in the same batch replaced instead: they are gone, and the facts of the corrected
    text are extracted again.
    """

    items: list[MemoryRecord]
    replaced: list[str]


@dataclass(frozen=True)
class ApiKey:
    """A server API key, as stored: its secret is never kept, only a hash and a prefix."""

    id: str
    tenant: str
    name: str
    role: str  # reader, writer, admin
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Webhook:
    """A subscription to a tenant's events; ``cursor`` is the last event handed over."""

    id: str
    tenant: str
    url: str
    events: list[str]
    created_at: datetime
    cursor: int


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand an event to a webhook."""

    tenant: str
    webhook_id: str
    event_id: int
    attempt: int
    status: str  # delivered, failed (will retry), gave_up
    http_status: int | None
    error: str | None
    at: datetime
