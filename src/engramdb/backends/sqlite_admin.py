"""What a server keeps beside the memories, in the SQLite store: API keys (hashed), webhook
subscriptions and their delivery log, the event feed (the history table read in order), the
scopes of a tenant with their counts, and the purge of a user or a whole tenant.

Functions take a connection: the store calls them inside its read snapshot or its write
transaction, as it does for the semantic tables (``sqlite_facts``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime

from ..types import ApiKey, Delivery, HistoryEntry, ScopeSummary, Webhook

_KEY_COLUMNS = "id, tenant, name, role, prefix, created_at, revoked_at"
_HOOK_COLUMNS = "id, tenant, url, events, created_at, cursor"


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(str(value)), tz=UTC)


def _key(r: tuple[object, ...]) -> ApiKey:
    return ApiKey(
        id=str(r[0]), tenant=str(r[1]), name=str(r[2]), role=str(r[3]), prefix=str(r[4]),
        created_at=_time(r[5]) or datetime.now(UTC), revoked_at=_time(r[6]),
    )  # fmt: skip


def insert_key(conn: sqlite3.Connection, key: ApiKey, digest: str) -> None:
    conn.execute(
        "INSERT INTO api_keys (id, tenant, name, role, prefix, created_at, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key.id, key.tenant, key.name, key.role, key.prefix, key.created_at.timestamp(), digest),
    )


def key_by_hash(conn: sqlite3.Connection, digest: str) -> ApiKey | None:
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE hash = ?", (digest,)).fetchone()
    return None if row is None else _key(row)


def keys(conn: sqlite3.Connection, tenant: str | None) -> list[ApiKey]:
    where, params = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
    return [
        _key(r)
        for r in conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys {where} ORDER BY created_at, id", params
        )
    ]


def key_digests(conn: sqlite3.Connection, tenant: str) -> list[tuple[ApiKey, str]]:
    """A tenant's keys with the hashes of their secrets (to move them to another store)."""
    return [
        (_key(r[:-1]), str(r[-1]))
        for r in conn.execute(
            f"SELECT {_KEY_COLUMNS}, hash FROM api_keys WHERE tenant = ? ORDER BY created_at, id",
            (tenant,),
        )
    ]


def revoke_key(conn: sqlite3.Connection, key_id: str, tenant: str | None, at: float) -> bool:
    sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
    params: tuple[object, ...] = (at, key_id)
    if tenant is not None:
        sql, params = sql + " AND tenant = ?", (*params, tenant)
    return conn.execute(sql, params).rowcount > 0


def _hook(r: tuple[object, ...]) -> Webhook:
    return Webhook(
        id=str(r[0]), tenant=str(r[1]), url=str(r[2]), events=json.loads(str(r[3])),
        created_at=_time(r[4]) or datetime.now(UTC), cursor=int(str(r[5])),
    )  # fmt: skip


def insert_webhook(conn: sqlite3.Connection, hook: Webhook, secret: str) -> Webhook:
    """Store a subscription; it receives the events after the newest one of now."""
    last = conn.execute(
        "SELECT COALESCE(MAX(id), 0) FROM history WHERE tenant = ?", (hook.tenant,)
    ).fetchone()
    conn.execute(
        "INSERT INTO webhooks (id, tenant, url, secret, events, created_at, cursor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (hook.id, hook.tenant, hook.url, secret, json.dumps(hook.events),
         hook.created_at.timestamp(), int(last[0])),
    )  # fmt: skip
    return Webhook(hook.id, hook.tenant, hook.url, hook.events, hook.created_at, int(last[0]))


def webhooks(conn: sqlite3.Connection, tenant: str | None) -> list[tuple[Webhook, str]]:
    """Subscriptions (of a tenant, or all) with their signing secrets."""
    where, params = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
    return [
        (_hook(r[:-1]), str(r[-1]))
        for r in conn.execute(
            f"SELECT {_HOOK_COLUMNS}, secret FROM webhooks {where} ORDER BY created_at, id",
            params,
        )
    ]


def delete_webhook(conn: sqlite3.Connection, tenant: str, hook_id: str) -> bool:
    conn.execute("DELETE FROM deliveries WHERE tenant = ? AND webhook_id = ?", (tenant, hook_id))
    return (
        conn.execute("DELETE FROM webhooks WHERE tenant = ? AND id = ?", (tenant, hook_id)).rowcount
        > 0
    )


def log_delivery(conn: sqlite3.Connection, d: Delivery, advance: bool) -> None:
    """Record one delivery attempt; a final one (delivered or given up) moves the cursor. An
    attempt that ends after its subscription was deleted is not recorded: nothing would ever
    read or remove its row."""
    conn.execute(
        "INSERT INTO deliveries (tenant, webhook_id, event_id, attempt, status, http_status, "
        "error, at) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant = ? AND id = ?)",
        (d.tenant, d.webhook_id, d.event_id, d.attempt, d.status, d.http_status, d.error,
         d.at.timestamp(), d.tenant, d.webhook_id),
    )  # fmt: skip
    if advance:
        conn.execute(
            "UPDATE webhooks SET cursor = MAX(cursor, ?) WHERE tenant = ? AND id = ?",
            (d.event_id, d.tenant, d.webhook_id),
        )


def lease_webhook(
    conn: sqlite3.Connection, tenant: str, hook_id: str, holder: str, until: float
) -> bool:
    """Take or renew a subscription's delivery lease (see Store.lease_webhook)."""
    taken = conn.execute(
        "UPDATE webhooks SET leased_by = ?, leased_until = ? WHERE tenant = ? AND id = ? "
        "AND (leased_by IS NULL OR leased_by = ? OR leased_until <= ?)",
        (holder, until, tenant, hook_id, holder, time.time()),
    )
    return taken.rowcount == 1


def release_webhook(conn: sqlite3.Connection, tenant: str, hook_id: str, holder: str) -> None:
    conn.execute(
        "UPDATE webhooks SET leased_by = NULL, leased_until = NULL WHERE tenant = ? AND id = ? "
        "AND leased_by = ?",
        (tenant, hook_id, holder),
    )


def deliveries(conn: sqlite3.Connection, tenant: str, hook_id: str, limit: int) -> list[Delivery]:
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
            "WHERE tenant = ? AND webhook_id = ? ORDER BY id DESC LIMIT ?",
            (tenant, hook_id, limit),
        )
    ]


def events(conn: sqlite3.Connection, tenant: str, after: int, limit: int) -> list[HistoryEntry]:
    """A tenant's changes after the event ``after``, oldest first (the history, in order)."""
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
        for r in conn.execute(
            "SELECT id, memory_id, event, before, after, actor, at FROM history "
            "WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?",
            (tenant, after, limit),
        )
    ]


def scopes(conn: sqlite3.Connection, tenant: str) -> list[ScopeSummary]:
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
            "SELECT s.user_id, s.agent_id, COUNT(m.rid), COALESCE(SUM(m.kind = 'fact'), 0), "
            "MAX(m.occurred_at) FROM scopes s LEFT JOIN memories m ON m.scope_id = s.id "
            "WHERE s.tenant = ? GROUP BY s.id ORDER BY s.user_id, s.agent_id",
            (tenant,),
        )
        if r[2]
    ]


def scope_ids(conn: sqlite3.Connection, tenant: str, user_id: str | None) -> list[int]:
    """The scopes of a user (with any agent), or of the whole tenant when ``user_id`` is None."""
    sql, params = "SELECT id FROM scopes WHERE tenant = ?", [tenant]
    if user_id is not None:
        sql, params = sql + " AND user_id = ?", [tenant, user_id]
    return [int(r[0]) for r in conn.execute(sql, params)]


def counts(conn: sqlite3.Connection, scope_list: list[int]) -> dict[str, int]:
    """What a purge of these scopes removes, counted before it runs."""
    marks = ",".join("?" * len(scope_list)) or "NULL"
    one = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(kind = 'message'), 0), COALESCE(SUM(kind = 'fact'), 0) "
        f"FROM memories WHERE scope_id IN ({marks})",
        scope_list,
    ).fetchone()
    entities = conn.execute(
        f"SELECT COUNT(*) FROM entities WHERE scope_id IN ({marks})", scope_list
    ).fetchone()
    jobs = conn.execute(
        f"SELECT COUNT(*) FROM jobs WHERE memory_rid IN "
        f"(SELECT rid FROM memories WHERE scope_id IN ({marks}))",
        scope_list,
    ).fetchone()
    return {
        "memories": int(one[0]), "messages": int(one[1]), "facts": int(one[2]),
        "entities": int(entities[0]), "jobs": int(jobs[0]), "scopes": len(scope_list),
    }  # fmt: skip


def drop_scopes(conn: sqlite3.Connection, scope_list: list[int]) -> None:
    """Remove emptied scopes: their rows name the user."""
    conn.executemany("DELETE FROM entities WHERE scope_id = ?", [(s,) for s in scope_list])
    conn.executemany("DELETE FROM scopes WHERE id = ?", [(s,) for s in scope_list])


def drop_tenant(conn: sqlite3.Connection, tenant: str) -> dict[str, int]:
    """Remove what a tenant keeps beside its memories: keys, webhooks, deliveries, history."""
    out = {}
    for table in ("deliveries", "webhooks", "api_keys", "history"):
        out[table] = conn.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,)).rowcount
    return out
