"""Facts, entities and mentions in SQLite: the statements of fact records, their validity, and
the named things records mention.

A fact is a record of kind ``fact`` (text, keys, vectors, history and sources like any other)
with one row in ``facts`` beside it for what it states and when it holds. Both cascade with the
record, so a delete takes them in its transaction. Entities belong to a scope; a mention links one
to a record, and an entity no record mentions any more is purged with the last one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..records import EntityLink, FactInfo
from ..text import norm_name
from ..types import Entity

#: The fact columns of a record read (NULL for records that are not facts).
FACT_COLUMNS = (
    "f.subject, f.attribute, f.value, f.claim_kind, f.single, f.ends, f.valid_from, f.valid_to, "
    "f.expired_at, f.superseded_by, f.stated_to, f.confidence"
)
FACT_JOIN = "LEFT JOIN facts f ON f.memory_rid = m.rid"
FACT_WIDTH = 12


def fact_from(r: Sequence[Any]) -> FactInfo | None:
    """The fact columns of a read row (FACT_COLUMNS, in order), or None for a non-fact."""
    if r[0] is None:
        return None
    return FactInfo(
        subject=str(r[0]),
        attribute=str(r[1]),
        value=str(r[2]),
        claim_kind=str(r[3]),
        single=bool(r[4]),
        ends=bool(r[5]),
        valid_from=float(r[6]),
        valid_to=None if r[7] is None else float(r[7]),
        expired_at=None if r[8] is None else float(r[8]),
        superseded_by=r[9],
        stated_to=None if r[10] is None else float(r[10]),
        confidence=float(r[11]),
    )


def insert_fact(conn: sqlite3.Connection, rid: int, scope_id: int, info: FactInfo) -> None:
    conn.execute(
        "INSERT INTO facts (memory_rid, scope_id, subject, subject_norm, attribute, value, "
        "value_norm, claim_kind, single, ends, valid_from, valid_to, expired_at, superseded_by, "
        "stated_to, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rid,
            scope_id,
            info.subject,
            norm_name(info.subject),
            info.attribute,
            info.value,
            norm_name(info.value),
            info.claim_kind,
            int(info.single),
            int(info.ends),
            info.valid_from,
            info.valid_to,
            info.expired_at,
            info.superseded_by,
            info.stated_to,
            info.confidence,
        ),
    )


def set_validity(conn: sqlite3.Connection, rid: int, info: FactInfo) -> None:
    """Write a fact's timeline fields (the statement itself never changes)."""
    conn.execute(
        "UPDATE facts SET valid_from = ?, valid_to = ?, expired_at = ?, superseded_by = ? "
        "WHERE memory_rid = ?",
        (info.valid_from, info.valid_to, info.expired_at, info.superseded_by, rid),
    )


def about(
    conn: sqlite3.Connection,
    scope_id: int,
    subject: str,
    attributes: Sequence[str],
    value: str | None,
    limit: int,
) -> list[int]:
    """Row ids of the facts of a scope about one subject and attribute(s) (and one value, when
    given), newest first: the bounded set a new claim is reconciled against."""
    marks = ",".join("?" * len(attributes))
    sql = (
        "SELECT memory_rid FROM facts WHERE scope_id = ? AND subject_norm = ? "
        f"AND attribute IN ({marks})"
    )
    params: list[Any] = [scope_id, norm_name(subject), *attributes]
    if value is not None:
        sql += " AND value_norm = ?"
        params.append(norm_name(value))
    sql += " ORDER BY valid_from DESC, memory_rid DESC LIMIT ?"
    return [int(r[0]) for r in conn.execute(sql, [*params, limit])]


def fact_where(current: bool, valid_at: float | None) -> tuple[list[str], list[Any]]:
    """SQL conditions (on ``memories m``) keeping every record that is not a fact, and of the
    facts those still true (``current``) and/or true at ``valid_at``."""
    clauses: list[str] = []
    params: list[Any] = []
    if current:
        clauses.append(
            "(m.kind != 'fact' OR EXISTS (SELECT 1 FROM facts f WHERE f.memory_rid = m.rid "
            "AND f.valid_to IS NULL))"
        )
    if valid_at is not None:
        clauses.append(
            "(m.kind != 'fact' OR EXISTS (SELECT 1 FROM facts f WHERE f.memory_rid = m.rid "
            "AND f.valid_from <= ? AND (f.valid_to IS NULL OR f.valid_to > ?)))"
        )
        params += [valid_at, valid_at]
    return clauses, params


# -- entities ------------------------------------------------------------------------------------


def upsert_entity(
    conn: sqlite3.Connection,
    *,
    tenant: str,
    scope_id: int,
    new_id: str,
    name: str,
    type_: str,
    relation: str | None,
    relation_of: str | None,
    now: float,
) -> int:
    """The row id of the scope's entity with this normalized name, created if new; a new
    spelling becomes an alias, and a stated relation is kept (the latest wins)."""
    norm = norm_name(name)
    found = conn.execute(
        "SELECT rid, name, aliases, type FROM entities WHERE scope_id = ? AND norm = ?",
        (scope_id, norm),
    ).fetchone()
    if found is None:
        cur = conn.execute(
            "INSERT INTO entities (tenant, id, scope_id, name, norm, type, relation, relation_of, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant, new_id, scope_id, name, norm, type_, relation, relation_of, now, now),
        )
        return int(cur.lastrowid or 0)
    rid, stored, aliases_json, stored_type = found
    aliases = json.loads(aliases_json)
    if name != stored and name not in aliases:
        aliases.append(name)
    conn.execute(
        "UPDATE entities SET aliases = ?, type = ?, relation = COALESCE(?, relation), "
        "relation_of = COALESCE(?, relation_of), updated_at = ? WHERE rid = ?",
        (
            json.dumps(aliases, ensure_ascii=False),
            type_ if stored_type == "thing" else stored_type,
            relation,
            relation_of if relation is not None else None,
            now,
            rid,
        ),
    )
    return int(rid)


def mention(conn: sqlite3.Connection, entity_rid: int, memory_rid: int) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO mentions (entity_rid, memory_rid) VALUES (?, ?)",
        (entity_rid, memory_rid),
    )


def drop_unmentioned(conn: sqlite3.Connection) -> int:
    """Purge entities no record mentions any more (their last mention was deleted)."""
    cur = conn.execute(
        "DELETE FROM entities WHERE NOT EXISTS "
        "(SELECT 1 FROM mentions x WHERE x.entity_rid = entities.rid)"
    )
    return cur.rowcount


def entities(conn: sqlite3.Connection, scope_id: int, name: str | None) -> list[Entity]:
    """A scope's entities (or those with this name or alias), most mentioned first."""
    sql = (
        "SELECT e.id, e.name, e.type, e.aliases, e.relation, e.relation_of, "
        "(SELECT COUNT(*) FROM mentions x WHERE x.entity_rid = e.rid) AS n, e.rid "
        "FROM entities e WHERE e.scope_id = ?"
    )
    params: list[Any] = [scope_id]
    if name is not None:
        sql += (
            " AND (e.norm = ? OR EXISTS (SELECT 1 FROM json_each(e.aliases) a WHERE a.value = ?))"
        )
        params += [norm_name(name), name]
    found = []
    for r in conn.execute(sql + " ORDER BY n DESC, e.rid", params):
        ids = [
            str(x[0])
            for x in conn.execute(
                "SELECT m.id FROM mentions x JOIN memories m ON m.rid = x.memory_rid "
                "WHERE x.entity_rid = ? ORDER BY m.occurred_at, m.rid LIMIT 50",
                (r[7],),
            )
        ]
        found.append(
            Entity(
                id=str(r[0]),
                name=str(r[1]),
                type=str(r[2]),
                aliases=json.loads(r[3]),
                relation=r[4],
                relation_of=r[5],
                mentions=int(r[6]),
                memory_ids=ids,
            )
        )
    return found


def derived_from(conn: sqlite3.Connection, source_rids: Sequence[int]) -> list[tuple[int, int]]:
    """(record row id, how many of its sources are outside ``source_rids``) for every record
    derived from any of them: what a delete of those sources must purge or re-derive."""
    if not source_rids:
        return []
    marks = ",".join("?" * len(source_rids))
    return [
        (int(r[0]), int(r[1]))
        for r in conn.execute(
            f"SELECT x.memory_rid, (SELECT COUNT(*) FROM sources y WHERE y.memory_rid = "
            f"x.memory_rid AND y.source_rid NOT IN ({marks})) FROM sources x "
            f"WHERE x.source_rid IN ({marks}) GROUP BY x.memory_rid",
            [*source_rids, *source_rids],
        )
    ]


def outdated(conn: sqlite3.Connection, tenant: str, ids: Sequence[str], at: float) -> set[str]:
    """The records among ``ids`` whose facts had all ended by ``at`` (at least one fact, and
    none still true then): what they said was true, and is no longer."""
    marks = ",".join("?" * len(ids))
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT src.id FROM memories src JOIN sources x ON x.source_rid = src.rid "
            "JOIN facts f ON f.memory_rid = x.memory_rid "
            f"WHERE src.tenant = ? AND src.id IN ({marks}) AND f.ends = 0 GROUP BY src.id "
            "HAVING SUM(f.valid_to IS NULL OR f.valid_to > ?) = 0",
            [tenant, *ids, at],
        )
    }


def mentions(
    conn: sqlite3.Connection, tenant: str, ids: Sequence[str]
) -> list[tuple[str, EntityLink]]:
    """(record id, the entity it mentions) for these records, as an import would link them."""
    marks = ",".join("?" * len(ids))
    return [
        (
            str(r[0]),
            EntityLink(
                new_id=str(r[1]), name=str(r[2]), type=str(r[3]), relation=r[4], relation_of=r[5]
            ),
        )
        for r in conn.execute(
            "SELECT m.id, e.id, e.name, e.type, e.relation, e.relation_of FROM memories m "
            "JOIN mentions x ON x.memory_rid = m.rid JOIN entities e ON e.rid = x.entity_rid "
            f"WHERE m.tenant = ? AND m.id IN ({marks}) ORDER BY m.rid, e.rid",
            [tenant, *ids],
        )
    ]
