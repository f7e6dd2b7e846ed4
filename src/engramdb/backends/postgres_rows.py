"""What the PostgreSQL store's reads and writes share: how a record is selected and rebuilt, how
a :class:`~engramdb.records.Filter` becomes SQL, and how driver errors become engramdb's.

No psycopg exception leaves the backend: :func:`guarded` turns them into ``StoreError`` (or
``InvalidInput`` for a value PostgreSQL cannot hold). PostgreSQL text cannot hold the NUL
character, which the SQLite store accepts; :func:`refuse_nul` names the field instead of letting
the driver fail on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout

from ..errors import EngramError, InvalidInput, StoreError
from ..records import FactInfo, Filter, Keys, Row
from ..types import Scope
from .postgres_schema import Conn

P = ParamSpec("P")
T = TypeVar("T")

#: The fact columns of a record read (NULL for records that are not facts).
FACT_COLUMNS = (
    "f.subject, f.attribute, f.value, f.claim_kind, f.single, f.ends, f.valid_from, f.valid_to, "
    "f.expired_at, f.superseded_by, f.stated_to, f.confidence"
)
# A derived record's sources, oldest first, in the same statement: one round trip per page.
_SOURCES = (
    "CASE WHEN m.kind = 'message' THEN NULL ELSE ARRAY(SELECT src.id FROM sources x "
    "JOIN memories src ON src.tenant = x.tenant AND src.rid = x.source_rid "
    "WHERE x.tenant = m.tenant AND x.memory_rid = m.rid ORDER BY src.occurred_at, src.rid) END"
)
COLUMNS = (
    "m.rid, m.tenant, m.id, s.user_id, s.agent_id, m.kind, m.session_id, m.role, m.name, m.text, "
    "m.key_own, m.key_context_name, m.key_context, m.occurred_at, m.tz_offset, m.recorded_at, "
    "m.updated_at, m.metadata::text, m.time_mentions::text, m.dedupe_key, m.scope_id, "
    f"m.archived_at, {FACT_COLUMNS}, {_SOURCES}"
)
FROM = (
    "memories m JOIN scopes s ON s.tenant = m.tenant AND s.id = m.scope_id "
    "LEFT JOIN facts f ON f.tenant = m.tenant AND f.memory_rid = m.rid"
)
SELECT = f"SELECT {COLUMNS} FROM {FROM}"


def row_from(r: Sequence[Any]) -> Row:
    """A record from a row of :data:`COLUMNS`."""
    return Row(
        id=str(r[2]),
        scope=Scope(str(r[1]), r[3] or None, r[4] or None),
        kind=str(r[5]),
        session_id=r[6] or None,
        role=r[7],
        name=r[8],
        text=str(r[9]),
        keys=Keys(own=str(r[10]), context_name=r[11], context_text=str(r[12])),
        occurred_at=float(r[13]),
        tz_offset=None if r[14] is None else int(r[14]),
        recorded_at=float(r[15]),
        updated_at=float(r[16]),
        metadata=json.loads(r[17]),
        time_mentions=json.loads(r[18]),
        dedupe_key=r[19],
        archived_at=None if r[21] is None else float(r[21]),
        fact=fact_from(r[22:34]),
        source_ids=list(r[34] or []),
    )


def get_rows(conn: Conn, tenant: str, ids: Sequence[str]) -> list[Row]:
    """Records of a tenant by id (unknown ids are left out)."""
    unique = list(dict.fromkeys(ids))
    return [
        row_from(r)
        for r in conn.execute(
            f"{SELECT} WHERE m.tenant = %s AND m.id = ANY(%s::text[])", (tenant, unique)
        )
    ]


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


def where(tenant: str, scope_id: int, flt: Filter) -> tuple[str, list[Any]]:
    """SQL conditions on ``memories m`` for a scope and a filter, with their parameters."""
    clauses = ["m.tenant = %s", "m.scope_id = %s"]
    params: list[Any] = [tenant, scope_id]
    if flt.since is not None:
        clauses.append("m.occurred_at >= %s")
        params.append(flt.since)
    if flt.until is not None:
        clauses.append("m.occurred_at < %s")
        params.append(flt.until)
    if flt.session_id is not None:
        clauses.append("m.session_id = %s")
        params.append(flt.session_id)
    if flt.kinds is not None:
        clauses.append("m.kind = ANY(%s)")
        params.append(list(flt.kinds))
    if flt.current_facts:
        clauses.append(_fact_holds("f2.valid_to IS NULL"))
    if flt.facts_valid_at is not None:
        clauses.append(
            _fact_holds("f2.valid_from <= %s AND (f2.valid_to IS NULL OR f2.valid_to > %s)")
        )
        params += [flt.facts_valid_at, flt.facts_valid_at]
    if flt.archived is not None:
        clauses.append(f"m.archived_at IS {'NOT ' if flt.archived else ''}NULL")
    for key, value in flt.metadata:
        if value is None:  # as in SQLite, where json_extract gives NULL: nothing equals it
            clauses.append("false")
        else:
            # jsonb compares numbers by value (1 = 1.0) and objects regardless of key order.
            clauses.append("(m.metadata -> %s)::jsonb = %s::jsonb")
            params += [key, dump_json(value)]
    return " AND ".join(clauses), params


def timeline_query(
    tenant: str, scope_id: int, flt: Filter, after: tuple[float, int] | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement of a timeline page (one record more than ``limit``: is there a next?)."""
    cond, params = where(tenant, scope_id, flt)
    if after is not None:
        # A row comparison is an index condition on memories_scope_time (tenant, scope_id,
        # occurred_at, rid): the scan starts at the position, in the page's order.
        cond += " AND (m.occurred_at, m.rid) > (%s, %s)"
        params += [*after]
    return f"{SELECT} WHERE {cond} ORDER BY m.occurred_at, m.rid LIMIT %s", [*params, limit + 1]


def _fact_holds(condition: str) -> str:
    return (
        "(m.kind <> 'fact' OR EXISTS (SELECT 1 FROM facts f2 WHERE f2.tenant = m.tenant "
        f"AND f2.memory_rid = m.rid AND {condition}))"
    )


def dump_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def refuse_nul(row: Row) -> None:
    """PostgreSQL text cannot hold NUL ("\\x00"); say which field of the record has one.

    Raises:
        InvalidInput: a field of the record contains NUL.
    """
    fields: dict[str, object] = {
        "id": row.id, "user_id": row.scope.user_id, "agent_id": row.scope.agent_id,
        "session_id": row.session_id, "role": row.role, "name": row.name, "content": row.text,
        "keys": (row.keys.own, row.keys.context_name, row.keys.context_text),
        "metadata": row.metadata, "time_mentions": row.time_mentions,
    }  # fmt: skip
    for name, value in fields.items():
        if _has_nul(value):
            raise InvalidInput(
                f"memory {row.id[:60]!r}: its {name} contains a NUL character (\\x00), which "
                "PostgreSQL cannot store: remove it (the SQLite store accepts it)"
            )


def refuse_nul_in(what: str, value: object) -> None:
    """Refuse a value holding NUL, naming it (see :func:`refuse_nul`).

    Raises:
        InvalidInput: the value contains NUL.
    """
    if _has_nul(value):
        raise InvalidInput(
            f"{what} contains a NUL character (\\x00), which PostgreSQL cannot store"
        )


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def guarded(fn: Callable[P, T]) -> Callable[P, T]:
    """No psycopg exception leaves the backend: it becomes a StoreError naming the call and the
    cause (or an InvalidInput, for a value PostgreSQL cannot hold)."""

    @wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (psycopg.Error, UnicodeEncodeError, OverflowError) as exc:
            raise translate(exc, f"{fn.__name__}()") from exc

    return call


def translate(exc: Exception, during: str) -> EngramError:
    """The engramdb error for a driver error raised during ``during``."""
    if isinstance(exc, PoolClosed):
        return StoreError("the store is closed: open a new Memory")
    if isinstance(exc, PoolTimeout):
        return StoreError(
            f"no free PostgreSQL connection for {during}: every connection of the pool is busy "
            f"(raise pool_size in the URL, e.g. ?pool_size=20): {exc}"
        )
    if isinstance(exc, psycopg.DataError | UnicodeEncodeError | OverflowError):
        return InvalidInput(f"the store cannot hold a value given to {during}: {exc}")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return StoreError(
            f"{during} waited too long for another write of the same tenant to finish "
            f"(lock_timeout): {exc}"
        )
    if isinstance(exc, psycopg.errors.TransactionRollback):
        return StoreError(
            f"{during} conflicted with a concurrent write and was rolled back: retry it ({exc})"
        )
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(
            f"the connection to PostgreSQL failed during {during} (nothing of an unfinished "
            f"write was kept): {exc}"
        )
    return StoreError(f"the store failed during {during}: {exc}")
