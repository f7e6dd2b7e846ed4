"""Facts, entities and mentions in PostgreSQL: the statements of fact records, their validity,
and the named things records mention (the same tables and rules as ``sqlite_facts``, keyed by
tenant).

Functions take a connection: the store calls them inside its write transaction or on a read
connection. Rows cascade with the record they hang on, so a delete takes them in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import EntityLink, FactInfo
from ..text import norm_name
from ..types import Entity
from .postgres_schema import Conn


def insert_fact(conn: Conn, tenant: str, rid: int, scope_id: int, info: FactInfo) -> None:
    conn.execute(
        "INSERT INTO facts (tenant, memory_rid, scope_id, subject, subject_norm, attribute, "
        "value, value_norm, claim_kind, single, ends, valid_from, valid_to, expired_at, "
        "superseded_by, stated_to, confidence) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant, rid, scope_id, info.subject, norm_name(info.subject), info.attribute,
            info.value, norm_name(info.value), info.claim_kind, info.single, info.ends,
            info.valid_from, info.valid_to, info.expired_at, info.superseded_by, info.stated_to,
            info.confidence,
        ),
    )  # fmt: skip


def set_validity(conn: Conn, tenant: str, rid: int, info: FactInfo) -> None:
    """Write a fact's timeline fields (the statement itself never changes)."""
    conn.execute(
        "UPDATE facts SET valid_from = %s, valid_to = %s, expired_at = %s, superseded_by = %s "
        "WHERE tenant = %s AND memory_rid = %s",
        (info.valid_from, info.valid_to, info.expired_at, info.superseded_by, tenant, rid),
    )


def about_where(
    scope_id: int, subject: str, attributes: Sequence[str], value: str | None
) -> tuple[str, list[Any]]:
    """Conditions (on ``facts f``) for the facts about one subject and attribute(s), and one
    value when given: the bounded set a new claim is reconciled against."""
    sql = "f.scope_id = %s AND f.subject_norm = %s AND f.attribute = ANY(%s::text[])"
    params: list[Any] = [scope_id, norm_name(subject), list(attributes)]
    if value is not None:
        sql += " AND f.value_norm = %s"
        params.append(norm_name(value))
    return sql, params


# -- entities ------------------------------------------------------------------------------------


def upsert_entity(
    conn: Conn,
    *,
    tenant: str,
    scope_id: int,
    ref: EntityLink,
    now: float,
) -> int:
    """The row id of the scope's entity with this normalized name, created if new; a new
    spelling becomes an alias, and a stated relation is kept (the latest wins)."""
    norm = norm_name(ref.name)
    found = conn.execute(
        "SELECT rid, name, aliases, type FROM entities "
        "WHERE tenant = %s AND scope_id = %s AND norm = %s",
        (tenant, scope_id, norm),
    ).fetchone()
    if found is None:
        made = conn.execute(
            "INSERT INTO entities (tenant, id, scope_id, name, norm, type, relation, "
            "relation_of, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING rid",
            (tenant, ref.new_id, scope_id, ref.name, norm, ref.type, ref.relation,
             ref.relation_of, now, now),
        ).fetchone()  # fmt: skip
        return int(made[0]) if made else 0
    rid, stored, aliases, stored_type = found
    if ref.name != stored and ref.name not in aliases:
        aliases = [*aliases, ref.name]
    conn.execute(
        "UPDATE entities SET aliases = %s, type = %s, relation = COALESCE(%s, relation), "
        "relation_of = COALESCE(%s, relation_of), updated_at = %s "
        "WHERE tenant = %s AND rid = %s",
        (
            list(aliases),
            ref.type if stored_type == "thing" else stored_type,
            ref.relation,
            ref.relation_of if ref.relation is not None else None,
            now,
            tenant,
            rid,
        ),
    )
    return int(rid)


def mention(conn: Conn, tenant: str, entity_rid: int, memory_rids: Sequence[int]) -> None:
    conn.execute(
        "INSERT INTO mentions (tenant, entity_rid, memory_rid) "
        "SELECT %s, %s, unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
        (tenant, entity_rid, list(memory_rids)),
    )


def mentioned_by(conn: Conn, tenant: str, memory_rids: Sequence[int]) -> list[int]:
    """The entities these records mention (those a delete of them may leave unmentioned)."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT entity_rid FROM mentions WHERE tenant = %s "
            "AND memory_rid = ANY(%s::bigint[])",
            (tenant, list(memory_rids)),
        )
    ]


def drop_unmentioned(conn: Conn, tenant: str, entity_rids: Sequence[int]) -> int:
    """Purge those of these entities no record mentions any more (their last mention went)."""
    if not entity_rids:
        return 0
    cur = conn.execute(
        "DELETE FROM entities e WHERE e.tenant = %s AND e.rid = ANY(%s::bigint[]) "
        "AND NOT EXISTS (SELECT 1 FROM mentions x WHERE x.tenant = e.tenant "
        "AND x.entity_rid = e.rid)",
        (tenant, list(entity_rids)),
    )
    return cur.rowcount


def entities(conn: Conn, tenant: str, scope_id: int, name: str | None) -> list[Entity]:
    """A scope's entities (or those with this name or alias), most mentioned first."""
    sql = (
        "SELECT e.id, e.name, e.type, e.aliases, e.relation, e.relation_of, "
        "(SELECT count(*) FROM mentions x WHERE x.tenant = e.tenant AND x.entity_rid = e.rid) "
        "AS n, ARRAY(SELECT m.id FROM mentions x JOIN memories m ON m.tenant = x.tenant "
        "AND m.rid = x.memory_rid WHERE x.tenant = e.tenant AND x.entity_rid = e.rid "
        "ORDER BY m.occurred_at, m.rid LIMIT 50) "
        "FROM entities e WHERE e.tenant = %s AND e.scope_id = %s"
    )
    params: list[Any] = [tenant, scope_id]
    if name is not None:
        sql += " AND (e.norm = %s OR %s = ANY(e.aliases))"
        params += [norm_name(name), name]
    return [
        Entity(
            id=str(r[0]),
            name=str(r[1]),
            type=str(r[2]),
            aliases=list(r[3]),
            relation=r[4],
            relation_of=r[5],
            mentions=int(r[6]),
            memory_ids=[str(i) for i in r[7]],
        )
        for r in conn.execute(sql + " ORDER BY n DESC, e.rid", params)
    ]


def derived_from(conn: Conn, tenant: str, source_rids: Sequence[int]) -> list[tuple[str, int]]:
    """(record id, how many of its sources are outside ``source_rids``) for every record derived
    from any of them: what a delete of those sources must purge or re-derive."""
    if not source_rids:
        return []
    return [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            "SELECT m.id, (SELECT count(*) FROM sources y WHERE y.tenant = x.tenant "
            "AND y.memory_rid = x.memory_rid AND NOT y.source_rid = ANY(%s::bigint[])) "
            "FROM sources x JOIN memories m ON m.tenant = x.tenant AND m.rid = x.memory_rid "
            "WHERE x.tenant = %s AND x.source_rid = ANY(%s::bigint[]) "
            "GROUP BY x.tenant, x.memory_rid, m.id ORDER BY x.memory_rid",
            (list(source_rids), tenant, list(source_rids)),
        )
    ]


def outdated(conn: Conn, tenant: str, ids: Sequence[str], at: float) -> set[str]:
    """The records among ``ids`` whose facts had all ended by ``at`` (at least one fact, and
    none still true then): what they said was true, and is no longer."""
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT src.id FROM memories src JOIN sources x ON x.tenant = src.tenant "
            "AND x.source_rid = src.rid JOIN facts f ON f.tenant = x.tenant "
            "AND f.memory_rid = x.memory_rid "
            "WHERE src.tenant = %s AND src.id = ANY(%s::text[]) AND NOT f.ends GROUP BY src.id "
            "HAVING count(*) FILTER (WHERE f.valid_to IS NULL OR f.valid_to > %s) = 0",
            (tenant, list(ids), at),
        )
    }


def mentions(conn: Conn, tenant: str, ids: Sequence[str]) -> list[tuple[str, EntityLink]]:
    """(record id, the entity it mentions) for these records, as an import would link them."""
    return [
        (
            str(r[0]),
            EntityLink(
                new_id=str(r[1]), name=str(r[2]), type=str(r[3]), relation=r[4], relation_of=r[5]
            ),
        )
        for r in conn.execute(
            "SELECT m.id, e.id, e.name, e.type, e.relation, e.relation_of FROM memories m "
            "JOIN mentions x ON x.tenant = m.tenant AND x.memory_rid = m.rid "
            "JOIN entities e ON e.tenant = x.tenant AND e.rid = x.entity_rid "
            "WHERE m.tenant = %s AND m.id = ANY(%s::text[]) ORDER BY m.rid, e.rid",
            (tenant, list(ids)),
        )
    ]
