"""The production store: PostgreSQL with pgvector, many writers, readers that never wait.

Every call takes a connection from a :class:`psycopg_pool.ConnectionPool`. Reads run on
autocommit connections, one statement each where they can, so MVCC gives every read a
consistent snapshot that no write blocks. A :meth:`PostgresStore.transaction` holds one
connection in a READ COMMITTED transaction; its first call about a tenant takes that tenant's
write lock (a transaction-level advisory lock), so writes of one tenant serialize, as in the
SQLite store's single write lane, while writes of different tenants run at once. The lock also
makes event ids (the history table's) grow in commit order within a tenant, which the event feed
and webhooks rely on.

Nothing is cached in the process: the search indexes live in the database (BM25 terms per
record, an HNSW index over pgvector's ``vector``), so any number of application servers can
share one database (docs/postgres.md).
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from ..errors import StoreError
from ..records import (
    EntityLink,
    Filter,
    Job,
    Row,
    Scored,
    Vector,
    decode_cursor,
    encode_cursor,
    listing_fingerprint,
)
from ..types import ApiKey, Delivery, Entity, HistoryEntry, Scope, ScopeSummary, Webhook
from . import postgres_admin as admin
from . import postgres_facts as facts
from . import postgres_schema as schema
from . import postgres_search as search
from .base import decode_position, encode_position, timeline_fingerprint
from .postgres_rows import SELECT, get_rows, guarded, row_from, timeline_query, translate, where
from .postgres_schema import Conn
from .postgres_tx import PostgresTransaction

T = TypeVar("T")

_PAGE = 500
#: How long a write waits for another write of its tenant (as SQLite's busy timeout).
_LOCK_TIMEOUT = "30s"


class PostgresStore:
    """:class:`engramdb.backends.base.Store` on a PostgreSQL database with pgvector.

    Args:
        dsn: a libpq URL, ``postgresql://user:password@host:5432/database``.
        dim: the embedder's vector size (the ``vector`` column is made for it).
        pool_size: at most this many connections (one per concurrent call).
        pool_timeout: seconds a call waits for a free connection before a StoreError.

    Raises:
        StoreError: the server cannot be reached, or pgvector cannot be enabled.
        StoreVersionError: the database was written by a newer engramdb.
    """

    def __init__(
        self, dsn: str, *, dim: int, pool_size: int = 10, pool_timeout: float = 30.0
    ) -> None:
        self.url = redact(dsn)
        self.dim = dim
        self._closed = False
        self._close_lock = threading.Lock()
        #: Rows this store wrote per table, and the tables it analysed (schema.analyse_new).
        self.written: dict[str, int] = {}
        self.analysed: set[str] = set()
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                schema.migrate(conn, self.url, dim)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open {self.url}: {exc}") from exc
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            timeout=pool_timeout,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="engramdb",
        )
        try:
            self._pool.open(wait=True, timeout=max(pool_timeout, 1.0))
        except psycopg.Error as exc:
            self._pool.close()
            raise StoreError(f"cannot open {self.url}: {exc}") from exc

    # -- connections ---------------------------------------------------------------------------

    def _read(self, work: Callable[[Conn], T]) -> T:
        """Run a read on a pooled connection. When the server had dropped it (a restart, a
        failover), the pool's connections are checked and the read tried once more: reads are
        idempotent."""
        for attempt in (1, 2):
            with self._connection() as conn:
                try:
                    return work(conn)
                except psycopg.OperationalError as exc:
                    if attempt == 2 or not _dropped(conn, exc):
                        raise
            self._pool.check()  # the others in the pool are likely gone too: replace them
        raise AssertionError("unreachable")

    @contextmanager
    def _connection(self, begin: bool = False) -> Iterator[Conn]:
        """A pooled connection (in a transaction, with ``begin``). When the server had dropped it
        while it sat in the pool (a restart, a failover), the pool's connections are checked
        and another one taken: nothing was done on the first."""
        if self._closed:
            raise StoreError("the store is closed: open a new Memory")
        for attempt in (1, 2):
            try:
                conn = self._pool.getconn()
            except psycopg.Error as exc:  # a full pool, a server that does not answer
                raise translate(exc, "a call to the store") from exc
            try:
                if begin:
                    conn.execute("BEGIN")
                break
            except psycopg.Error as exc:
                self._pool.putconn(conn)
                if attempt == 2 or not _dropped(conn, exc):
                    raise translate(exc, "the start of a write") from exc
                self._pool.check()  # the others in the pool are likely gone too
        try:
            yield conn
        finally:
            # The pool rolls back what is left open and replaces a connection that broke.
            self._pool.putconn(conn)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        # Calls in flight finish on their connections; the pool closes each as it comes back.
        self._pool.close(timeout=60)

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """One unit of work on one connection; reads on other connections carry on."""
        with self._connection(begin=True) as conn:
            tx = PostgresTransaction(self, conn)
            try:
                yield tx
                tx.flush()
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, psycopg.Error):  # a call's own errors are translated already
                    raise translate(exc, "a write") from exc
                raise
            try:
                conn.execute("COMMIT")
            except psycopg.OperationalError as exc:
                raise StoreError(
                    "the connection to PostgreSQL was lost while committing a write: it may or "
                    f"may not have been kept (look before writing it again): {exc}"
                ) from exc
            except psycopg.Error as exc:
                _rollback(conn)
                raise translate(exc, "the commit of a write (nothing of it was kept)") from exc

    # -- meta ----------------------------------------------------------------------------------

    @guarded
    def get_meta(self, key: str) -> str | None:
        row = self._read(
            lambda c: c.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        )
        return None if row is None else str(row[0])

    # -- reads ---------------------------------------------------------------------------------

    @guarded
    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        return self._read(lambda c: get_rows(c, tenant, ids))

    @guarded
    def list(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        fingerprint = listing_fingerprint(scope, flt)
        after = 0 if cursor is None else decode_cursor(cursor, fingerprint)
        found = self._read(lambda c: _scope_row(c, scope))
        if found is None:
            return [], None
        cond, params = where(scope.tenant, found[0], flt)
        raw = self._read(
            lambda c: c.execute(
                f"{SELECT} WHERE {cond} AND m.rid > %s ORDER BY m.rid LIMIT %s",
                [*params, after, limit + 1],
            ).fetchall()
        )
        more = len(raw) > limit
        rows = [row_from(r) for r in raw[:limit]]
        # Positions are never reused (an identity column), so a cursor past a deleted record
        # still continues where it was.
        return rows, encode_cursor(fingerprint, int(raw[limit - 1][0])) if more else None

    @guarded
    def timeline(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        fingerprint = timeline_fingerprint(scope, flt)
        after = None if cursor is None else decode_position(cursor, fingerprint)

        def page(conn: Conn) -> builtins.list[Any]:
            found = _scope_row(conn, scope)
            if found is None:
                return []
            sql, params = timeline_query(scope.tenant, found[0], flt, after, limit)
            return conn.execute(sql, params).fetchall()

        raw = self._read(page)
        rows = [row_from(r) for r in raw[:limit]]
        if len(raw) <= limit:
            return rows, None
        last = raw[limit - 1]
        return rows, encode_position(fingerprint, float(last[13]), int(last[0]))

    def iter_rows(self, tenant: str, scope: Scope | None) -> Iterator[Row]:
        # Pages rather than one open cursor: a long read would hold a snapshot (and keep
        # VACUUM from removing what was deleted meanwhile) for the whole export.
        cond, params = "m.tenant = %s", [tenant]
        if scope is not None:
            cond += " AND s.user_id = %s AND s.agent_id = %s"
            params += [scope.user_id or "", scope.agent_id or ""]
        after = 0
        while batch := self._page(cond, params, after):
            after = batch[0]
            yield from batch[1]

    @guarded
    def _page(
        self, cond: str, params: builtins.list[Any], after: int
    ) -> tuple[int, builtins.list[Row]] | None:
        raw = self._read(
            lambda c: c.execute(
                f"{SELECT} WHERE {cond} AND m.rid > %s ORDER BY m.rid LIMIT %s",
                [*params, after, _PAGE],
            ).fetchall()
        )
        return (int(raw[-1][0]), [row_from(r) for r in raw]) if raw else None

    @guarded
    def history(self, tenant: str, memory_id: str) -> builtins.list[HistoryEntry]:
        return self._read(lambda c: admin.history(c, tenant, memory_id, 0, None))

    @guarded
    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, Vector]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT DISTINCT ON (embed_hash) embed_hash, embedding FROM vectors "
                "WHERE embed_hash = ANY(%s::text[])",
                (builtins.list(dict.fromkeys(embed_hashes)),),
            ).fetchall()
        )
        return {str(h): v.to_numpy() for h, v in rows}

    @guarded
    def jobs(self, tenant: str | None, limit: int, kind: str | None = None) -> builtins.list[Job]:
        sql = (
            "SELECT j.id, j.kind, m.id, j.tenant, j.attempts, j.last_error FROM jobs j "
            "JOIN memories m ON m.tenant = j.tenant AND m.rid = j.memory_rid WHERE true"
        )
        params: builtins.list[Any] = []
        if tenant is not None:
            sql, params = sql + " AND j.tenant = %s", [*params, tenant]
        if kind is not None:
            sql, params = sql + " AND j.kind = %s", [*params, kind]
        rows = self._read(
            lambda c: c.execute(sql + " ORDER BY j.id LIMIT %s", [*params, limit]).fetchall()
        )
        return [Job(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5]) for r in rows]

    # -- candidate search ----------------------------------------------------------------------

    @guarded
    def lexical(self, scope: Scope, query: str, limit: int, flt: Filter) -> Scored:
        def run(conn: Conn) -> Scored:
            found = _scope_row(conn, scope)
            if found is None:
                return []
            return search.lexical(conn, scope.tenant, found[0], found[1], query, limit, flt)

        return self._read(run)

    @guarded
    def lexical_exact(self, scope: Scope, query: str, limit: int, flt: Filter) -> Scored:
        """BM25 over every posting, never pruned: the reference :meth:`lexical` is measured
        against (benchmarks/scale.py)."""

        def run(conn: Conn) -> Scored:
            found = _scope_row(conn, scope)
            if found is None:
                return []
            return search.lexical_exact(conn, scope.tenant, found[0], query, limit, flt)

        return self._read(run)

    @guarded
    def dense(
        self, scope: Scope, query: Vector, limit: int, filters: Sequence[Filter]
    ) -> builtins.list[Scored]:
        def run(conn: Conn) -> builtins.list[Scored]:
            found = _scope_row(conn, scope)
            if found is None:
                return [[] for _ in filters]
            scope_id, docs = found
            return [
                search.dense(conn, scope.tenant, scope_id, docs, query, limit, flt)
                for flt in filters
            ]

        return self._read(run)

    # -- facts and entities --------------------------------------------------------------------

    @guarded
    def mentions(self, tenant: str, ids: Sequence[str]) -> dict[str, builtins.list[EntityLink]]:
        found: dict[str, builtins.list[EntityLink]] = {}
        for memory_id, link in self._read(lambda c: facts.mentions(c, tenant, ids)):
            found.setdefault(memory_id, []).append(link)
        return found

    @guarded
    def outdated(self, tenant: str, ids: Sequence[str], at: float) -> set[str]:
        return self._read(lambda c: facts.outdated(c, tenant, ids, at))

    @guarded
    def entities(self, scope: Scope, name: str | None = None) -> builtins.list[Entity]:
        def run(conn: Conn) -> builtins.list[Entity]:
            found = _scope_row(conn, scope)
            return [] if found is None else facts.entities(conn, scope.tenant, found[0], name)

        return self._read(run)

    # -- what a server keeps beside the memories ------------------------------------------------

    @guarded
    def scopes(self, tenant: str) -> builtins.list[ScopeSummary]:
        return self._read(lambda c: admin.scopes(c, tenant))

    @guarded
    def events(self, tenant: str, after: int, limit: int) -> builtins.list[HistoryEntry]:
        return self._read(lambda c: admin.history(c, tenant, None, after, limit))

    @guarded
    def api_key(self, digest: str) -> ApiKey | None:
        return self._read(lambda c: admin.key_by_hash(c, digest))

    @guarded
    def api_keys(self, tenant: str | None) -> builtins.list[ApiKey]:
        return self._read(lambda c: admin.keys(c, tenant))

    @guarded
    def api_key_digests(self, tenant: str) -> builtins.list[tuple[ApiKey, str]]:
        return self._read(lambda c: admin.key_digests(c, tenant))

    @guarded
    def tenants(self) -> builtins.list[str]:
        return self._read(admin.tenants)

    @guarded
    def vectors(self, tenant: str, ids: Sequence[str]) -> dict[str, tuple[str, Vector]]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT m.id, v.embed_hash, v.embedding FROM memories m JOIN vectors v "
                "ON v.tenant = m.tenant AND v.rid = m.rid "
                "WHERE m.tenant = %s AND m.id = ANY(%s::text[])",
                (tenant, builtins.list(ids)),
            ).fetchall()
        )
        return {str(i): (str(h), v.to_numpy()) for i, h, v in rows}

    @guarded
    def webhooks(self, tenant: str | None) -> builtins.list[tuple[Webhook, str]]:
        return self._read(lambda c: admin.webhooks(c, tenant))

    @guarded
    def deliveries(self, tenant: str, hook_id: str, limit: int) -> builtins.list[Delivery]:
        return self._read(lambda c: admin.deliveries(c, tenant, hook_id, limit))

    @guarded
    def stats(self, tenant: str) -> dict[str, Any]:
        return self._read(lambda c: _stats(c, tenant, self.url))


# -- helpers shared with the transaction ---------------------------------------------------------


#: What the server says as it ends a session (the connection is gone after it).
_ENDED = (
    psycopg.errors.AdminShutdown,
    psycopg.errors.CrashShutdown,
    psycopg.errors.IdleSessionTimeout,
)


def _dropped(conn: Conn, exc: psycopg.Error) -> bool:
    """Whether an error means the connection was gone before the statement ran."""
    return conn.broken or isinstance(exc, _ENDED)


def _rollback(conn: Conn) -> None:
    # On a connection that broke there is nothing left to roll back, and saying so must not
    # hide the error that ended the write.
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _configure(conn: Conn) -> None:
    """Every pooled connection: pgvector's types, and a bound on waiting for a lock."""
    register_vector(conn)
    conn.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT}'")


def _scope_row(conn: Conn, scope: Scope) -> tuple[int, int] | None:
    """A scope's id and how many records it holds, or None when it has none yet."""
    row = conn.execute(
        "SELECT id, docs FROM scopes WHERE tenant = %s AND user_id = %s AND agent_id = %s",
        (scope.tenant, scope.user_id or "", scope.agent_id or ""),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _stats(conn: Conn, tenant: str, url: str) -> dict[str, Any]:
    kinds = {
        str(k): int(n)
        for k, n in conn.execute(
            "SELECT kind, count(*) FROM memories WHERE tenant = %s GROUP BY kind", (tenant,)
        )
    }
    one = conn.execute(
        "SELECT (SELECT count(*) FROM scopes WHERE tenant = %s), "
        "(SELECT count(*) FROM jobs WHERE tenant = %s), "
        "(SELECT count(*) FROM jobs WHERE tenant = %s AND attempts > 0), "
        "pg_database_size(current_database())",
        (tenant, tenant, tenant),
    ).fetchone()
    scopes, pending, failed, size = (int(v) for v in one or (0, 0, 0, 0))
    return {
        "path": url,
        "memories": sum(kinds.values()),
        "by_kind": kinds,
        "scopes": scopes,
        "jobs_pending": pending,
        "jobs_failed": failed,
        "bytes": size,
        # Deleted rows stay in dead tuples until VACUUM; autovacuum takes them (docs/postgres.md).
        "scrub_pending": False,
        "schema_version": schema.current_version(conn),
    }


def redact(dsn: str) -> str:
    """The URL without its password (it is shown in errors and stats)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
