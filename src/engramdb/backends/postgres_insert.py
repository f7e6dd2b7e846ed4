"""A batch of new records written in a few statements, not a few per record.

An ``add`` of 500 messages made ~3,000 round trips one record at a time (identity check, row,
history, job, terms), and ingest ran at ~200 records/s. Here the identity of the whole batch is
checked with one query, then the rows, their history, jobs and lexical terms go in with one
statement each (``executemany`` is pipelined). The outcome is that of inserting the rows one by
one: a row whose id or event identity an earlier row of the batch took is that row again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import IdConflict
from ..records import Row
from ..types import Scope
from .postgres_rows import dump_json
from .postgres_schema import Conn, impact

#: A stored record as its identity check compares it: scope, text, role, name.
_Said = tuple[Scope, str, str | None, str | None]


@dataclass
class Known:
    """The records of a tenant that rows of a batch may already be: by id, and by event."""

    ids: dict[str, _Said] = field(default_factory=dict)
    events: dict[tuple[int, str], str] = field(default_factory=dict)

    def existing(self, scope_id: int, row: Row) -> str | None:
        """The id the row is already stored under, or None when it is new.

        Raises:
            IdConflict: its id names a record of another scope, or with other content.
        """
        same = self.ids.get(row.id)
        if same is not None:
            if same[0] != row.scope:
                raise IdConflict(row.id, "a memory of another user or agent")
            if same[1:] != (row.text, row.role, row.name):
                raise IdConflict(row.id, "a memory with other content")
            return row.id
        return None if row.dedupe_key is None else self.events.get((scope_id, row.dedupe_key))

    def add(self, scope_id: int, row: Row) -> None:
        """A row of the batch is new: later rows are checked against it too."""
        self.ids[row.id] = (row.scope, row.text, row.role, row.name)
        if row.dedupe_key is not None:
            self.events[(scope_id, row.dedupe_key)] = row.id


def known(conn: Conn, tenant: str, rows: Sequence[tuple[Row, int]]) -> Known:
    """What is stored of a tenant under these rows' ids or event identities (one query)."""
    events = [(scope_id, r.dedupe_key) for r, scope_id in rows if r.dedupe_key is not None]
    # Two index lookups rather than one OR, which the planner may answer with a scan.
    columns = "m.id, m.scope_id, m.dedupe_key, s.user_id, s.agent_id, m.text, m.role, m.name"
    joined = "JOIN scopes s ON s.tenant = m.tenant AND s.id = m.scope_id"
    found = conn.execute(
        f"SELECT {columns} FROM memories m {joined} WHERE m.tenant = %s "
        "AND m.id = ANY(%s::text[]) UNION ALL "
        f"SELECT {columns} FROM unnest(%s::bigint[], %s::text[]) AS u(scope_id, dedupe) "
        f"JOIN memories m ON m.tenant = %s AND m.scope_id = u.scope_id "
        f"AND m.dedupe_key = u.dedupe {joined}",
        (tenant, [r.id for r, _ in rows], [e[0] for e in events], [e[1] for e in events], tenant),
    ).fetchall()
    out = Known()
    for ident, scope_id, dedupe, user_id, agent_id, text, role, name in found:
        out.ids[str(ident)] = (Scope(tenant, user_id or None, agent_id or None), text, role, name)
        if dedupe is not None:
            out.events[(int(scope_id), str(dedupe))] = str(ident)
    return out


def insert_memories(
    conn: Conn, tenant: str, rows: Sequence[tuple[Row, int]], lengths: Sequence[float]
) -> list[int]:
    """Write the records' rows; their positions (row ids), in order."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO memories (tenant, id, scope_id, kind, session_id, role, name, text, "
            "key_own, key_context_name, key_context, occurred_at, tz_offset, recorded_at, "
            "updated_at, metadata, time_mentions, dedupe_key, archived_at, lex_length) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s::json, "
            "%s, %s, %s) RETURNING rid",
            [
                _params(tenant, row, scope_id, n)
                for (row, scope_id), n in zip(rows, lengths, strict=True)
            ],
            returning=True,
        )
        rids = []
        for _ in cur.results():
            made = cur.fetchone()
            rids.append(int(made[0]) if made else 0)
    return rids


def _params(tenant: str, row: Row, scope_id: int, length: float) -> tuple[Any, ...]:
    return (
        tenant, row.id, scope_id, row.kind, row.session_id or "", row.role, row.name, row.text,
        row.keys.own, row.keys.context_name, row.keys.context_text, row.occurred_at,
        row.tz_offset, row.recorded_at, row.updated_at, dump_json(row.metadata),
        dump_json(row.time_mentions), row.dedupe_key, row.archived_at, length,
    )  # fmt: skip


def link_sources(conn: Conn, tenant: str, pairs: Sequence[tuple[int, str]]) -> None:
    """Record (record row id, source record id) links; unknown sources are left out."""
    if pairs:
        conn.execute(
            "INSERT INTO sources (tenant, memory_rid, source_rid) SELECT %s, u.r, m.rid "
            "FROM unnest(%s::bigint[], %s::text[]) AS u(r, s) "
            "JOIN memories m ON m.tenant = %s AND m.id = u.s ON CONFLICT DO NOTHING",
            (tenant, [p[0] for p in pairs], [p[1] for p in pairs], tenant),
        )


def put_terms(
    conn: Conn, tenant: str, docs: Sequence[tuple[int, int, dict[int, float], float]]
) -> None:
    """Write the lexical terms of (scope id, row id, terms, length) records and count them in
    their terms' document frequencies, in two statements. A posting's weight (its BM25 score
    without idf) uses its scope's average length with these records counted."""
    avgs = _averages(conn, tenant, docs)
    scope_ids, rids, term_ids, tfs, weights = [], [], [], [], []
    for scope_id, rid, terms, length in docs:
        avg = avgs[scope_id]
        scope_ids += [scope_id] * len(terms)
        rids += [rid] * len(terms)
        term_ids += list(terms)
        tfs += list(terms.values())
        weights += [impact(tf, length, avg) for tf in terms.values()]
    if not term_ids:
        return
    conn.execute(
        "INSERT INTO lexical_terms (tenant, scope_id, term, rid, tf, w) "
        "SELECT %s, s, t, r, f, w FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
        "%s::real[], %s::real[]) AS u(s, t, r, f, w)",
        (tenant, scope_ids, term_ids, rids, tfs, weights),
    )
    # Sorted, so two transactions of one tenant would lock the rows in the same order (they
    # are serialized by the tenant's write lock anyway).
    conn.execute(
        "INSERT INTO lexical_df (tenant, scope_id, term, df) "
        "SELECT %s, s, t, count(*) FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, t) "
        "GROUP BY s, t ORDER BY s, t "
        "ON CONFLICT (tenant, scope_id, term) DO UPDATE SET df = lexical_df.df + excluded.df",
        (tenant, scope_ids, term_ids),
    )


def _averages(
    conn: Conn, tenant: str, docs: Sequence[tuple[int, int, dict[int, float], float]]
) -> dict[int, float]:
    """The average record length of each scope of ``docs``, these records included."""
    added: dict[int, list[float]] = {}
    for scope_id, _, _, length in docs:
        count = added.setdefault(scope_id, [0.0, 0.0])
        count[0] += 1
        count[1] += length
    for scope_id, n, length in conn.execute(
        "SELECT id, docs, doc_length FROM scopes WHERE tenant = %s AND id = ANY(%s::bigint[])",
        (tenant, list(added)),
    ):
        added[int(scope_id)][0] += int(n)
        added[int(scope_id)][1] += float(length)
    return {s: max(length / n, 1.0) if n else 1.0 for s, (n, length) in added.items()}


def drop_terms(conn: Conn, tenant: str, rids: Sequence[int]) -> None:
    """Delete records' lexical terms and take them out of their terms' document frequencies;
    a term no record of its scope has any more leaves no row behind."""
    gone = conn.execute(
        "WITH gone AS (DELETE FROM lexical_terms WHERE tenant = %s AND rid = ANY(%s::bigint[]) "
        "RETURNING scope_id, term) SELECT scope_id, term, count(*) FROM gone GROUP BY 1, 2 "
        "ORDER BY 1, 2",
        (tenant, list(rids)),
    ).fetchall()
    if not gone:
        return
    scope_ids, term_ids, counts = (list(c) for c in zip(*gone, strict=True))
    conn.execute(
        "UPDATE lexical_df d SET df = d.df - u.n FROM unnest(%s::bigint[], %s::bigint[], "
        "%s::integer[]) AS u(s, t, n) WHERE d.tenant = %s AND d.scope_id = u.s AND d.term = u.t",
        (scope_ids, term_ids, counts, tenant),
    )
    conn.execute(
        "DELETE FROM lexical_df d USING unnest(%s::bigint[], %s::bigint[]) AS u(s, t) "
        "WHERE d.tenant = %s AND d.scope_id = u.s AND d.term = u.t AND d.df <= 0",
        (scope_ids, term_ids, tenant),
    )
