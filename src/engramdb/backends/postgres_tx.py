"""The unit of work of the PostgreSQL store: one connection, one READ COMMITTED transaction,
holding the write lock of each tenant it touches (:mod:`.postgres_tx_base`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from ..errors import MemoryNotFound, StoreError
from ..records import EntityLink, FactInfo, Job, Keys, Row, Vector
from ..types import ApiKey, Delivery, HistoryEntry, Scope, Webhook
from . import postgres_admin as admin
from . import postgres_facts as facts
from . import postgres_insert as bulk
from . import postgres_schema as schema
from .postgres_rows import SELECT, dump_json, get_rows, guarded, refuse_nul, row_from
from .postgres_tx_base import TxBase, snapshot, terms_of


class PostgresTransaction(TxBase):
    """:class:`engramdb.backends.base.Transaction` on one pooled connection."""

    # -- records -------------------------------------------------------------------------------

    @guarded
    def insert(
        self, rows: Sequence[Row], actor: str, *, extract: bool = False
    ) -> builtins.list[tuple[str, bool]]:
        for row in rows:
            refuse_nul(row)
        placed = [(row, self._scope_id(row.scope)) for row in rows]
        known = {
            tenant: bulk.known(
                self._conn, tenant, [p for p in placed if p[0].scope.tenant == tenant]
            )
            for tenant in dict.fromkeys(row.scope.tenant for row in rows)
        }
        out: builtins.list[tuple[str, bool]] = []
        new: dict[str, builtins.list[tuple[Row, int]]] = {}
        for row, scope_id in placed:
            existing = known[row.scope.tenant].existing(scope_id, row)
            if existing is not None:
                out.append((existing, False))
                continue
            known[row.scope.tenant].add(scope_id, row)
            new.setdefault(row.scope.tenant, []).append((row, scope_id))
            out.append((row.id, True))
        for tenant, batch in new.items():
            self._insert(tenant, batch, actor, extract)
        return out

    def _insert(
        self, tenant: str, batch: Sequence[tuple[Row, int]], actor: str, extract: bool
    ) -> None:
        terms = [terms_of(row.keys) for row, _ in batch]
        lengths = [sum(t.values()) for t in terms]
        rids = bulk.insert_memories(self._conn, tenant, batch, lengths)
        self.written["memories"] += len(rids)
        placed = builtins.list(zip(batch, rids, strict=True))
        bulk.link_sources(
            self._conn, tenant, [(rid, s) for (row, _), rid in placed for s in row.source_ids]
        )
        for (row, scope_id), rid in placed:
            if row.fact is not None:
                facts.insert_fact(self._conn, tenant, rid, scope_id, row.fact)
            if row.mentions:
                self.link_entities(row.scope, [row.id], row.mentions)
        self._histories(
            tenant, [(row.id, "create", None, snapshot(row)) for row, _ in batch], actor
        )
        self._queue(tenant, rids, "embed")
        if extract:
            self._queue(
                tenant, [rid for (row, _), rid in placed if row.kind == "message"], "extract"
            )
        docs = [
            (scope_id, rid, t, n)
            for ((_, scope_id), rid), t, n in zip(placed, terms, lengths, strict=True)
        ]
        bulk.put_terms(self._conn, tenant, docs)
        for (_, scope_id), length in zip(batch, lengths, strict=True):
            self._count(tenant, scope_id, 1, length)

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
            "updated_at = %s, occurred_at = %s WHERE tenant = %s AND rid = %s",
            (
                row.text, dump_json(row.metadata), dump_json(row.time_mentions), row.updated_at,
                row.occurred_at, tenant, rid,
            ),
        )  # fmt: skip
        self._history(row.id, tenant, "update", snapshot(before), snapshot(row), actor)
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
        self._history(memory_id, tenant, event, None, snapshot(rows[0]), actor)
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
        self.written["vectors"] += len(batch)
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
            (
                error[:2000].replace("\x00", "\\x00"),
                self.now,
                tenant,
                kind,
                self._rids(tenant, ids),
            ),
        )

    @guarded
    def lease_jobs(self, kind: str, limit: int, worker: str, until: float) -> builtins.list[Job]:
        # SKIP LOCKED: a job another worker is leasing right now (or a write is finishing) is
        # passed over, not waited for; no tenant lock, the queue spans tenants.
        found = self._conn.execute(
            "WITH free AS (SELECT tenant, id FROM jobs WHERE kind = %s "
            "AND (leased_until IS NULL OR leased_until < %s) ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs j SET leased_until = %s, leased_by = %s FROM free, memories m "
            "WHERE j.tenant = free.tenant AND j.id = free.id AND m.tenant = j.tenant "
            "AND m.rid = j.memory_rid "
            "RETURNING j.id, j.kind, m.id, j.tenant, j.attempts, j.last_error",
            (kind, self.now, limit, until, worker),
        ).fetchall()
        return sorted(
            (Job(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5]) for r in found),
            key=lambda job: job.id,
        )

    @guarded
    def pending_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> set[str]:
        self._lock(tenant)
        # FOR UPDATE: a worker's lease skips these jobs until this transaction ends.
        return {
            str(r[0])
            for r in self._conn.execute(
                "SELECT m.id FROM jobs j JOIN memories m ON m.tenant = j.tenant "
                "AND m.rid = j.memory_rid WHERE j.tenant = %s AND j.kind = %s "
                "AND m.id = ANY(%s::text[]) FOR UPDATE OF j",
                (tenant, kind, builtins.list(ids)),
            )
        }

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
    def replace_history(self, tenant: str, entries: Sequence[HistoryEntry]) -> None:
        self._lock(tenant)
        self._conn.execute("DELETE FROM history WHERE tenant = %s", (tenant,))
        with self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO history (tenant, memory_id, event, before, after, actor, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (tenant, e.memory_id, e.event,
                     None if e.before is None else dump_json(e.before),
                     None if e.after is None else dump_json(e.after), e.actor, e.at.timestamp())
                    for e in entries
                ],
            )  # fmt: skip

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
    def lease_webhook(self, tenant: str, hook_id: str, holder: str, until: float) -> bool:
        return admin.lease_webhook(self._conn, tenant, hook_id, holder, until)

    @guarded
    def release_webhook(self, tenant: str, hook_id: str, holder: str) -> None:
        admin.release_webhook(self._conn, tenant, hook_id, holder)

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
