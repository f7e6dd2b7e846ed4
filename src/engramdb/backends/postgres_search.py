"""Candidate queries of the PostgreSQL store: BM25 over stored terms, cosine over pgvector.

**Lexical.** Every record's weighted terms are stored as rows (term id, frequency) with its
length, exactly as the SQLite store analyses them (:func:`~engramdb.backends.lexical.key_terms`,
64-bit term ids), and the scope row keeps the count and total length of its records. One SQL
statement then scores the query's terms with the BM25 of :class:`~engramdb.backends.lexical.
LexicalSet` (same K1, B, idf and length normalisation, document frequencies over the whole
scope, the filter applied to the scored records only): the same ranking function on both
backends, so fusion and the evaluations see the same lexical lists.

**Dense.** A scope small enough to scan (the common case: one user's memories) is ranked
exactly, like the SQLite store's matrix product (:data:`EXACT_MAX`); a larger one goes through
the HNSW index with pgvector's iterative scan, so a filter that keeps few rows still gets
``limit`` of them, and falls back to the exact scan when the index gives fewer than asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..records import Filter, Scored, Vector
from ..text import tokens
from .lexical import K1, B, term_id
from .postgres_rows import where
from .postgres_schema import Conn

#: Scopes with at most this many records are ranked by an exact scan: perfect recall and the same
#: lists as the SQLite store, for ~10 ms at 5k vectors of 384 floats; above it, an HNSW probe
#: takes ~2 ms with a recall@10 of ~0.97 (docs/postgres.md).
EXACT_MAX = 5_000
#: Up to this many postings of the query's terms, BM25 is computed over all of them (~10 ms
#: at 20k); above, :func:`_pruned` reads a bounded share (docs/postgres.md).
EXACT_POSTINGS = 5_000
#: The pruned search reads every posting of the rarest query terms up to this many in all...
FULL_POSTINGS = 20_000
#: ...and the heaviest postings of each other term: a share of the scope's records (1 in
#: TOP_SHARE), at least TOP_POSTINGS (recall of the top 10 against the exact BM25: 0.99 at 1M
#: records in one scope, docs/benchmarks.md)...
TOP_POSTINGS = 1_000
TOP_SHARE = 100
#: ...then scores exactly the candidates with the best partial scores: this many per result
#: asked for, and at least RESCORED_MIN.
RESCORED = 4
RESCORED_MIN = 400
#: When a filter kept fewer than asked for, the pool is this many times wider once more, before
#: the exact scan.
RESCORED_WIDER = 8
#: HNSW candidate list per probe (recall ~0.96 at 100k x 384, docs/postgres.md).
EF_SEARCH = 100
#: How many index tuples an iterative scan may visit before giving up on a narrow filter.
MAX_SCAN_TUPLES = 50_000


def lexical(
    conn: Conn, tenant: str, scope_id: int, docs: int, query: str, limit: int, flt: Filter
) -> Scored:
    """The best records of a scope of ``docs`` records for a query's words by BM25, under a
    filter: exact while the query's terms have at most :data:`EXACT_POSTINGS` postings, pruned
    above."""
    terms = [term_id(t) for t in dict.fromkeys(tokens(query))]
    if not terms or limit <= 0:
        return []
    df = dict(
        conn.execute(
            "SELECT term, df FROM lexical_df WHERE tenant = %s AND scope_id = %s "
            "AND term = ANY(%s::bigint[])",
            (tenant, scope_id, terms),
        ).fetchall()
    )
    if not df:
        return []
    if sum(df.values()) <= EXACT_POSTINGS:
        return lexical_exact(conn, tenant, scope_id, query, limit, flt)
    rescored = max(RESCORED * limit, RESCORED_MIN)
    top = max(TOP_POSTINGS, docs // TOP_SHARE)
    for pool in (rescored, rescored * RESCORED_WIDER):
        found = _pruned(conn, tenant, scope_id, df, limit, pool, top, flt)
        if len(found) >= limit:
            return found
    # A filter kept fewer of the candidates than asked for: only the exact scan knows whether
    # the scope holds more.
    return lexical_exact(conn, tenant, scope_id, query, limit, flt)


def lexical_exact(
    conn: Conn, tenant: str, scope_id: int, query: str, limit: int, flt: Filter
) -> Scored:
    """BM25 over every posting of the query's terms (the reference :func:`lexical` prunes)."""
    terms = [term_id(t) for t in dict.fromkeys(tokens(query))]
    if not terms or limit <= 0:
        return []
    cond, params = where(tenant, scope_id, flt)
    # df and the averages are over the whole scope (as LexicalSet counts every live record);
    # only the scored records are filtered.
    sql = f"""
        WITH s AS ({_SCOPE_SQL}), p AS (
            SELECT term, rid, tf FROM lexical_terms
            WHERE tenant = %s AND scope_id = %s AND term = ANY(%s::bigint[])
        ), df AS (
            SELECT p.term, {_IDF_SQL.format(df="count(*)")} AS idf
            FROM p CROSS JOIN s GROUP BY p.term, s.docs
        )
        SELECT id, score FROM (
            SELECT m.rid, m.id, sum(df.idf * {_WEIGHT_SQL}) AS score
            FROM p JOIN df ON df.term = p.term CROSS JOIN s
            JOIN memories m ON m.tenant = %s AND m.rid = p.rid
            WHERE {cond}
            GROUP BY m.rid, m.id
        ) scored
        WHERE score > 0 ORDER BY score DESC, rid LIMIT %s
    """
    head = [tenant, scope_id, tenant, scope_id, terms, tenant]
    return [(str(i), float(s)) for i, s in conn.execute(sql, [*head, *params, limit])]


def _pruned(
    conn: Conn,
    tenant: str,
    scope_id: int,
    df: dict[int, int],
    limit: int,
    pool: int,
    top: int,
    flt: Filter,
) -> Scored:
    """BM25 of a large scope from a bounded share of the postings.

    Candidates: every posting of the query's rarest terms while they add up to at most
    :data:`FULL_POSTINGS` (these terms weigh most), and the ``top`` heaviest postings (stored
    weight: tf and length) of each other term. The ``pool`` candidates with the
    best partial scores are then scored exactly, over all their terms, and filtered.
    """
    ordered = sorted(df, key=lambda t: (df[t], t))
    full, used = set(), 0
    for term in ordered:
        if used + df[term] > FULL_POSTINGS:
            break
        full.add(term)
        used += df[term]
    cond, params = where(tenant, scope_id, flt)
    sql = f"""
        WITH s AS ({_SCOPE_SQL}), q AS (
            SELECT u.term, {_IDF_SQL.format(df="u.df")} AS idf, u.whole
            FROM unnest(%s::bigint[], %s::float8[], %s::bool[]) AS u(term, df, whole) CROSS JOIN s
        ), c AS (
            SELECT p.rid, q.idf * p.w AS c FROM q JOIN lexical_terms p
            ON p.tenant = %s AND p.scope_id = %s AND p.term = q.term WHERE q.whole
            UNION ALL
            SELECT t.rid, q.idf * t.w FROM q CROSS JOIN LATERAL (
                SELECT rid, w FROM lexical_terms p WHERE p.tenant = %s AND p.scope_id = %s
                AND p.term = q.term ORDER BY w DESC LIMIT %s
            ) t WHERE NOT q.whole
        ), best AS (
            SELECT rid FROM c GROUP BY rid ORDER BY sum(c) DESC, rid LIMIT %s
        )
        SELECT id, score FROM (
            SELECT m.rid, m.id, sum(q.idf * {_WEIGHT_SQL}) AS score
            FROM best JOIN memories m ON m.tenant = %s AND m.rid = best.rid
            JOIN lexical_terms p ON p.tenant = %s AND p.rid = best.rid
            JOIN q ON q.term = p.term CROSS JOIN s
            WHERE {cond}
            GROUP BY m.rid, m.id
        ) scored
        WHERE score > 0 ORDER BY score DESC, rid LIMIT %s
    """
    arrays = [ordered, [float(df[t]) for t in ordered], [t in full for t in ordered]]
    head = [tenant, scope_id, *arrays, tenant, scope_id, tenant, scope_id, top]
    body = [pool, tenant, tenant]
    return [(str(i), float(s)) for i, s in conn.execute(sql, [*head, *body, *params, limit])]


_SCOPE_SQL = (
    "SELECT docs::float8 AS docs, GREATEST(doc_length / NULLIF(docs, 0), 1.0) AS avg "
    "FROM scopes WHERE tenant = %s AND id = %s"
)
_IDF_SQL = "ln(1 + (s.docs - {df} + 0.5) / ({df}::float8 + 0.5))"
_WEIGHT_SQL = f"p.tf * {K1 + 1} / (p.tf + {K1} * (1 - {B} + {B} * m.lex_length / s.avg))"


def dense(
    conn: Conn, tenant: str, scope_id: int, docs: int, query: Vector, limit: int, flt: Filter
) -> Scored:
    """The records of a scope nearest to a unit query vector (cosine similarity), under a
    filter. ``docs`` is how many records the scope holds."""
    if limit <= 0:
        return []
    vector = np.asarray(query, dtype=np.float32)
    if docs > EXACT_MAX and not _one_small_session(conn, tenant, scope_id, flt):
        found = _approximate(conn, tenant, scope_id, vector, limit, flt)
        if len(found) >= limit:
            return found
    return _exact(conn, tenant, scope_id, vector, limit, flt)


def _one_small_session(conn: Conn, tenant: str, scope_id: int, flt: Filter) -> bool:
    """Whether the filter keeps one session of at most EXACT_MAX records. Its rows come from an
    index, so scanning them exactly (~1 ms for a few hundred) beats an HNSW scan that must pass
    over every other session's vectors to find them (~20 ms at 2% of 20k)."""
    if flt.session_id is None:
        return False
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM memories WHERE tenant = %s AND scope_id = %s "
        "AND session_id = %s LIMIT %s) AS s",
        (tenant, scope_id, flt.session_id, EXACT_MAX + 1),
    ).fetchone()
    return found is not None and int(found[0]) <= EXACT_MAX


def _exact(
    conn: Conn, tenant: str, scope_id: int, vector: Vector, limit: int, flt: Filter
) -> Scored:
    cond, params = where(tenant, scope_id, flt)
    # MATERIALIZED keeps the ORDER BY from being served by the HNSW index: this scan is exact.
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT m.id, m.rid, v.embedding <=> %s AS d FROM vectors v
            JOIN memories m ON m.tenant = v.tenant AND m.rid = v.rid
            WHERE v.tenant = %s AND v.scope_id = %s AND {cond}
        )
        SELECT id, 1 - d FROM c ORDER BY d, rid LIMIT %s
    """
    return _scored(conn.execute(sql, [vector, tenant, scope_id, *params, limit]))


def _approximate(
    conn: Conn, tenant: str, scope_id: int, vector: Vector, limit: int, flt: Filter
) -> Scored:
    cond, params = where(tenant, scope_id, flt)
    sql = f"""
        SELECT id, 1 - d FROM (
            SELECT m.id, m.rid, v.embedding <=> %s AS d FROM vectors v
            JOIN memories m ON m.tenant = v.tenant AND m.rid = v.rid
            WHERE v.tenant = %s AND v.scope_id = %s AND {cond}
            ORDER BY v.embedding <=> %s LIMIT %s
        ) near ORDER BY d, rid
    """
    with conn.transaction():
        # Settings for this transaction only: a pooled connection goes back unchanged.
        # enable_sort off: without fresh statistics of the vectors table, the planner may prefer
        # to scan the scope and sort it (~50 ms at 20k, against ~1 ms through the index).
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.max_scan_tuples', %s, true), set_config('enable_sort', 'off', true)",
            (str(max(EF_SEARCH, min(limit, 1000))), str(MAX_SCAN_TUPLES)),
        )
        return _scored(conn.execute(sql, [vector, tenant, scope_id, *params, vector, limit]))


def _scored(rows: Any) -> Scored:
    # A zero vector has no direction: pgvector says NaN, the SQLite store's dot product 0.
    return [(str(i), float(s) if s == s else 0.0) for i, s in rows]
