"""The storage contract every backend implements.

A backend stores records, their vectors, jobs and history, and answers candidate queries inside
one scope; it never validates, embeds or ranks (the write path and the read path do). Every call
is scoped by tenant, directly or through a :class:`~engramdb.types.Scope`: no call reaches
another tenant's data. Writes happen inside :meth:`Store.transaction`, one unit of work that
commits whole or not at all; reads never wait for a write. ``tests/backends`` is the contract
suite: a new backend (PostgreSQL) passes it unchanged.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..errors import InvalidCursor
from ..records import (
    EntityLink,
    FactInfo,
    Filter,
    Job,
    Keys,
    Row,
    Scored,
    Vector,
    listing_fingerprint,
)
from ..types import ApiKey, Delivery, Entity, HistoryEntry, Scope, ScopeSummary, Webhook


class Transaction(Protocol):
    """One unit of work on a store. Reads inside it see its own writes."""

    def insert(
        self, rows: Sequence[Row], actor: str, *, extract: bool = False
    ) -> builtins.list[tuple[str, bool]]:
        """Store new records with 'create' history and an 'embed' job each (and an 'extract'
        job for each new message when ``extract``). A row with ``fact`` set is stored as a fact,
        its ``source_ids`` as its sources, and ``mentions`` linked.

        A row whose ``dedupe_key`` or id is already stored in its scope is not written again:
        for each row, the id it is stored under and whether it was new.

        Raises:
            IdConflict: a row's id names a record of another scope, or one with other content.
        """

    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        """Records by id, as this transaction sees them."""

    def previous(self, scope: Scope, session_id: str | None, at: float) -> Row | None:
        """The last message of a session that happened before ``at``."""

    def neighbours(self, tenant: str, memory_id: str) -> tuple[Row | None, Row | None]:
        """The messages just before and just after a message in its session."""

    def update(self, row: Row, actor: str) -> None:
        """Replace a record's text, metadata, mentions, keys and event time (a fact restated
        from an earlier start), with 'update' history."""

    def set_archived(self, tenant: str, memory_id: str, at: float | None, actor: str) -> bool:
        """Archive a record at ``at`` (None: bring it back), with history; False when it
        already was so.

        Raises:
            MemoryNotFound: no record of the tenant has this id.
        """

    def set_keys(self, tenant: str, memory_id: str, keys: Keys) -> None:
        """Replace a record's keys (derived data: no history); its vector becomes stale."""

    def stale(self, tenant: str, ids: Sequence[str]) -> None:
        """Drop the vectors of records and queue their re-embedding."""

    def delete(self, tenant: str, ids: Sequence[str], actor: str) -> int:
        """Purge records with their vectors, keys, jobs and history content; how many."""

    def delete_scope(self, scope: Scope, actor: str) -> builtins.list[str]:
        """Purge every record of a scope; the ids purged."""

    def put_vectors(self, tenant: str, items: Sequence[tuple[str, Keys, str, Vector]]) -> int:
        """Store (id, keys embedded, embed hash, vector) and finish those records' embed jobs,
        for records whose keys are still the ones embedded (a vector of keys that changed
        meanwhile is dropped: its record stays pending); how many were stored."""

    def fail_jobs(self, tenant: str, ids: Sequence[str], error: str, kind: str = "embed") -> None:
        """Record a failed attempt of these records' jobs of a kind (they stay pending)."""

    def requeue(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        """Queue these records' jobs of a kind again (a corrected message is re-extracted)."""

    def finish_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        """Mark these records' jobs of a kind done."""

    def facts_about(
        self,
        scope: Scope,
        subject: str,
        attributes: Sequence[str],
        value: str | None,
        limit: int,
    ) -> builtins.list[Row]:
        """The facts of a scope about a subject and attribute(s), and one value when given
        (names compared normalized), current and past, newest first, at most ``limit``."""

    def set_validity(
        self,
        tenant: str,
        memory_id: str,
        info: FactInfo,
        event: str,
        actor: str,
        cause: Sequence[str] = (),
    ) -> None:
        """Write a fact's timeline (valid_from, valid_to, expired_at, superseded_by), with
        ``event`` history ("supersede", "restore", ...) naming the episodes that ``cause`` it.

        Raises:
            MemoryNotFound: no such fact.
        """

    def add_sources(
        self,
        tenant: str,
        memory_id: str,
        source_ids: Sequence[str],
        actor: str,
        *,
        history: bool = True,
    ) -> builtins.list[str]:
        """Add episodes a record rests on ('confirm' history, unless ``history`` is False); the
        ones that were new."""

    def remove_sources(
        self, tenant: str, memory_id: str, source_ids: Sequence[str], actor: str
    ) -> None:
        """Take episodes off a record's sources ('split' history: they moved to another)."""

    def unmention(self, tenant: str, ids: Sequence[str]) -> None:
        """Forget which entities these records mention (a corrected text), and purge entities
        nothing mentions any more."""

    def link_entities(
        self, scope: Scope, memory_ids: Sequence[str], refs: Sequence[EntityLink]
    ) -> None:
        """Record that these records mention these entities (created or merged by name)."""

    def derived(self, tenant: str, ids: Sequence[str]) -> builtins.list[tuple[str, int]]:
        """Records derived from any of these: (id, how many of its sources are not among
        them). A delete of the sources purges those with none left."""

    def lease_jobs(self, kind: str, limit: int, worker: str, until: float) -> builtins.list[Job]:
        """Claim up to ``limit`` jobs of this kind, of every tenant, oldest first, that no
        worker holds (or whose lease has run out: a worker that died), until ``until`` (epoch
        seconds). Several workers lease at once without taking the same job
        (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""

    def pending_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> set[str]:
        """Which of these records still have a job of this kind, locked until the transaction
        ends: work applied in the same transaction as its job ends is never applied twice."""

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""

    def reset_vectors(self) -> int:
        """Drop every vector and queue every record for embedding (a new model); how many."""

    # What a server keeps beside the memories.

    def replace_history(self, tenant: str, entries: Sequence[HistoryEntry]) -> None:
        """Make ``entries`` (oldest first) the tenant's whole history: a migration carries the
        audit log over as it was, instead of the creation events its own inserts wrote."""

    def insert_key(self, key: ApiKey, digest: str) -> None:
        """Store an API key under the hash of its secret (the secret itself is never kept)."""

    def revoke_key(self, key_id: str, tenant: str | None) -> bool:
        """Revoke a key (of this tenant, when given); False when no live key has this id."""

    def insert_webhook(self, hook: Webhook, secret: str) -> Webhook:
        """Store a subscription; it receives the tenant's events after the newest one now."""

    def delete_webhook(self, tenant: str, hook_id: str) -> bool:
        """Remove a subscription and its delivery log; False when there is none."""

    def log_delivery(self, delivery: Delivery, advance: bool) -> None:
        """Record a delivery attempt; ``advance`` moves the subscription past its event."""

    def lease_webhook(self, tenant: str, hook_id: str, holder: str, until: float) -> bool:
        """Take or renew the right to deliver a subscription until ``until`` (epoch seconds):
        granted when no one else holds it or their lease has run out; False otherwise (and
        when there is no such subscription)."""

    def release_webhook(self, tenant: str, hook_id: str, holder: str) -> None:
        """Give up a lease ``holder`` has on a subscription (nothing if it has none)."""

    def purge(self, tenant: str, user_id: str | None, actor: str) -> dict[str, int]:
        """GDPR erasure: every record of a user (any agent), or of the whole tenant when
        ``user_id`` is None, with its vectors, jobs, entities, scope rows and history content
        (and, for a tenant, its keys, webhooks and history). Returns what was removed."""


class Store(Protocol):
    """Durable storage of records, their vectors, jobs and history."""

    url: str

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work: committed when the block ends, rolled back if it raises."""

    def get_meta(self, key: str) -> str | None:
        """A store-level setting (embedder name, ...), or None."""

    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        """Records by id (any order; unknown ids and other tenants' are left out)."""

    def list(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        """A page of a scope in insertion order, and the cursor of the next page (None: last).

        Raises:
            InvalidCursor: the cursor was not made by this listing (scope and filter).
        """

    def timeline(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        """A page of a scope in the order things happened: by ``occurred_at``, records of one
        instant in insertion order, under every field of ``flt`` (``since``/``until`` bound
        ``occurred_at``); and the cursor of the next page (None: last).

        Read from an index in that order (scope, occurred_at, row id): a page costs about
        ``limit`` records however large the scope, never a sort of it. The cursor holds the last
        position returned, so it survives the deletion of any record; records written before it
        meanwhile are not returned.

        Raises:
            InvalidCursor: the cursor was not made by this timeline (scope and filter,
                period and metadata included), e.g. one of :meth:`list`.
        """

    def iter_rows(self, tenant: str, scope: Scope | None) -> Iterator[Row]:
        """Every record of a tenant (or of one scope), in insertion order: for export."""

    def history(self, tenant: str, memory_id: str) -> builtins.list[HistoryEntry]:
        """Every change of a record, oldest first."""

    def lexical(self, scope: Scope, query: str, limit: int, flt: Filter) -> Scored:
        """Best records for a query's words (BM25-like; higher is better)."""

    def dense(
        self, scope: Scope, query: Vector, limit: int, filters: Sequence[Filter]
    ) -> builtins.list[Scored]:
        """Nearest records to a unit query vector (cosine), ranked separately under each
        filter: one pass over the vectors serves several candidate lists."""

    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, Vector]:
        """Vectors already computed for these embedded-text hashes (an embedding cache)."""

    def jobs(self, tenant: str | None, limit: int, kind: str | None = None) -> builtins.list[Job]:
        """Pending derived work, oldest first (every tenant's when ``tenant`` is None; every
        kind's when ``kind`` is None: "embed", "extract")."""

    def mentions(self, tenant: str, ids: Sequence[str]) -> dict[str, builtins.list[EntityLink]]:
        """The entities each of these records mentions (for an export)."""

    def outdated(self, tenant: str, ids: Sequence[str], at: float) -> set[str]:
        """The records among ``ids`` every fact of which had ended by ``at`` (and that have at
        least one): turns whose statements were superseded."""

    def entities(self, scope: Scope, name: str | None = None) -> builtins.list[Entity]:
        """A scope's entities (those with this name or alias, when given), most mentioned
        first."""

    def scopes(self, tenant: str) -> builtins.list[ScopeSummary]:
        """The user/agent pairs of a tenant that hold memories, with their counts."""

    def events(self, tenant: str, after: int, limit: int) -> builtins.list[HistoryEntry]:
        """The tenant's changes after event id ``after``, oldest first: the event feed."""

    def api_key(self, digest: str) -> ApiKey | None:
        """The key whose secret hashes to ``digest`` (revoked ones too), or None."""

    def api_keys(self, tenant: str | None) -> builtins.list[ApiKey]:
        """The keys of a tenant (every tenant's when None), oldest first."""

    def api_key_digests(self, tenant: str) -> builtins.list[tuple[ApiKey, str]]:
        """A tenant's keys with the hashes of their secrets: what a migration moves."""

    def tenants(self) -> builtins.list[str]:
        """Every tenant that has records, keys, webhooks or history."""

    def vectors(self, tenant: str, ids: Sequence[str]) -> dict[str, tuple[str, Vector]]:
        """The stored vectors of these records with their embedded-text hashes (records
        without a vector yet are left out): a migration moves them instead of embedding
        again."""

    def webhooks(self, tenant: str | None) -> builtins.list[tuple[Webhook, str]]:
        """Subscriptions with their signing secrets (every tenant's when None)."""

    def deliveries(self, tenant: str, hook_id: str, limit: int) -> builtins.list[Delivery]:
        """A subscription's newest delivery attempts, newest first."""

    def stats(self, tenant: str) -> dict[str, Any]:
        """Counts and sizes."""

    def close(self) -> None:
        """Release connections; further calls raise StoreError."""


# -- timeline cursors -----------------------------------------------------------------------------
# (Beside list()'s cursors in records.py they would read better; they live here, shared by both
# backends, because a position on the timeline is two values: an instant and a row id.)

#: Row ids are 64-bit signed integers in both stores.
_MAX_RID = 2**63 - 1


def timeline_fingerprint(scope: Scope, flt: Filter) -> str:
    """What a timeline cursor is valid for: the scope and the whole filter (its period and
    metadata too), and never a cursor of :meth:`Store.list`."""
    parts = ["timeline", listing_fingerprint(scope, flt), flt.since, flt.until, flt.metadata]
    payload = json.dumps(parts, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_position(fingerprint: str, occurred_at: float, rid: int) -> str:
    """An opaque timeline cursor: the timeline it belongs to and the last (instant, row id)
    returned. A float written as JSON reads back as the same float."""
    raw = json.dumps({"v": 1, "f": fingerprint, "t": occurred_at, "r": rid}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(cursor: object, fingerprint: str) -> tuple[float, int]:
    """The (instant, row id) a timeline cursor continues after.

    Raises:
        InvalidCursor: not a timeline cursor, or one made by a timeline of another scope or
            filter (or by a listing).
    """
    if not isinstance(cursor, str) or len(cursor) > 300:
        raise InvalidCursor(cursor)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")), parse_constant=_nan)
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor(cursor) from exc
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("f"), str):
        raise InvalidCursor(cursor)
    if data["f"] != fingerprint:
        raise InvalidCursor(cursor, foreign=True)
    at, rid = data.get("t"), data.get("r")
    # encode_position writes a float (``1704880800.0``), never an int: an int here is forged.
    if not isinstance(at, float) or not math.isfinite(at):
        raise InvalidCursor(cursor)
    if isinstance(rid, bool) or not isinstance(rid, int) or not 0 <= rid <= _MAX_RID:
        raise InvalidCursor(cursor)
    return at, rid


def _nan(token: str) -> float:
    raise ValueError(f"{token} is no position")
