"""The unit of work of the PostgreSQL store: one connection, one READ COMMITTED transaction.

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

import numpy as np

from ..errors import IdConflict, MemoryNotFound, StoreError
from ..records import EntityLink, FactInfo, Keys, Row, Vector
from ..types import ApiKey, Delivery, Scope, Webhook
from . import postgres_admin as admin
from . import postgres_facts as facts
from . import postgres_schema as schema
from .lexical import key_terms, term_id
from .postgres_rows import SELECT, dump_json, get_rows, guarded, refuse_nul, refuse_nul_in, row_from
from .postgres_schema import Conn

if TYPE_CHECKING:
    from .postgres import PostgresStore

_LOCK_PREFIX = "engramdb:tenant:"


class PostgresTransaction:
    """:class:`engramdb.backends.base.Transaction` on one pooled connection."""

    def __init__(self, store: PostgresStore, conn: Conn) -> None:
        self._store = store
        self._conn = conn
        self.now = time.time()
        self._locked: set[str] = set()
        self._scopes: dict[Scope, int] = {}
        # (tenant, scope id) -> [records added, total length added], written by flush().
        self._counts: dict[tuple[str, int], list[float]] = {}

    def flush(self) -> None:
        """Write the scopes' record counts and lengths (just before the commit)."""
        for (tenant, scope_id), (docs, length) in self._counts.items():
            self._conn.execute(
                "UPDATE scopes SET docs = docs + %s, doc_length = doc_length + %s "
                "WHERE tenant = %s AND id = %s",
                (int(docs), length, tenant, scope_id),
            )
        self._counts.clear()

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

    # -- records -------------------------------------------------------------------------------

    @guarded
    def insert(
        self, rows: Sequence[Row], actor: str, *, extract: bool = False
    ) -> builtins.list[tuple[str, bool]]:
        out: builtins.list[tuple[str, bool]] = []
        for row in rows:
            refuse_nul(row)
            scope_id = self._scope_id(row.scope)
            existing = self._existing(scope_id, row)
            if existing is not None:
                out.append((existing, False))
                continue
            rid = self._insert(scope_id, row, actor)
            if extract and row.kind == "message":
                self._queue(row.scope.tenant, [rid], "extract")
            out.append((row.id, True))
        return out

    def _existing(self, scope_id: int, row: Row) -> str | None:
        """The id a row is already stored under (by id, or by its event identity)."""
        found = self._conn.execute(
            "SELECT m.id, s.user_id, s.agent_id, m.text, m.role, m.name FROM memories m "
            "JOIN scopes s ON s.tenant = m.tenant AND s.id = m.scope_id WHERE m.tenant = %s "
            "AND (m.id = %s OR (m.scope_id = %s AND m.dedupe_key = %s))",
            (row.scope.tenant, row.id, scope_id, row.dedupe_key),
        ).fetchall()
        for ident, user_id, agent_id, text, role, name in found:
            if ident != row.id:
                continue
            if Scope(row.scope.tenant, user_id or None, agent_id or None) != row.scope:
                raise IdConflict(row.id, "a memory of another user or agent")
            if (text, role, name) != (row.text, row.role, row.name):
                raise IdConflict(row.id, "a memory with other content")
            return row.id
        return str(found[0][0]) if found else None

    def _insert(self, scope_id: int, row: Row, actor: str) -> int:
        tenant = row.scope.tenant
        terms = _terms(row.keys)
        length = sum(terms.values())
        made = self._conn.execute(
            "INSERT INTO memories (tenant, id, scope_id, kind, session_id, role, name, text, "
            "key_own, key_context_name, key_context, occurred_at, tz_offset, recorded_at, "
            "updated_at, metadata, time_mentions, dedupe_key, archived_at, lex_length) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s::json, "
            "%s, %s, %s) RETURNING rid",
            (
                tenant, row.id, scope_id, row.kind, row.session_id or "", row.role, row.name,
                row.text, row.keys.own, row.keys.context_name, row.keys.context_text,
                row.occurred_at, row.tz_offset, row.recorded_at, row.updated_at,
                dump_json(row.metadata), dump_json(row.time_mentions), row.dedupe_key,
                row.archived_at, length,
            ),
        ).fetchone()  # fmt: skip
        rid = int(made[0]) if made else 0
        if row.source_ids:
            self._conn.execute(
                "INSERT INTO sources (tenant, memory_rid, source_rid) SELECT %s, %s, rid "
                "FROM memories WHERE tenant = %s AND id = ANY(%s::text[]) ON CONFLICT DO NOTHING",
                (tenant, rid, tenant, row.source_ids),
            )
        if row.fact is not None:
            facts.insert_fact(self._conn, tenant, rid, scope_id, row.fact)
        if row.mentions:
            self.link_entities(row.scope, [row.id], row.mentions)
        self._history(row.id, tenant, "create", None, _snapshot(row), actor)
        self._queue(tenant, [rid], "embed")
        self._put_terms(tenant, scope_id, rid, terms)
        self._count(tenant, scope_id, 1, length)
        return rid

    def _put_terms(self, tenant: str, scope_id: int, rid: int, terms: dict[int, float]) -> None:
        self._conn.execute(
            "INSERT INTO lexical_terms (tenant, scope_id, term, rid, tf) "
            "SELECT %s, %s, t, %s, f FROM unnest(%s::bigint[], %s::real[]) AS u(t, f)",
            (tenant, scope_id, rid, builtins.list(terms), builtins.list(terms.values())),
        )

    def _rekey(self, tenant: str, scope_id: int, rid: int, keys: Keys) -> None:
        """Replace a record's keys, lexical terms and length."""
        refuse_nul_in("keys", (keys.own, keys.context_name, keys.context_text))
        terms = _terms(keys)
        length = sum(terms.values())
        old = self._conn.execute(
            "SELECT lex_length FROM memories WHERE tenant = %s AND rid = %s", (tenant, rid)
        ).fetchone()
        self._conn.execute(
            "UPDATE memories SET key_own = %s, key_context_name = %s, key_context = %s, "
            "lex_length = %s WHERE tenant = %s AND rid = %s",
            (keys.own, keys.context_name, keys.context_text, length, tenant, rid),
        )
        self._conn.execute(
            "DELETE FROM lexical_terms WHERE tenant = %s AND rid = %s", (tenant, rid)
        )
        self._put_terms(tenant, scope_id, rid, terms)
        self._count(tenant, scope_id, 0, length - (float(old[0]) if old else 0.0))

    def _history(
        self,
        memory_id: str,
        tenant: str,
        event: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        actor: str,
    ) -> None:
        self._conn.execute(
            "INSERT INTO history (tenant, memory_id, event, before, after, actor, at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                tenant, memory_id, event, None if before is None else dump_json(before),
                None if after is None else dump_json(after), actor, self.now,
            ),
        )  # fmt: skip

    def _queue(self, tenant: str, rids: Sequence[int], kind: str) -> None:
        self._conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "SELECT %s, %s, unnest(%s::bigint[]), %s, %s "
            "ON CONFLICT (tenant, memory_rid, kind) DO UPDATE SET "
            "attempts = 0, last_error = NULL, updated_at = excluded.updated_at",
            (tenant, kind, builtins.list(rids), self.now, self.now),
        )

    @guarded
    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        self._lock(tenant)
        return get_rows(self._conn, tenant, ids)

    @guarded
    def previous(self, scope: Scope, session_id: str | None, at: float) -> Row | None:
        scope_id = self._find_scope(scope)
        if scope_id is None:
            return None
        found = self._conn.execute(
            f"{SELECT} WHERE m.tenant = %s AND m.scope_id = %s AND m.session_id = %s "
            "AND m.kind = 'message' AND m.occurred_at <= %s "
            "ORDER BY m.occurred_at DESC, m.rid DESC LIMIT 1",
            (scope.tenant, scope_id, session_id or "", at),
        ).fetchone()
        return None if found is None else row_from(found)

    @guarded
    def neighbours(self, tenant: str, memory_id: str) -> tuple[Row | None, Row | None]:
        self._lock(tenant)
        base = self._conn.execute(
            "SELECT scope_id, session_id, occurred_at, rid FROM memories "
            "WHERE tenant = %s AND id = %s",
            (tenant, memory_id),
        ).fetchone()
        if base is None:
            return None, None
        same = (
            f"{SELECT} WHERE m.tenant = %s AND m.scope_id = %s AND m.session_id = %s "
            "AND m.kind = 'message' AND "
        )
        before = self._conn.execute(
            same + "(m.occurred_at, m.rid) < (%s, %s) "
            "ORDER BY m.occurred_at DESC, m.rid DESC LIMIT 1",
            (tenant, *base),
        ).fetchone()
        after = self._conn.execute(
            same + "(m.occurred_at, m.rid) > (%s, %s) ORDER BY m.occurred_at, m.rid LIMIT 1",
            (tenant, *base),
        ).fetchone()
        return (None if before is None else row_from(before)), (
            None if after is None else row_from(after)
        )

    @guarded
    def update(self, row: Row, actor: str) -> None:
        refuse_nul(row)
        tenant = row.scope.tenant
        self._lock(tenant)
        found = self._conn.execute(
            f"{SELECT} WHERE m.tenant = %s AND m.id = %s", (tenant, row.id)
        ).fetchone()
        if found is None:
            raise StoreError(f"memory {row.id} vanished during update")
        before, rid, scope_id = row_from(found), int(found[0]), int(found[20])
        self._conn.execute(
            "UPDATE memories SET text = %s, metadata = %s::json, time_mentions = %s::json, "
            "updated_at = %s WHERE tenant = %s AND rid = %s",
            (
                row.text, dump_json(row.metadata), dump_json(row.time_mentions), row.updated_at,
                tenant, rid,
            ),
        )  # fmt: skip
        self._history(row.id, tenant, "update", _snapshot(before), _snapshot(row), actor)
        self._rekey(tenant, scope_id, rid, row.keys)

    @guarded
    def set_archived(self, tenant: str, memory_id: str, at: float | None, actor: str) -> bool:
        self._lock(tenant)
        rows = get_rows(self._conn, tenant, [memory_id])
        if not rows:
            raise MemoryNotFound(memory_id)
        if (rows[0].archived_at is None) == (at is None):
            return False  # already so: no change, no history
        self._conn.execute(
            "UPDATE memories SET archived_at = %s WHERE tenant = %s AND id = %s",
            (at, tenant, memory_id),
        )
        event = "archive" if at is not None else "unarchive"
        self._history(memory_id, tenant, event, None, _snapshot(rows[0]), actor)
        return True

    @guarded
    def set_keys(self, tenant: str, memory_id: str, keys: Keys) -> None:
        self._lock(tenant)
        found = self._conn.execute(
            "SELECT rid, scope_id FROM memories WHERE tenant = %s AND id = %s",
            (tenant, memory_id),
        ).fetchone()
        if found is None:
            return
        self._rekey(tenant, int(found[1]), int(found[0]), keys)
        self.stale(tenant, [memory_id])

    @guarded
    def stale(self, tenant: str, ids: Sequence[str]) -> None:
        rids = self._rids(tenant, ids)
        self._conn.execute(
            "DELETE FROM vectors WHERE tenant = %s AND rid = ANY(%s::bigint[])", (tenant, rids)
        )
        self._queue(tenant, rids, "embed")

    @guarded
    def delete(self, tenant: str, ids: Sequence[str], actor: str) -> int:
        self._lock(tenant)
        found = self._conn.execute(
            "SELECT rid, scope_id, id FROM memories WHERE tenant = %s AND id = ANY(%s::text[]) "
            "ORDER BY rid",
            (tenant, builtins.list(ids)),
        ).fetchall()
        self._purge(tenant, found, actor)
        return len(found)

    @guarded
    def delete_scope(self, scope: Scope, actor: str) -> builtins.list[str]:
        scope_id = self._find_scope(scope)
        if scope_id is None:
            return []
        found = self._conn.execute(
            "SELECT rid, scope_id, id FROM memories WHERE tenant = %s AND scope_id = %s "
            "ORDER BY rid",
            (scope.tenant, scope_id),
        ).fetchall()
        self._purge(scope.tenant, found, actor)
        return [str(r[2]) for r in found]

    def _purge(self, tenant: str, rows: Sequence[tuple[Any, ...]], actor: str) -> None:
        """Delete records; their vectors, terms, jobs, facts, sources and mentions go with them
        (ON DELETE CASCADE). The rows' old versions stay as dead tuples until VACUUM."""
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
        self._conn.execute(
            "DELETE FROM memories WHERE tenant = %s AND rid = ANY(%s::bigint[])", (tenant, rids)
        )
        # GDPR: the history keeps that a change happened, never what the deleted text was.
        self._conn.execute(
            "UPDATE history SET before = NULL, after = NULL WHERE tenant = %s "
            "AND memory_id = ANY(%s::text[])",
            (tenant, ids),
        )
        for memory_id in ids:
            self._history(memory_id, tenant, "delete", None, None, actor)
        # An entity only deleted records mentioned is derived from deleted data: it goes too.
        facts.drop_unmentioned(self._conn, tenant, mentioned)

    # -- derived work --------------------------------------------------------------------------

    @guarded
    def put_vectors(self, tenant: str, items: Sequence[tuple[str, Keys, str, Vector]]) -> int:
        self._lock(tenant)
        found = {
            str(r[0]): (int(r[1]), int(r[2]), Keys(str(r[3]), r[4], str(r[5])))
            for r in self._conn.execute(
                "SELECT id, rid, scope_id, key_own, key_context_name, key_context FROM memories "
                "WHERE tenant = %s AND id = ANY(%s::text[])",
                (tenant, [item[0] for item in items]),
            )
        }
        batch = [
            (tenant, found[i][0], found[i][1], h, np.asarray(v, dtype=np.float32))
            for i, keys, h, v in items
            # deleted, or re-keyed since: its job stays for the new keys
            if i in found and found[i][2] == keys
        ]
        if not batch:
            return 0
        with self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vectors (tenant, rid, scope_id, embed_hash, embedding) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, rid) DO UPDATE SET "
                "scope_id = excluded.scope_id, embed_hash = excluded.embed_hash, "
                "embedding = excluded.embedding",
                batch,
            )
        self._conn.execute(
            "DELETE FROM jobs WHERE tenant = %s AND kind = 'embed' "
            "AND memory_rid = ANY(%s::bigint[])",
            (tenant, [b[1] for b in batch]),
        )
        return len(batch)

    @guarded
    def fail_jobs(self, tenant: str, ids: Sequence[str], error: str, kind: str = "embed") -> None:
        self._conn.execute(
            "UPDATE jobs SET attempts = attempts + 1, last_error = %s, updated_at = %s "
            "WHERE tenant = %s AND kind = %s AND memory_rid = ANY(%s::bigint[])",
            # An error message is no place to refuse a NUL: it is shown escaped instead.
            (error[:2000].replace("\x00", "\\x00"), self.now, tenant, kind, self._rids(tenant, ids)),
        )

    @guarded
    def requeue(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        self._queue(tenant, self._rids(tenant, ids), kind)

    @guarded
    def finish_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        self._conn.execute(
            "DELETE FROM jobs WHERE tenant = %s AND kind = %s AND memory_rid = ANY(%s::bigint[])",
            (tenant, kind, self._rids(tenant, ids)),
        )

    # -- facts and entities --------------------------------------------------------------------

    @guarded
    def facts_about(
        self,
        scope: Scope,
        subject: str,
        attributes: Sequence[str],
        value: str | None,
        limit: int,
    ) -> builtins.list[Row]:
        scope_id = self._find_scope(scope)
        if scope_id is None:
            return []
        cond, params = facts.about_where(scope_id, subject, attributes, value)
        return [
            row_from(r)
            for r in self._conn.execute(
                f"{SELECT} WHERE m.tenant = %s AND {cond} "
                "ORDER BY f.valid_from DESC, m.rid DESC LIMIT %s",
                [scope.tenant, *params, limit],
            )
        ]

    @guarded
    def set_validity(
        self,
        tenant: str,
        memory_id: str,
        info: FactInfo,
        event: str,
        actor: str,
        cause: Sequence[str] = (),
    ) -> None:
        self._lock(tenant)
        found = self._conn.execute(
            "SELECT m.rid, f.valid_from, f.valid_to, f.superseded_by FROM memories m "
            "JOIN facts f ON f.tenant = m.tenant AND f.memory_rid = m.rid "
            "WHERE m.tenant = %s AND m.id = %s",
            (tenant, memory_id),
        ).fetchone()
        if found is None:
            raise MemoryNotFound(memory_id)
        rid, *before = found
        facts.set_validity(self._conn, tenant, int(rid), info)
        self._history(
            memory_id, tenant, event,
            {"valid_from": before[0], "valid_to": before[1], "superseded_by": before[2]},
            {
                "valid_from": info.valid_from, "valid_to": info.valid_to,
                "superseded_by": info.superseded_by,
                **({"caused_by": builtins.list(cause)} if cause else {}),
            },
            actor,
        )  # fmt: skip

    @guarded
    def add_sources(
        self,
        tenant: str,
        memory_id: str,
        source_ids: Sequence[str],
        actor: str,
        *,
        history: bool = True,
    ) -> builtins.list[str]:
        found = self._rids(tenant, [memory_id])
        if not found:
            raise MemoryNotFound(memory_id)
        added = [
            source_id
            for source_id in source_ids
            if self._conn.execute(
                "INSERT INTO sources (tenant, memory_rid, source_rid) SELECT %s, %s, rid "
                "FROM memories WHERE tenant = %s AND id = %s ON CONFLICT DO NOTHING "
                "RETURNING source_rid",
                (tenant, found[0], tenant, source_id),
            ).fetchone()
        ]
        if added and history:
            self._history(memory_id, tenant, "confirm", None, {"sources": added}, actor)
        return added

    @guarded
    def remove_sources(
        self, tenant: str, memory_id: str, source_ids: Sequence[str], actor: str
    ) -> None:
        self._conn.execute(
            "DELETE FROM sources WHERE tenant = %s AND memory_rid = ANY(%s::bigint[]) "
            "AND source_rid = ANY(%s::bigint[])",
            (tenant, self._rids(tenant, [memory_id]), self._rids(tenant, source_ids)),
        )
        self._history(
            memory_id, tenant, "split", {"sources": builtins.list(source_ids)}, None, actor
        )

    @guarded
    def unmention(self, tenant: str, ids: Sequence[str]) -> None:
        rids = self._rids(tenant, ids)
        mentioned = facts.mentioned_by(self._conn, tenant, rids)
        self._conn.execute(
            "DELETE FROM mentions WHERE tenant = %s AND memory_rid = ANY(%s::bigint[])",
            (tenant, rids),
        )
        facts.drop_unmentioned(self._conn, tenant, mentioned)

    @guarded
    def link_entities(
        self, scope: Scope, memory_ids: Sequence[str], refs: Sequence[EntityLink]
    ) -> None:
        scope_id = self._scope_id(scope)
        rids = self._rids(scope.tenant, memory_ids)
        for ref in refs:
            entity = facts.upsert_entity(
                self._conn, tenant=scope.tenant, scope_id=scope_id, ref=ref, now=self.now
            )
            facts.mention(self._conn, scope.tenant, entity, rids)

    @guarded
    def derived(self, tenant: str, ids: Sequence[str]) -> builtins.list[tuple[str, int]]:
        return facts.derived_from(self._conn, tenant, self._rids(tenant, ids))

    @guarded
    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @guarded
    def reset_vectors(self) -> int:
        dim = self._store.dim
        stored = self._conn.execute("SELECT value FROM meta WHERE key = 'vector_dim'").fetchone()
        if stored is None or stored[0] != str(dim):  # a model of another size
            self._conn.execute("DROP TABLE vectors")
            schema.create_vectors(self._conn, dim)
        else:
            self._conn.execute("DELETE FROM vectors")
        cur = self._conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "SELECT tenant, 'embed', rid, %s, %s FROM memories "
            "ON CONFLICT (tenant, memory_rid, kind) DO NOTHING",
            (self.now, self.now),
        )
        return cur.rowcount

    # -- what a server keeps beside the memories ------------------------------------------------

    @guarded
    def insert_key(self, key: ApiKey, digest: str) -> None:
        admin.insert_key(self._conn, key, digest)

    @guarded
    def revoke_key(self, key_id: str, tenant: str | None) -> bool:
        return admin.revoke_key(self._conn, key_id, tenant, self.now)

    @guarded
    def insert_webhook(self, hook: Webhook, secret: str) -> Webhook:
        self._lock(hook.tenant)  # no older event of the tenant can commit after this read
        return admin.insert_webhook(self._conn, hook, secret)

    @guarded
    def delete_webhook(self, tenant: str, hook_id: str) -> bool:
        return admin.delete_webhook(self._conn, tenant, hook_id)

    @guarded
    def log_delivery(self, delivery: Delivery, advance: bool) -> None:
        admin.log_delivery(self._conn, delivery, advance)

    @guarded
    def purge(self, tenant: str, user_id: str | None, actor: str) -> dict[str, int]:
        self._lock(tenant)
        scope_list = admin.scope_ids(self._conn, tenant, user_id)
        receipt = admin.counts(self._conn, tenant, scope_list)
        found = self._conn.execute(
            "SELECT rid, scope_id, id FROM memories WHERE tenant = %s "
            "AND scope_id = ANY(%s::bigint[]) ORDER BY rid",
            (tenant, scope_list),
        ).fetchall()
        self._purge(tenant, found, actor)
        admin.drop_scopes(self._conn, tenant, scope_list)
        for scope_id in scope_list:  # the scope itself goes: no counts to write
            self._counts.pop((tenant, scope_id), None)
        self._scopes.clear()
        if user_id is None:
            receipt.update(admin.drop_tenant(self._conn, tenant))
        return receipt


def _terms(keys: Keys) -> dict[int, float]:
    """A key's weighted terms by 64-bit term id (two terms sharing an id add up, as they would
    in the in-memory index's postings)."""
    merged: dict[int, float] = {}
    for term, tf in key_terms(keys).items():
        tid = term_id(term)
        merged[tid] = merged.get(tid, 0.0) + tf
    return merged


def _snapshot(row: Row) -> dict[str, Any]:
    # The scope makes an event of the feed (and a webhook delivery) say whose memory changed.
    return {
        "text": row.text, "metadata": row.metadata, "kind": row.kind,
        "user_id": row.scope.user_id, "agent_id": row.scope.agent_id,
        "session_id": row.session_id,
    }  # fmt: skip
