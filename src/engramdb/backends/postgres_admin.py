"""What a server keeps beside the memories, in PostgreSQL: API keys (hashed), webhook
subscriptions and their delivery log, the event feed (the history table read in order), the
scopes of a tenant with their counts, and what a purge of a user or a tenant removes.

The same rules as ``sqlite_admin``. Functions take a connection: the store calls them on a read
connection or inside its write transaction.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from ..types import ApiKey, Delivery, HistoryEntry, ScopeSummary, Webhook
from .postgres_schema import Conn

_KEY_COLUMNS = "id, tenant, name, role, prefix, created_at, revoked_at"
_HOOK_COLUMNS = "id, tenant, url, events, created_at, cursor"


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(str(value)), tz=UTC)


def _key(r: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        id=str(r[0]), tenant=str(r[1]), name=str(r[2]), role=str(r[3]), prefix=str(r[4]),
        created_at=_time(r[5]) or datetime.now(UTC), revoked_at=_time(r[6]),
    )  # fmt: skip


def insert_key(conn: Conn, key: ApiKey, digest: str) -> None:
    conn.execute(
        "INSERT INTO api_keys (id, tenant, name, role, prefix, created_at, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (key.id, key.tenant, key.name, key.role, key.prefix, key.created_at.timestamp(), digest),
    )


def key_by_hash(conn: Conn, digest: str) -> ApiKey | None:
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE hash = %s", (digest,)).fetchone()
    return None if row is None else _key(row)


def keys(conn: Conn, tenant: str | None) -> list[ApiKey]:
    where, params = ("WHERE tenant = %s", [tenant]) if tenant is not None else ("", [])
    return [
        _key(r)
        for r in conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys {where} ORDER BY created_at, id", params
        )
    ]


def key_digests(conn: Conn, tenant: str) -> list[tuple[ApiKey, str]]:
    """A tenant's keys with the hashes of their secrets (to move them to another store)."""
    return [
        (_key(r[:-1]), str(r[-1]))
        for r in conn.execute(
            f"SELECT {_KEY_COLUMNS}, hash FROM api_keys WHERE tenant = %s ORDER BY created_at, id",
            (tenant,),
        )
    ]


def tenants(conn: Conn) -> list[str]:
    """Every tenant with records, keys, webhooks or history."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT tenant FROM scopes UNION SELECT tenant FROM api_keys "
            "UNION SELECT tenant FROM webhooks UNION SELECT tenant FROM history ORDER BY 1"
        )
    ]


def revoke_key(conn: Conn, key_id: str, tenant: str | None, at: float) -> bool:
    sql = "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL"
    params: list[Any] = [at, key_id]
    if tenant is not None:
        sql, params = sql + " AND tenant = %s", [*params, tenant]
    return conn.execute(sql, params).rowcount > 0


def _hook(r: tuple[Any, ...]) -> Webhook:
    return Webhook(
        id=str(r[0]), tenant=str(r[1]), url=str(r[2]), events=json.loads(str(r[3])),
        created_at=_time(r[4]) or datetime.now(UTC), cursor=int(r[5]),
    )  # fmt: skip


def insert_webhook(conn: Conn, hook: Webhook, secret: str) -> Webhook:
    """Store a subscription; it receives the events after the newest one of now. The caller
    holds the tenant's write lock, so no event older than that one can still be committed."""
    last = conn.execute(
        "SELECT COALESCE(MAX(id), 0) FROM history WHERE tenant = %s", (hook.tenant,)
    ).fetchone()
    cursor = int(last[0]) if last else 0
    conn.execute(
        "INSERT INTO webhooks (id, tenant, url, secret, events, created_at, cursor) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (hook.id, hook.tenant, hook.url, secret, json.dumps(hook.events),
         hook.created_at.timestamp(), cursor),
    )  # fmt: skip
    return Webhook(hook.id, hook.tenant, hook.url, hook.events, hook.created_at, cursor)


def webhooks(conn: Conn, tenant: str | None) -> list[tuple[Webhook, str]]:
    """Subscriptions (of a tenant, or all) with their signing secrets."""
    where, params = ("WHERE tenant = %s", [tenant]) if tenant is not None else ("", [])
    return [
        (_hook(r[:-1]), str(r[-1]))
        for r in conn.execute(
            f"SELECT {_HOOK_COLUMNS}, secret FROM webhooks {where} ORDER BY created_at, id",
            params,
        )
    ]


def delete_webhook(conn: Conn, tenant: str, hook_id: str) -> bool:
    conn.execute("DELETE FROM deliveries WHERE tenant = %s AND webhook_id = %s", (tenant, hook_id))
    gone = conn.execute("DELETE FROM webhooks WHERE tenant = %s AND id = %s", (tenant, hook_id))
    return gone.rowcount > 0


def log_delivery(conn: Conn, d: Delivery, advance: bool) -> None:
    """Record one delivery attempt; a final one (delivered or given up) moves the cursor."""
    # An attempt that ends after its subscription was deleted is not recorded: nothing would
    # ever read or remove its row.
    conn.execute(
        "INSERT INTO deliveries (tenant, webhook_id, event_id, attempt, status, http_status, "
        "error, at) SELECT %s, %s, %s, %s, %s, %s, %s, %s "
        "WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant = %s AND id = %s)",
        (d.tenant, d.webhook_id, d.event_id, d.attempt, d.status, d.http_status, d.error,
         d.at.timestamp(), d.tenant, d.webhook_id),
    )  # fmt: skip
    if advance:
        conn.execute(
            "UPDATE webhooks SET cursor = GREATEST(cursor, %s) WHERE tenant = %s AND id = %s",
            (d.event_id, d.tenant, d.webhook_id),
        )


def lease_webhook(conn: Conn, tenant: str, hook_id: str, holder: str, until: float) -> bool:
    """Take or renew a subscription's delivery lease (see Store.lease_webhook)."""
    taken = conn.execute(
        "UPDATE webhooks SET leased_by = %s, leased_until = %s WHERE tenant = %s AND id = %s "
        "AND (leased_by IS NULL OR leased_by = %s OR leased_until <= %s)",
        (holder, until, tenant, hook_id, holder, time.time()),
    )
    return taken.rowcount == 1


def release_webhook(conn: Conn, tenant: str, hook_id: str, holder: str) -> None:
    conn.execute(
        "UPDATE webhooks SET leased_by = NULL, leased_until = NULL WHERE tenant = %s "
        "AND id = %s AND leased_by = %s",
        (tenant, hook_id, holder),
    )


def deliveries(conn: Conn, tenant: str, hook_id: str, limit: int) -> list[Delivery]:
    """The newest delivery attempts of a subscription, newest first."""
    return [
        Delivery(
            tenant=tenant,
            webhook_id=hook_id,
            event_id=int(r[0]),
            attempt=int(r[1]),
            status=str(r[2]),
            http_status=None if r[3] is None else int(r[3]),
            error=None if r[4] is None else str(r[4]),
            at=_time(r[5]) or datetime.now(UTC),
        )
        for r in conn.execute(
            "SELECT event_id, attempt, status, http_status, error, at FROM deliveries "
            "WHERE tenant = %s AND webhook_id = %s ORDER BY id DESC LIMIT %s",
            (tenant, hook_id, limit),
        )
    ]


def history(
    conn: Conn, tenant: str, memory_id: str | None, after: int, limit: int | None
) -> list[HistoryEntry]:
    """A record's changes (or, with ``memory_id`` None, the tenant's event feed after the event
    ``after``), oldest first. Every write of a tenant holds its lock until it commits, so event
    ids grow in commit order and a reader that saw one event has seen every earlier one."""
    sql = "SELECT id, memory_id, event, before, after, actor, at FROM history WHERE tenant = %s"
    params: list[Any] = [tenant]
    if memory_id is not None:
        sql, params = sql + " AND memory_id = %s", [*params, memory_id]
    sql, params = sql + " AND id > %s ORDER BY id", [*params, after]
    if limit is not None:
        sql, params = sql + " LIMIT %s", [*params, limit]
    return [
        HistoryEntry(
            id=int(r[0]),
            memory_id=str(r[1]),
            event=str(r[2]),
            before=json.loads(r[3]) if r[3] else None,
            after=json.loads(r[4]) if r[4] else None,
            actor=str(r[5]),
            at=_time(r[6]) or datetime.now(UTC),
        )
        for r in conn.execute(sql, params)
    ]


def scopes(conn: Conn, tenant: str) -> list[ScopeSummary]:
    """Every scope of a tenant with how many messages and facts it holds, and its last event."""
    return [
        ScopeSummary(
            user_id=str(r[0]) or None,
            agent_id=str(r[1]) or None,
            memories=int(r[2]),
            facts=int(r[3]),
            last_at=_time(r[4]),
        )
        for r in conn.execute(
            "SELECT s.user_id, s.agent_id, count(m.rid), count(m.rid) FILTER "
            "(WHERE m.kind = 'fact'), MAX(m.occurred_at) FROM scopes s LEFT JOIN memories m "
            "ON m.tenant = s.tenant AND m.scope_id = s.id WHERE s.tenant = %s "
            "GROUP BY s.tenant, s.id HAVING count(m.rid) > 0 ORDER BY s.user_id, s.agent_id",
            (tenant,),
        )
    ]


def scope_ids(conn: Conn, tenant: str, user_id: str | None) -> list[int]:
    """The scopes of a user (with any agent), or of the whole tenant when ``user_id`` is None."""
    sql, params = "SELECT id FROM scopes WHERE tenant = %s", [tenant]
    if user_id is not None:
        sql, params = sql + " AND user_id = %s", [tenant, user_id]
    return [int(r[0]) for r in conn.execute(sql + " ORDER BY id", params)]


def counts(conn: Conn, tenant: str, scope_list: list[int]) -> dict[str, int]:
    """What a purge of these scopes removes, counted before it runs."""
    one = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE kind = 'message'), "
        "count(*) FILTER (WHERE kind = 'fact'), "
        "(SELECT count(*) FROM entities WHERE tenant = %s AND scope_id = ANY(%s::bigint[])), "
        "(SELECT count(*) FROM jobs j JOIN memories x ON x.tenant = j.tenant "
        "AND x.rid = j.memory_rid WHERE j.tenant = %s AND x.scope_id = ANY(%s::bigint[])) "
        "FROM memories WHERE tenant = %s AND scope_id = ANY(%s::bigint[])",
        [tenant, scope_list] * 3,
    ).fetchone()
    memories, messages, facts, entities, jobs = (int(v) for v in one or (0, 0, 0, 0, 0))
    return {
        "memories": memories, "messages": messages, "facts": facts, "entities": entities,
        "jobs": jobs, "scopes": len(scope_list),
    }  # fmt: skip


def drop_scopes(conn: Conn, tenant: str, scope_list: list[int]) -> None:
    """Remove emptied scopes: their rows name the user."""
    for table, column in (("entities", "scope_id"), ("scopes", "id")):
        conn.execute(
            f"DELETE FROM {table} WHERE tenant = %s AND {column} = ANY(%s::bigint[])",
            (tenant, scope_list),
        )


def drop_tenant(conn: Conn, tenant: str) -> dict[str, int]:
    """Remove what a tenant keeps beside its memories: keys, webhooks, deliveries, history."""
    return {
        table: conn.execute(f"DELETE FROM {table} WHERE tenant = %s", (tenant,)).rowcount
        for table in ("deliveries", "webhooks", "api_keys", "history")
    }
