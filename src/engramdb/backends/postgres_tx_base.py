"""The parts of a PostgreSQL write transaction that its operations share: the tenant's write
lock, scope rows, lexical terms, history rows, the job queue and the purge of records.

The first call about a tenant takes that tenant's write lock (``pg_advisory_xact_lock``, held
until the commit or rollback), so every read and write of the transaction about that tenant
sees the latest committed state and nothing of another writer's in between: concurrent retries
of one event store it once, a reconciliation reads the facts it then changes, and history ids
grow in commit order per tenant (the event feed). Writes of other tenants proceed meanwhile.

Each record's lexical terms and length are written with its keys; the scope row carries the
count and total length of its records for BM25, updated once per transaction (:meth:`flush`).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..records import Keys, Row
from ..types import Scope
from . import postgres_facts as facts
from . import postgres_insert as bulk
from . import postgres_schema as schema
from .lexical import key_terms, term_id
from .postgres_rows import dump_json, refuse_nul_in
from .postgres_schema import Conn

if TYPE_CHECKING:
    from .postgres import PostgresStore

_LOCK_PREFIX = "engramdb:tenant:"
#: After writing this many rows to a table, a store analyses it if the database never did.
_ANALYSE_AFTER = 200


class TxBase:
    """State and helpers of one transaction on one pooled connection."""

    def __init__(self, store: PostgresStore, conn: Conn) -> None:
        self._store = store
        self._conn = conn
        self.now = time.time()
        self._locked: set[str] = set()
        self._scopes: dict[Scope, int] = {}
        # (tenant, scope id) -> [records added, total length added], written by flush().
        self._counts: dict[tuple[str, int], list[float]] = {}
        #: Rows this transaction added to the tables a new database is analysed for.
        self.written = {"memories": 0, "vectors": 0}

    def flush(self) -> None:
        """Write the scopes' record counts and lengths (just before the commit)."""
        for (tenant, scope_id), (docs, length) in self._counts.items():
            self._conn.execute(
                "UPDATE scopes SET docs = docs + %s, doc_length = doc_length + %s "
                "WHERE tenant = %s AND id = %s",
                (int(docs), length, tenant, scope_id),
            )
        self._counts.clear()
        for table, count in self.written.items():
            total = self._store.written[table] = self._store.written.get(table, 0) + count
            if total >= _ANALYSE_AFTER and table not in self._store.analysed:
                self._store.analysed.add(table)  # once: then autovacuum keeps them up
                schema.analyse_new(self._conn, table)

    def _lock(self, tenant: str) -> None:
        if tenant not in self._locked:
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_LOCK_PREFIX + tenant,)
            )
            self._locked.add(tenant)

    def _count(self, tenant: str, scope_id: int, docs: int, length: float) -> None:
        total = self._counts.setdefault((tenant, scope_id), [0, 0.0])
        total[0] += docs
        total[1] += length

    def _find_scope(self, scope: Scope) -> int | None:
        self._lock(scope.tenant)
        found = self._scopes.get(scope)
        if found is None:
            row = self._conn.execute(
                "SELECT id FROM scopes WHERE tenant = %s AND user_id = %s AND agent_id = %s",
                (scope.tenant, scope.user_id or "", scope.agent_id or ""),
            ).fetchone()
            if row is not None:
                found = self._scopes[scope] = int(row[0])
        return found

    def _scope_id(self, scope: Scope) -> int:
        found = self._find_scope(scope)
        if found is not None:
            return found
        row = self._conn.execute(
            "INSERT INTO scopes (tenant, user_id, agent_id, created_at) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            (scope.tenant, scope.user_id or "", scope.agent_id or "", self.now),
        ).fetchone()
        if row is None:
            raise StoreError(f"no scope row was made for {scope}")
        self._scopes[scope] = int(row[0])
        return int(row[0])

    def _rids(self, tenant: str, ids: Sequence[str]) -> builtins.list[int]:
        self._lock(tenant)
        return [
            int(r[0])
            for r in self._conn.execute(
                "SELECT rid FROM memories WHERE tenant = %s AND id = ANY(%s::text[]) ORDER BY rid",
                (tenant, builtins.list(ids)),
            )
        ]

    def _rekey(self, tenant: str, scope_id: int, rid: int, keys: Keys) -> None:
        """Replace a record's keys, lexical terms and length."""
        refuse_nul_in("keys", (keys.own, keys.context_name, keys.context_text))
        terms = terms_of(keys)
        length = sum(terms.values())
        old = self._conn.execute(
            "SELECT lex_length FROM memories WHERE tenant = %s AND rid = %s", (tenant, rid)
        ).fetchone()
        self._conn.execute(
            "UPDATE memories SET key_own = %s, key_context_name = %s, key_context = %s, "
            "lex_length = %s WHERE tenant = %s AND rid = %s",
            (keys.own, keys.context_name, keys.context_text, length, tenant, rid),
        )
        bulk.drop_terms(self._conn, tenant, [rid])
        self._count(tenant, scope_id, 0, length - (float(old[0]) if old else 0.0))
        bulk.put_terms(self._conn, tenant, [(scope_id, rid, terms, length)])

    def _history(
        self,
        memory_id: str,
        tenant: str,
        event: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        actor: str,
    ) -> None:
        self._histories(tenant, [(memory_id, event, before, after)], actor)

    def _histories(
        self,
        tenant: str,
        entries: Sequence[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]],
        actor: str,
    ) -> None:
        """Append (memory id, event, before, after) to the history, in order."""
        with self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO history (tenant, memory_id, event, before, after, actor, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (tenant, memory_id, event, None if before is None else dump_json(before),
                     None if after is None else dump_json(after), actor, self.now)
                    for memory_id, event, before, after in entries
                ],
            )  # fmt: skip

    def _queue(self, tenant: str, rids: Sequence[int], kind: str) -> None:
        self._conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "SELECT %s, %s, unnest(%s::bigint[]), %s, %s "
            "ON CONFLICT (tenant, memory_rid, kind) DO UPDATE SET "
            "attempts = 0, last_error = NULL, updated_at = excluded.updated_at",
            (tenant, kind, builtins.list(rids), self.now, self.now),
        )

    def _purge(self, tenant: str, rows: Sequence[tuple[Any, ...]], actor: str) -> None:
        """Delete records with their terms; their vectors, jobs, facts, sources and mentions go
        with them (ON DELETE CASCADE). The rows' old versions stay as dead tuples until VACUUM."""
        if not rows:
            return
        rids, ids = [int(r[0]) for r in rows], [str(r[2]) for r in rows]
        mentioned = facts.mentioned_by(self._conn, tenant, rids)
        for scope_id, n, length in self._conn.execute(
            "SELECT scope_id, count(*), sum(lex_length) FROM memories WHERE tenant = %s "
            "AND rid = ANY(%s::bigint[]) GROUP BY scope_id",
            (tenant, rids),
        ).fetchall():
            self._count(tenant, int(scope_id), -int(n), -float(length))
        bulk.drop_terms(self._conn, tenant, rids)
        self._conn.execute(
            "DELETE FROM memories WHERE tenant = %s AND rid = ANY(%s::bigint[])", (tenant, rids)
        )
        # GDPR: the history keeps that a change happened, never what the deleted text was.
        self._conn.execute(
            "UPDATE history SET before = NULL, after = NULL WHERE tenant = %s "
            "AND memory_id = ANY(%s::text[])",
            (tenant, ids),
        )
        self._histories(tenant, [(i, "delete", None, None) for i in ids], actor)
        # An entity only deleted records mentioned is derived from deleted data: it goes too.
        facts.drop_unmentioned(self._conn, tenant, mentioned)


def terms_of(keys: Keys) -> dict[int, float]:
    """A key's weighted terms by 64-bit term id (two terms sharing an id add up, as they would
    in the in-memory index's postings)."""
    merged: dict[int, float] = {}
    for term, tf in key_terms(keys).items():
        tid = term_id(term)
        merged[tid] = merged.get(tid, 0.0) + tf
    return merged


def snapshot(row: Row) -> dict[str, Any]:
    # The scope makes an event of the feed (and a webhook delivery) say whose memory changed.
    return {
        "text": row.text, "metadata": row.metadata, "kind": row.kind,
        "user_id": row.scope.user_id, "agent_id": row.scope.agent_id,
        "session_id": row.session_id,
    }  # fmt: skip
