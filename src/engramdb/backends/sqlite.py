"""The embedded store: one SQLite file, WAL, vectors and jobs in the database.

One write lane: a single writer connection that one transaction at a time holds (a lock, the same
guarantee as datasette's write thread fed by a queue, without handing work to another thread).
Readers never take it: each reading thread has its own connection, and WAL lets them read while
a write is in progress. The search indexes are derived and in memory, one pair per scope
(:class:`VectorSet`, :class:`LexicalSet`), behind their own short locks: loaded from the database
on first use, kept in step with this process's commits, and reloaded when another process changed
the scope (every write bumps the scope's version).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from ..errors import EngramError, IdConflict, InvalidInput, MemoryNotFound, StoreError
from ..records import (
    KIND_CODES,
    EntityLink,
    FactInfo,
    Filter,
    Job,
    Keys,
    Row,
    Scored,
    Vector,
    decode_cursor,
    encode_cursor,
    listing_fingerprint,
)
from ..types import ApiKey, Delivery, Entity, HistoryEntry, Scope, ScopeSummary, Webhook
from . import sqlite_admin, sqlite_facts, sqlite_schema
from .base import decode_position, encode_position, timeline_fingerprint
from .lexical import LexicalSet, Terms, encode_terms, key_terms
from .positions import Window
from .sqlite_cache import IndexFiles, store_bytes
from .sqlite_facts import FACT_COLUMNS, FACT_JOIN, FACT_WIDTH, fact_from
from .sqlite_load import load_scope
from .sqlite_matches import Matches
from .vectors import VectorSet

P = ParamSpec("P")
T = TypeVar("T")

_COLUMNS = (
    "m.rid, m.tenant, m.id, s.user_id, s.agent_id, m.kind, m.session_id, m.role, m.name, m.text, "
    "m.key_own, m.key_context_name, m.key_context, m.occurred_at, m.tz_offset, m.recorded_at, "
    "m.updated_at, m.metadata, m.time_mentions, m.dedupe_key, m.scope_id, m.archived_at, "
    + FACT_COLUMNS
)
# CROSS JOIN fixes the join order: SQLite otherwise starts from scopes and scans a whole scope
# to find a handful of ids (11 ms instead of 0.2 ms at 10k memories).
_FROM = f"memories m CROSS JOIN scopes s ON s.id = m.scope_id {FACT_JOIN}"
_SELECT = f"SELECT {_COLUMNS} FROM {_FROM}"
_CHUNK = 500
#: How long a delete waits for other connections' reads to end before it leaves the scrub of the
#: write-ahead log to the next write (or close).
_SCRUB_WAIT_MS = 250
#: How many filters' matching row ids are kept (each at most 8 bytes per memory of its scope).
_MATCHES_KEPT = 16


def _guarded(fn: Callable[P, T]) -> Callable[P, T]:
    """No sqlite3 exception leaves the backend: it becomes a StoreError naming the cause (or an
    InvalidInput, for a value SQLite cannot bind)."""

    @wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0] if args and isinstance(args[0], SQLiteStore) else None
        try:
            if store is None:
                return fn(*args, **kwargs)
            with store._using():
                return fn(*args, **kwargs)
        except EngramError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"the store failed during {fn.__name__}(): {exc}") from exc
        except (OverflowError, UnicodeEncodeError) as exc:  # a value SQLite cannot bind
            raise InvalidInput(
                f"the store cannot hold a value given to {fn.__name__}(): {exc}"
            ) from exc

    return call


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


#: A record's place in the in-memory indexes: (id, rid, event time, kind code).
_Place = tuple[str, int, float, int]


class _Op:
    """A change to the in-memory indexes, applied once its transaction has committed:
    ``keys`` (re)indexes a document lexically under ``terms``, ``vector`` adds its vector,
    ``unvector`` drops only its vector, ``delete`` drops it from both."""

    __slots__ = ("ident", "kind", "place", "terms", "vector")

    def __init__(
        self,
        kind: str,
        ident: str,
        place: _Place | None = None,
        *,
        terms: Terms | None = None,
        vector: Vector | None = None,
    ) -> None:
        self.kind, self.ident, self.place, self.terms, self.vector = (
            kind, ident, place, terms, vector,
        )  # fmt: skip


class SQLiteStore:
    """:class:`engramdb.backends.base.Store` on one SQLite file.

    ``":memory:"`` is a throwaway store in a private temporary folder, removed on close (readers
    need their own connections, which one in-memory database cannot give them).
    """

    def __init__(self, path: str | Path, *, dim: int, synchronous: str = "full") -> None:
        self._synchronous = synchronous.upper()
        if self._synchronous not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise StoreError(f"synchronous={synchronous!r}: use 'full' or 'normal'")
        self._tempdir: str | None = None
        if str(path) == ":memory:":
            self._tempdir = tempfile.mkdtemp(prefix="engramdb-")
            path = Path(self._tempdir) / "memory.db"
        self.path = str(path)
        self.url = f"sqlite:///{self.path}" if self._tempdir is None else "sqlite://:memory:"
        self.dim = dim
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lane = threading.Lock()
        # The cache of indexes has a short lock; each scope's indexes have their own, which a
        # commit holds while it brings them up to date: readers of other scopes never wait.
        self._cache_lock = threading.Lock()
        self._scope_locks: dict[int, threading.Lock] = {}
        # Reads in flight: close() waits for them instead of closing a connection in use.
        self._active = 0
        self._idle = threading.Condition()
        self._vsets: dict[int, VectorSet] = {}
        self._lsets: dict[int, LexicalSet] = {}
        self._matches = Matches(_MATCHES_KEPT)
        self._files = IndexFiles(self.path, self._publish)  # big scopes' indexes on disk
        self._local = threading.local()
        self._readers: builtins.list[sqlite3.Connection] = []
        self._closed = False
        self._scrub_pending = False
        self._writer = self._connect()
        self._inode = os.stat(self.path).st_ino
        try:
            sqlite_schema.migrate(self._writer, self.path)
            sqlite_schema.ensure_analysis(self._writer)
        except sqlite3.DatabaseError as exc:
            self._writer.close()
            raise StoreError(f"{self.path} is not an engramdb store: {exc}") from exc
        except BaseException:
            self._writer.close()
            raise

    # -- connections ---------------------------------------------------------------------------

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        target = self.path if create else Path(self.path).resolve().as_uri() + "?mode=rw"
        try:
            conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=30.0, uri=not create
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            _wal(conn)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # deleted text must not linger in free pages
            conn.execute("PRAGMA busy_timeout = 30000")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path} is not an engramdb store: {exc}") from exc
        return conn

    @contextmanager
    def _using(self) -> Iterator[None]:
        """A read in flight; a scrub left pending by an earlier delete is retried first."""
        with self._idle:
            if self._closed:
                raise StoreError("the store is closed: open a new Memory")
            self._active += 1
        try:
            if self._scrub_pending:
                self._try_scrub()
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _try_scrub(self) -> None:
        if self._lane.acquire(blocking=False):
            try:
                if not self._closed:
                    self._scrub(self._writer)
            finally:
                self._lane.release()

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed: open a new Memory")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # mode=rw: a reader never creates an empty database where the store was removed.
            conn = self._connect(create=False)
            self._local.conn = conn
            with self._cache_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that must agree with each other (one read transaction)."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        self._files.flush()  # before the lane: saving a file takes it
        with self._lane:
            with self._idle:
                if self._closed:
                    return
                self._closed = True
                # Reads already running finish on their connections; new ones are refused.
                self._idle.wait_for(lambda: self._active == 0, timeout=60)
            with self._cache_lock:
                for conn in self._readers:
                    conn.close()
                self._vsets.clear()
                self._lsets.clear()
                self._matches.clear()
            self._files.close()
            if self._scrub_pending:
                self._scrub(self._writer)
            self._writer.close()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)

    # -- the write lane ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SQLiteTransaction]:
        """One unit of work on the writer connection; readers carry on meanwhile."""
        with self._lane:
            if self._closed:
                raise StoreError("the store is closed: open a new Memory")
            conn = self._writer
            self._check_file()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            tx = SQLiteTransaction(self, conn)
            try:
                yield tx
                versions = tx.bump_versions()
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"the store failed during a write: {exc}") from exc
                raise
            self._commit(conn, tx, versions)
            if tx.purged or self._scrub_pending:
                self._scrub(conn)

    def _check_file(self) -> None:
        """Refuse to write into a store whose file was removed or replaced underneath: the
        writes would go to an unlinked file and be lost at close."""
        try:
            same = os.stat(self.path).st_ino == self._inode
        except OSError:
            same = False
        if not same:
            raise StoreError(
                f"{self.path} was removed or replaced while open: nothing was written; "
                "close this Memory and open the store again"
            )

    def _scope_lock(self, scope_id: int) -> threading.Lock:
        with self._cache_lock:
            return self._scope_locks.setdefault(scope_id, threading.Lock())

    def _commit(
        self, conn: sqlite3.Connection, tx: SQLiteTransaction, versions: dict[int, int]
    ) -> None:
        # The touched scopes' locks span the commit: a reader that sees the new version in the
        # database then finds the in-memory indexes already at it, instead of reloading them.
        locks = [self._scope_lock(scope_id) for scope_id in sorted(versions)]
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StoreError(f"the store failed to commit: {exc}") from exc
            if tx.reset:
                with self._cache_lock:
                    self._vsets.clear()
                    self._lsets.clear()
                    self._matches.clear()
                self._files.drop()
            for scope_id, version in versions.items():
                ops = tx.ops.get(scope_id, [])
                self._apply(scope_id, version, ops, scope_id in tx.created)
                changes = [(op.kind, None if op.place is None else op.place[1]) for op in ops]
                self._files.after_commit(scope_id, changes, self._vsets.get(scope_id))
                written = [
                    op.place[1]
                    for op in ops
                    if op.kind in ("keys", "touch") and op.place is not None
                ]
                self._matches.carry(conn, scope_id, version, written)

    def _apply(self, scope_id: int, version: int, ops: builtins.list[_Op], created: bool) -> None:
        if created and scope_id not in self._vsets:
            self._vsets[scope_id] = self._files.new_vectors(scope_id, self.dim, version - 1)
            self._lsets.setdefault(scope_id, LexicalSet(version - 1))
        vset, lset = self._vsets.get(scope_id), self._lsets.get(scope_id)
        if vset is not None and vset.version == version - 1:
            for op in ops:
                if op.kind == "vector" and op.place is not None and op.vector is not None:
                    vset.add([op.place], op.vector[None, :])
                elif op.kind in ("unvector", "delete"):
                    vset.remove([op.ident])
            vset.version = version
        else:
            self._vsets.pop(scope_id, None)
        if lset is not None and lset.version == version - 1:
            for op in ops:
                if op.kind == "keys" and op.place is not None and op.terms is not None:
                    lset.add([(*op.place, op.terms)])
                elif op.kind == "delete":
                    lset.remove([op.ident])
            lset.version = version
        else:
            self._lsets.pop(scope_id, None)

    def _scrub(self, conn: sqlite3.Connection) -> None:
        """Copy the log into the file and truncate it, so old page images of deleted rows are
        gone from the files too. A reader that began before the delete may still need them; then
        SQLite keeps them, and the scrub is retried after the next write and on close."""
        conn.execute(f"PRAGMA busy_timeout = {_SCRUB_WAIT_MS}")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError:
            busy = 1
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")
        self._scrub_pending = bool(busy)

    # -- meta ----------------------------------------------------------------------------------

    @_guarded
    def get_meta(self, key: str) -> str | None:
        row = self._reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- reads ---------------------------------------------------------------------------------

    @_guarded
    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        return _get(self._reader(), tenant, ids)

    @_guarded
    def list(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        fingerprint = listing_fingerprint(scope, flt)
        after = 0 if cursor is None else decode_cursor(cursor, fingerprint)
        conn = self._reader()
        scope_id = _scope_id(conn, scope)
        if scope_id is None:
            return [], None
        where, params = _where(scope_id, flt)
        rows, last = _page_of(
            conn, f"{_SELECT} WHERE {where} AND m.rid > ? ORDER BY m.rid LIMIT ?",
            [*params, after, limit + 1], limit,
        )  # fmt: skip
        # The position comes from the same read: a delete of that row meanwhile cannot end the
        # listing early, and row ids are never reused (AUTOINCREMENT), so nothing is skipped.
        return rows, None if last is None else encode_cursor(fingerprint, int(last[0]))

    @_guarded
    def timeline(
        self, scope: Scope, flt: Filter, limit: int, cursor: str | None
    ) -> tuple[builtins.list[Row], str | None]:
        fingerprint = timeline_fingerprint(scope, flt)
        after = None if cursor is None else decode_position(cursor, fingerprint)
        conn = self._reader()
        scope_id = _scope_id(conn, scope)
        if scope_id is None:
            return [], None
        rows, last = _page_of(conn, *timeline_query(scope_id, flt, after, limit), limit)
        if last is None:
            return rows, None
        return rows, encode_position(fingerprint, float(last[13]), int(last[0]))

    def iter_rows(self, tenant: str, scope: Scope | None) -> Iterator[Row]:
        # Page by row id rather than holding one cursor open: a long read would keep the log
        # (and the page images of anything deleted meanwhile) from being checkpointed.
        where, params = "m.tenant = ?", [tenant]
        if scope is not None:
            where += " AND s.user_id = ? AND s.agent_id = ?"
            params += [scope.user_id or "", scope.agent_id or ""]
        after = 0
        while batch := self._page(where, params, after):
            after = batch[0]
            yield from batch[1]

    @_guarded
    def _page(
        self, where: str, params: builtins.list[Any], after: int
    ) -> tuple[int, builtins.list[Row]] | None:
        conn = self._reader()
        raw = conn.execute(
            f"{_SELECT} WHERE {where} AND m.rid > ? ORDER BY m.rid LIMIT ?",
            [*params, after, _CHUNK],
        ).fetchall()
        if not raw:
            return None
        rows = [_row_from(r) for r in raw]
        _attach_sources(conn, rows)
        return int(raw[-1][0]), rows

    @_guarded
    def history(self, tenant: str, memory_id: str) -> builtins.list[HistoryEntry]:
        return [
            HistoryEntry(
                id=int(r[0]),
                memory_id=memory_id,
                event=str(r[1]),
                before=json.loads(r[2]) if r[2] else None,
                after=json.loads(r[3]) if r[3] else None,
                actor=str(r[4]),
                at=datetime.fromtimestamp(float(r[5]), tz=UTC),
            )
            for r in self._reader().execute(
                "SELECT id, event, before, after, actor, at FROM history "
                "WHERE tenant = ? AND memory_id = ? ORDER BY id",
                (tenant, memory_id),
            )
        ]

    @_guarded
    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, Vector]:
        out: dict[str, Vector] = {}
        conn = self._reader()
        unique = builtins.list(dict.fromkeys(embed_hashes))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for ehash, blob in conn.execute(
                f"SELECT embed_hash, vec FROM vectors WHERE embed_hash IN ({marks})", chunk
            ):
                out[str(ehash)] = np.frombuffer(blob, dtype=np.float32)
        return out

    @_guarded
    def jobs(self, tenant: str | None, limit: int, kind: str | None = None) -> builtins.list[Job]:
        sql = (
            "SELECT j.id, j.kind, m.id, j.tenant, j.attempts, j.last_error FROM jobs j "
            "JOIN memories m ON m.rid = j.memory_rid WHERE true"
        )
        params: builtins.list[Any] = []
        if tenant is not None:
            sql += " AND j.tenant = ?"
            params.append(tenant)
        if kind is not None:
            sql += " AND j.kind = ?"
            params.append(kind)
        return [
            Job(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5])
            for r in self._reader().execute(sql + " ORDER BY j.id LIMIT ?", [*params, limit])
        ]

    # -- candidate search ----------------------------------------------------------------------

    @_guarded
    def lexical(self, scope: Scope, query: str, limit: int, flt: Filter) -> Scored:
        conn = self._reader()
        scope_id = _scope_id(conn, scope)
        if scope_id is None:
            return []
        lset = self._lexical_set(scope_id)
        return lset.search(query, limit, self._window(conn, scope_id, flt))

    @_guarded
    def dense(
        self, scope: Scope, query: Vector, limit: int, filters: Sequence[Filter]
    ) -> builtins.list[Scored]:
        conn = self._reader()
        scope_id = _scope_id(conn, scope)
        if scope_id is None:
            return [[] for _ in filters]
        vset = self._vector_set(scope_id)
        return vset.search_many(query, limit, [self._window(conn, scope_id, f) for f in filters])

    def _window(self, conn: sqlite3.Connection, scope_id: int, flt: Filter) -> Window:
        if not flt.needs_rows():
            return Window.of(flt)
        return Window.of(flt, self._matching(scope_id, flt))

    def _matching(self, scope_id: int, flt: Filter) -> npt.NDArray[np.int64]:
        """Row ids of the scope with this filter's session, metadata and fact validity, at any
        time and of any kind (the masks test those), from the cache of the scope's current
        version."""
        rows_only = Filter(
            session_id=flt.session_id,
            metadata=flt.metadata,
            current_facts=flt.current_facts,
            facts_valid_at=flt.facts_valid_at,
            archived=flt.archived,
        )
        where, params = _where(scope_id, rows_only)
        with self._snapshot() as conn:
            return self._matches.get(conn, scope_id, self._version(conn, scope_id), where, params)

    def _version(self, conn: sqlite3.Connection, scope_id: int) -> int:
        row = conn.execute("SELECT version FROM scopes WHERE id = ?", (scope_id,)).fetchone()
        return -1 if row is None else int(row[0])

    def _cached(self, sets: dict[int, Any], scope_id: int) -> Any:
        version = self._version(self._reader(), scope_id)
        with self._scope_lock(scope_id):
            found = sets.get(scope_id)
        # A newer set is fine too: it was brought up to date by a commit of this process.
        return found if found is not None and found.version >= version else None

    def _vector_set(self, scope_id: int) -> VectorSet:
        vset: VectorSet | None = self._cached(self._vsets, scope_id)
        return vset if vset is not None else self._load(scope_id)[0]

    def _lexical_set(self, scope_id: int) -> LexicalSet:
        lset: LexicalSet | None = self._cached(self._lsets, scope_id)
        return lset if lset is not None else self._load(scope_id)[1]

    def _load(self, scope_id: int) -> tuple[VectorSet, LexicalSet]:
        with self._snapshot() as conn:
            version = self._version(conn, scope_id)
            vset, lset = load_scope(conn, scope_id, version, self.dim, self._files)
        installed = self._install(self._vsets, scope_id, vset)
        return installed, self._install(self._lsets, scope_id, lset)

    def _install(self, sets: dict[int, Any], scope_id: int, built: Any) -> Any:
        with self._scope_lock(scope_id):
            current = sets.get(scope_id)
            if current is not None and current.version >= built.version:
                return current
            sets[scope_id] = built
            return built

    def _publish(
        self, scope_id: int, is_current: Callable[[int], bool], move: Callable[[], None]
    ) -> bool:
        """Put an index file in place if ``is_current(the scope's version)``, holding the write
        lock of every process: no delete can commit between the check and the move."""
        with self._lane:
            if self._closed:
                return False
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                return False  # busy: the file is written again next time
            try:
                current = is_current(self._version(conn, scope_id))
                if current:
                    move()
            finally:
                _rollback(conn)
            return current

    # -- stats ---------------------------------------------------------------------------------

    @_guarded
    def mentions(self, tenant: str, ids: Sequence[str]) -> dict[str, builtins.list[EntityLink]]:
        conn = self._reader()
        found: dict[str, builtins.list[EntityLink]] = {}
        unique = builtins.list(dict.fromkeys(ids))
        for start in range(0, len(unique), _CHUNK):
            for memory_id, link in sqlite_facts.mentions(
                conn, tenant, unique[start : start + _CHUNK]
            ):
                found.setdefault(memory_id, []).append(link)
        return found

    @_guarded
    def outdated(self, tenant: str, ids: Sequence[str], at: float) -> set[str]:
        conn = self._reader()
        found: set[str] = set()
        unique = builtins.list(dict.fromkeys(ids))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            found |= sqlite_facts.outdated(conn, tenant, chunk, at)
        return found

    @_guarded
    def entities(self, scope: Scope, name: str | None = None) -> builtins.list[Entity]:
        with self._snapshot() as conn:
            scope_id = _scope_id(conn, scope)
            return [] if scope_id is None else sqlite_facts.entities(conn, scope_id, name)

    @_guarded
    def stats(self, tenant: str) -> dict[str, Any]:
        conn = self._reader()
        kinds = dict(
            conn.execute(
                "SELECT kind, COUNT(*) FROM memories WHERE tenant = ? GROUP BY kind", (tenant,)
            ).fetchall()
        )
        scopes = conn.execute("SELECT COUNT(*) FROM scopes WHERE tenant = ?", (tenant,)).fetchone()
        jobs = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(attempts > 0), 0) FROM jobs WHERE tenant = ?", (tenant,)
        ).fetchone()
        size = store_bytes(self.path)
        return {
            "path": self.path if self._tempdir is None else ":memory:",
            "memories": sum(kinds.values()),
            "by_kind": kinds,
            "scopes": int(scopes[0]),
            "jobs_pending": int(jobs[0]),
            "jobs_failed": int(jobs[1]),
            "bytes": size,
            "scrub_pending": self._scrub_pending,
            # Scopes whose HNSW index is being built (searches there are exact meanwhile).
            "indexes_building": sum(v.building for v in builtins.list(self._vsets.values())),
            "schema_version": sqlite_schema.current_version(conn),
        }

    # -- what a server keeps beside the memories ------------------------------------------------

    @_guarded
    def scopes(self, tenant: str) -> builtins.list[ScopeSummary]:
        with self._snapshot() as conn:
            return sqlite_admin.scopes(conn, tenant)

    @_guarded
    def events(self, tenant: str, after: int, limit: int) -> builtins.list[HistoryEntry]:
        return sqlite_admin.events(self._reader(), tenant, after, limit)

    @_guarded
    def api_key(self, digest: str) -> ApiKey | None:
        return sqlite_admin.key_by_hash(self._reader(), digest)

    @_guarded
    def api_keys(self, tenant: str | None) -> builtins.list[ApiKey]:
        return sqlite_admin.keys(self._reader(), tenant)

    @_guarded
    def api_key_digests(self, tenant: str) -> builtins.list[tuple[ApiKey, str]]:
        return sqlite_admin.key_digests(self._reader(), tenant)

    @_guarded
    def tenants(self) -> builtins.list[str]:
        conn = self._reader()
        found = conn.execute(
            "SELECT tenant FROM scopes UNION SELECT tenant FROM api_keys "
            "UNION SELECT tenant FROM webhooks UNION SELECT tenant FROM history ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in found]

    @_guarded
    def vectors(self, tenant: str, ids: Sequence[str]) -> dict[str, tuple[str, Vector]]:
        out: dict[str, tuple[str, Vector]] = {}
        conn = self._reader()
        for start in range(0, len(ids), _CHUNK):
            chunk = builtins.list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            for ident, ehash, blob in conn.execute(
                f"SELECT m.id, v.embed_hash, v.vec FROM memories m JOIN vectors v "
                f"ON v.rid = m.rid WHERE m.tenant = ? AND m.id IN ({marks})",
                [tenant, *chunk],
            ):
                out[str(ident)] = (str(ehash), np.frombuffer(blob, dtype=np.float32))
        return out

    @_guarded
    def webhooks(self, tenant: str | None) -> builtins.list[tuple[Webhook, str]]:
        return sqlite_admin.webhooks(self._reader(), tenant)

    @_guarded
    def deliveries(self, tenant: str, hook_id: str, limit: int) -> builtins.list[Delivery]:
        return sqlite_admin.deliveries(self._reader(), tenant, hook_id, limit)


class SQLiteTransaction:
    """:class:`engramdb.backends.base.Transaction` on the writer connection."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self.now = time.time()
        self.ops: dict[int, builtins.list[_Op]] = {}
        self.created: set[int] = set()
        self.purged = False
        self.reset = False

    def _op(self, scope_id: int, op: _Op) -> None:
        self.ops.setdefault(scope_id, []).append(op)

    def bump_versions(self) -> dict[int, int]:
        versions = {}
        for scope_id in self.ops:
            self._conn.execute("UPDATE scopes SET version = version + 1 WHERE id = ?", (scope_id,))
            versions[scope_id] = self._store._version(self._conn, scope_id)
        return versions

    def _scope_id(self, scope: Scope) -> int:
        found = _scope_id(self._conn, scope)
        if found is not None:
            return found
        cur = self._conn.execute(
            "INSERT INTO scopes (tenant, user_id, agent_id, created_at) VALUES (?, ?, ?, ?)",
            (scope.tenant, scope.user_id or "", scope.agent_id or "", self.now),
        )
        scope_id = int(cur.lastrowid or 0)
        self.created.add(scope_id)
        return scope_id

    # -- records -------------------------------------------------------------------------------

    @_guarded
    def insert(
        self, rows: Sequence[Row], actor: str, *, extract: bool = False
    ) -> builtins.list[tuple[str, bool]]:
        out: builtins.list[tuple[str, bool]] = []
        for row in rows:
            scope_id = self._scope_id(row.scope)
            existing = self._existing(scope_id, row)
            if existing is not None:
                out.append((existing, False))
                continue
            rid = self._insert(scope_id, row, actor)
            if extract and row.kind == "message":
                self._queue(row.scope.tenant, rid, "extract")
            out.append((row.id, True))
        return out

    def _existing(self, scope_id: int, row: Row) -> str | None:
        same_id = _get(self._conn, row.scope.tenant, [row.id])
        if same_id:
            stored = same_id[0]
            if stored.scope != row.scope:
                raise IdConflict(row.id, "a memory of another user or agent")
            if (stored.text, stored.role, stored.name) != (row.text, row.role, row.name):
                raise IdConflict(row.id, "a memory with other content")
            return stored.id
        if row.dedupe_key is None:
            return None
        found = self._conn.execute(
            "SELECT id FROM memories WHERE scope_id = ? AND dedupe_key = ?",
            (scope_id, row.dedupe_key),
        ).fetchone()
        return None if found is None else str(found[0])

    def _insert(self, scope_id: int, row: Row, actor: str) -> int:
        cur = self._conn.execute(
            "INSERT INTO memories (tenant, id, scope_id, kind, session_id, role, name, text, "
            "key_own, key_context_name, key_context, occurred_at, tz_offset, recorded_at, "
            "updated_at, metadata, time_mentions, dedupe_key, archived_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.scope.tenant,
                row.id,
                scope_id,
                row.kind,
                row.session_id or "",
                row.role,
                row.name,
                row.text,
                row.keys.own,
                row.keys.context_name,
                row.keys.context_text,
                row.occurred_at,
                row.tz_offset,
                row.recorded_at,
                row.updated_at,
                _json(row.metadata),
                _json(row.time_mentions),
                row.dedupe_key,
                row.archived_at,
            ),
        )
        rid = int(cur.lastrowid or 0)
        for source_id in row.source_ids:
            self._conn.execute(
                "INSERT OR IGNORE INTO sources (memory_rid, source_rid) "
                "SELECT ?, rid FROM memories WHERE tenant = ? AND id = ?",
                (rid, row.scope.tenant, source_id),
            )
        if row.fact is not None:
            sqlite_facts.insert_fact(self._conn, rid, scope_id, row.fact)
        if row.mentions:
            self.link_entities(row.scope, [row.id], row.mentions)
        self._history(row.id, row.scope.tenant, "create", None, _snapshot(row), actor)
        self._queue(row.scope.tenant, rid)
        self._index_keys(scope_id, _place(row, rid), row.keys)
        return rid

    def _index_keys(self, scope_id: int, place: _Place, keys: Keys) -> None:
        """Analyse the keys once: their terms are stored with the record (a cold start reads them
        instead of stemming again) and go into the loaded index after the commit."""
        terms = key_terms(keys)
        self._conn.execute(
            "INSERT INTO lexical_terms (rid, terms) VALUES (?, ?) "
            "ON CONFLICT (rid) DO UPDATE SET terms = excluded.terms",
            (place[1], encode_terms(terms)),
        )
        self._op(scope_id, _Op("keys", place[0], place, terms=terms))

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
            "INSERT INTO history (memory_id, tenant, event, before, after, actor, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                memory_id,
                tenant,
                event,
                None if before is None else _json(before),
                None if after is None else _json(after),
                actor,
                self.now,
            ),
        )

    def _queue(self, tenant: str, rid: int, kind: str = "embed") -> None:
        self._conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (memory_rid, kind) DO UPDATE SET "
            "attempts = 0, last_error = NULL, updated_at = excluded.updated_at",
            (tenant, kind, rid, self.now, self.now),
        )

    @_guarded
    def get(self, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
        return _get(self._conn, tenant, ids)

    @_guarded
    def previous(self, scope: Scope, session_id: str | None, at: float) -> Row | None:
        scope_id = _scope_id(self._conn, scope)
        if scope_id is None:
            return None
        rows = _rows(
            self._conn,
            f"{_SELECT} WHERE m.scope_id = ? AND m.session_id = ? AND m.kind = 'message' "
            "AND m.occurred_at <= ? ORDER BY m.occurred_at DESC, m.rid DESC LIMIT 1",
            [scope_id, session_id or "", at],
        )
        return rows[0] if rows else None

    @_guarded
    def neighbours(self, tenant: str, memory_id: str) -> tuple[Row | None, Row | None]:
        base = self._conn.execute(
            "SELECT scope_id, session_id, occurred_at, rid FROM memories "
            "WHERE tenant = ? AND id = ?",
            (tenant, memory_id),
        ).fetchone()
        if base is None:
            return None, None
        same = f"{_SELECT} WHERE m.scope_id = ? AND m.session_id = ? AND m.kind = 'message' AND "
        before = _rows(
            self._conn,
            same + "(m.occurred_at, m.rid) < (?, ?) ORDER BY m.occurred_at DESC, m.rid DESC "
            "LIMIT 1",
            builtins.list(base),
        )
        after = _rows(
            self._conn,
            same + "(m.occurred_at, m.rid) > (?, ?) ORDER BY m.occurred_at, m.rid LIMIT 1",
            builtins.list(base),
        )
        return (before[0] if before else None), (after[0] if after else None)

    @_guarded
    def update(self, row: Row, actor: str) -> None:
        found = self._conn.execute(
            f"{_SELECT} WHERE m.tenant = ? AND m.id = ?", (row.scope.tenant, row.id)
        ).fetchone()
        if found is None:
            raise StoreError(f"memory {row.id} vanished during update")
        before, rid, scope_id = _row_from(found), int(found[0]), int(found[20])
        self._conn.execute(
            "UPDATE memories SET text = ?, key_own = ?, key_context_name = ?, key_context = ?, "
            "metadata = ?, time_mentions = ?, updated_at = ?, occurred_at = ? WHERE rid = ?",
            (
                row.text,
                row.keys.own,
                row.keys.context_name,
                row.keys.context_text,
                _json(row.metadata),
                _json(row.time_mentions),
                row.updated_at,
                row.occurred_at,
                rid,
            ),
        )
        self._history(row.id, row.scope.tenant, "update", _snapshot(before), _snapshot(row), actor)
        self._index_keys(scope_id, _place(row, rid), row.keys)

    @_guarded
    def set_archived(self, tenant: str, memory_id: str, at: float | None, actor: str) -> bool:
        rows = _get(self._conn, tenant, [memory_id])
        if not rows:
            raise MemoryNotFound(memory_id)
        if (rows[0].archived_at is None) == (at is None):
            return False  # already so: no change, no history
        self._conn.execute(
            "UPDATE memories SET archived_at = ? WHERE tenant = ? AND id = ?",
            (at, tenant, memory_id),
        )
        event = "archive" if at is not None else "unarchive"
        self._history(memory_id, tenant, event, None, _snapshot(rows[0]), actor)
        return True

    @_guarded
    def set_keys(self, tenant: str, memory_id: str, keys: Keys) -> None:
        rows = _get(self._conn, tenant, [memory_id])
        if not rows:
            return
        row = rows[0]
        row.keys = keys
        found = self._conn.execute(
            "SELECT rid, scope_id FROM memories WHERE tenant = ? AND id = ?", (tenant, memory_id)
        ).fetchone()
        rid, scope_id = int(found[0]), int(found[1])
        self._conn.execute(
            "UPDATE memories SET key_own = ?, key_context_name = ?, key_context = ? WHERE rid = ?",
            (keys.own, keys.context_name, keys.context_text, rid),
        )
        self._index_keys(scope_id, _place(row, rid), keys)
        self.stale(tenant, [memory_id])

    @_guarded
    def stale(self, tenant: str, ids: Sequence[str]) -> None:
        for memory_id in ids:
            found = self._conn.execute(
                "SELECT rid, scope_id FROM memories WHERE tenant = ? AND id = ?",
                (tenant, memory_id),
            ).fetchone()
            if found is None:
                continue
            self._conn.execute("DELETE FROM vectors WHERE rid = ?", (found[0],))
            self._queue(tenant, int(found[0]))
            self._op(int(found[1]), _Op("unvector", memory_id))
            self.purged = True  # the old vector was derived from text that may be gone

    @_guarded
    def delete(self, tenant: str, ids: Sequence[str], actor: str) -> int:
        found = []
        for start in range(0, len(ids), _CHUNK):
            chunk = builtins.list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            found += self._conn.execute(
                f"SELECT rid, scope_id, id FROM memories WHERE tenant = ? AND id IN ({marks})",
                [tenant, *chunk],
            ).fetchall()
        self._purge(tenant, [(int(r[0]), int(r[1]), str(r[2])) for r in found], actor)
        return len(found)

    @_guarded
    def delete_scope(self, scope: Scope, actor: str) -> builtins.list[str]:
        scope_id = _scope_id(self._conn, scope)
        if scope_id is None:
            return []
        found = self._conn.execute(
            "SELECT rid, id FROM memories WHERE scope_id = ?", (scope_id,)
        ).fetchall()
        self._purge(scope.tenant, [(int(r[0]), scope_id, str(r[1])) for r in found], actor)
        return [str(r[1]) for r in found]

    def _purge(self, tenant: str, rows: builtins.list[tuple[int, int, str]], actor: str) -> None:
        if not rows:
            return
        # Vectors, jobs and source links go with the row (ON DELETE CASCADE).
        self._conn.executemany("DELETE FROM memories WHERE rid = ?", [(r[0],) for r in rows])
        # GDPR: the history keeps that a change happened, never what the deleted text was.
        self._conn.executemany(
            "UPDATE history SET before = NULL, after = NULL WHERE tenant = ? AND memory_id = ?",
            [(tenant, r[2]) for r in rows],
        )
        for _, scope_id, memory_id in rows:
            self._history(memory_id, tenant, "delete", None, None, actor)
            self._op(scope_id, _Op("delete", memory_id))
        # An entity only deleted records mentioned is derived from deleted data: it goes too.
        sqlite_facts.drop_unmentioned(self._conn)
        self.purged = True

    # -- derived work --------------------------------------------------------------------------

    @_guarded
    def put_vectors(self, tenant: str, items: Sequence[tuple[str, Keys, str, Vector]]) -> int:
        stored = 0
        for memory_id, keys, embed_hash, vector in items:
            rows = _get(self._conn, tenant, [memory_id])
            if not rows or rows[0].keys != keys:
                continue  # deleted, or re-keyed since: its job stays for the new keys
            rid, scope_id = self._conn.execute(
                "SELECT rid, scope_id FROM memories WHERE tenant = ? AND id = ?",
                (tenant, memory_id),
            ).fetchone()
            self._conn.execute(
                "INSERT INTO vectors (rid, embed_hash, vec) VALUES (?, ?, ?) ON CONFLICT (rid) "
                "DO UPDATE SET embed_hash = excluded.embed_hash, vec = excluded.vec",
                (rid, embed_hash, np.asarray(vector, dtype=np.float32).tobytes()),
            )
            self._conn.execute("DELETE FROM jobs WHERE memory_rid = ? AND kind = 'embed'", (rid,))
            vec = np.asarray(vector, dtype=np.float32)
            self._op(int(scope_id), _Op("vector", memory_id, _place(rows[0], rid), vector=vec))
            stored += 1
        return stored

    @_guarded
    def fail_jobs(self, tenant: str, ids: Sequence[str], error: str, kind: str = "embed") -> None:
        self._conn.executemany(
            "UPDATE jobs SET attempts = attempts + 1, last_error = ?, updated_at = ? "
            "WHERE kind = ? AND memory_rid = "
            "(SELECT rid FROM memories WHERE tenant = ? AND id = ?)",
            [(error[:2000], self.now, kind, tenant, i) for i in ids],
        )

    @_guarded
    def requeue(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        for memory_id in ids:
            found = self._conn.execute(
                "SELECT rid FROM memories WHERE tenant = ? AND id = ?", (tenant, memory_id)
            ).fetchone()
            if found is not None:
                self._queue(tenant, int(found[0]), kind)

    @_guarded
    def lease_jobs(self, kind: str, limit: int, worker: str, until: float) -> builtins.list[Job]:
        found = self._conn.execute(
            "SELECT j.id, j.kind, m.id, j.tenant, j.attempts, j.last_error FROM jobs j "
            "JOIN memories m ON m.rid = j.memory_rid WHERE j.kind = ? "
            "AND (j.leased_until IS NULL OR j.leased_until < ?) ORDER BY j.id LIMIT ?",
            (kind, self.now, limit),
        ).fetchall()
        self._conn.executemany(
            "UPDATE jobs SET leased_until = ?, leased_by = ? WHERE id = ?",
            [(until, worker, int(r[0])) for r in found],
        )
        return [Job(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5]) for r in found]

    @_guarded
    def pending_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> set[str]:
        pending: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = builtins.list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            pending.update(
                str(r[0])
                for r in self._conn.execute(
                    f"SELECT m.id FROM jobs j JOIN memories m ON m.rid = j.memory_rid "
                    f"WHERE j.kind = ? AND m.tenant = ? AND m.id IN ({marks})",
                    [kind, tenant, *chunk],
                )
            )
        return pending

    @_guarded
    def finish_jobs(self, tenant: str, ids: Sequence[str], kind: str) -> None:
        self._conn.executemany(
            "DELETE FROM jobs WHERE kind = ? AND memory_rid = "
            "(SELECT rid FROM memories WHERE tenant = ? AND id = ?)",
            [(kind, tenant, i) for i in ids],
        )

    # -- facts and entities --------------------------------------------------------------------

    @_guarded
    def facts_about(
        self,
        scope: Scope,
        subject: str,
        attributes: Sequence[str],
        value: str | None,
        limit: int,
    ) -> builtins.list[Row]:
        scope_id = _scope_id(self._conn, scope)
        if scope_id is None:
            return []
        rids = sqlite_facts.about(self._conn, scope_id, subject, attributes, value, limit)
        if not rids:
            return []
        marks = ",".join("?" * len(rids))
        found = _rows(self._conn, f"{_SELECT} WHERE m.rid IN ({marks}) ORDER BY m.rid", rids)
        at = {rid: i for i, rid in enumerate(rids)}  # newest first, as `about` ranked them
        ranked = sorted(zip(sorted(rids), found, strict=True), key=lambda pair: at[pair[0]])
        return [row for _, row in ranked]

    @_guarded
    def set_validity(
        self,
        tenant: str,
        memory_id: str,
        info: FactInfo,
        event: str,
        actor: str,
        cause: Sequence[str] = (),
    ) -> None:
        found = self._conn.execute(
            "SELECT m.rid, m.scope_id, f.valid_from, f.valid_to, f.superseded_by FROM memories m "
            "JOIN facts f ON f.memory_rid = m.rid WHERE m.tenant = ? AND m.id = ?",
            (tenant, memory_id),
        ).fetchone()
        if found is None:
            raise MemoryNotFound(memory_id)
        rid, scope_id, *before = found
        sqlite_facts.set_validity(self._conn, rid, info)
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
        self._op(int(scope_id), _Op("touch", memory_id, (memory_id, int(rid), 0.0, 0)))

    @_guarded
    def add_sources(
        self,
        tenant: str,
        memory_id: str,
        source_ids: Sequence[str],
        actor: str,
        *,
        history: bool = True,
    ) -> builtins.list[str]:
        found = self._conn.execute(
            "SELECT rid FROM memories WHERE tenant = ? AND id = ?", (tenant, memory_id)
        ).fetchone()
        if found is None:
            raise MemoryNotFound(memory_id)
        added = []
        for source_id in source_ids:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO sources (memory_rid, source_rid) "
                "SELECT ?, rid FROM memories WHERE tenant = ? AND id = ?",
                (found[0], tenant, source_id),
            )
            if cur.rowcount:
                added.append(source_id)
        if added and history:
            self._history(memory_id, tenant, "confirm", None, {"sources": added}, actor)
        return added

    @_guarded
    def remove_sources(
        self, tenant: str, memory_id: str, source_ids: Sequence[str], actor: str
    ) -> None:
        self._conn.executemany(
            "DELETE FROM sources WHERE memory_rid = (SELECT rid FROM memories WHERE tenant = ? "
            "AND id = ?) AND source_rid = (SELECT rid FROM memories WHERE tenant = ? AND id = ?)",
            [(tenant, memory_id, tenant, s) for s in source_ids],
        )
        self._history(
            memory_id, tenant, "split", {"sources": builtins.list(source_ids)}, None, actor
        )

    @_guarded
    def unmention(self, tenant: str, ids: Sequence[str]) -> None:
        self._conn.executemany(
            "DELETE FROM mentions WHERE memory_rid = "
            "(SELECT rid FROM memories WHERE tenant = ? AND id = ?)",
            [(tenant, i) for i in ids],
        )
        sqlite_facts.drop_unmentioned(self._conn)

    @_guarded
    def link_entities(
        self, scope: Scope, memory_ids: Sequence[str], refs: Sequence[EntityLink]
    ) -> None:
        scope_id = self._scope_id(scope)
        rids = [
            int(r[0])
            for i in memory_ids
            for r in self._conn.execute(
                "SELECT rid FROM memories WHERE tenant = ? AND id = ?", (scope.tenant, i)
            )
        ]
        for ref in refs:
            entity = sqlite_facts.upsert_entity(
                self._conn, tenant=scope.tenant, scope_id=scope_id, new_id=ref.new_id,
                name=ref.name, type_=ref.type, relation=ref.relation,
                relation_of=ref.relation_of, now=self.now,
            )  # fmt: skip
            for rid in rids:
                sqlite_facts.mention(self._conn, entity, rid)

    # -- what a server keeps beside the memories ------------------------------------------------

    @_guarded
    def replace_history(self, tenant: str, entries: Sequence[HistoryEntry]) -> None:
        self._conn.execute("DELETE FROM history WHERE tenant = ?", (tenant,))
        self._conn.executemany(
            "INSERT INTO history (memory_id, tenant, event, before, after, actor, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (e.memory_id, tenant, e.event,
                 None if e.before is None else _json(e.before),
                 None if e.after is None else _json(e.after), e.actor, e.at.timestamp())
                for e in entries
            ],
        )  # fmt: skip

    @_guarded
    def insert_key(self, key: ApiKey, digest: str) -> None:
        sqlite_admin.insert_key(self._conn, key, digest)

    @_guarded
    def revoke_key(self, key_id: str, tenant: str | None) -> bool:
        return sqlite_admin.revoke_key(self._conn, key_id, tenant, self.now)

    @_guarded
    def insert_webhook(self, hook: Webhook, secret: str) -> Webhook:
        return sqlite_admin.insert_webhook(self._conn, hook, secret)

    @_guarded
    def delete_webhook(self, tenant: str, hook_id: str) -> bool:
        return sqlite_admin.delete_webhook(self._conn, tenant, hook_id)

    @_guarded
    def log_delivery(self, delivery: Delivery, advance: bool) -> None:
        sqlite_admin.log_delivery(self._conn, delivery, advance)

    @_guarded
    def lease_webhook(self, tenant: str, hook_id: str, holder: str, until: float) -> bool:
        return sqlite_admin.lease_webhook(self._conn, tenant, hook_id, holder, until)

    @_guarded
    def release_webhook(self, tenant: str, hook_id: str, holder: str) -> None:
        sqlite_admin.release_webhook(self._conn, tenant, hook_id, holder)

    @_guarded
    def purge(self, tenant: str, user_id: str | None, actor: str) -> dict[str, int]:
        scope_list = sqlite_admin.scope_ids(self._conn, tenant, user_id)
        receipt = sqlite_admin.counts(self._conn, scope_list)
        for scope_id in scope_list:
            found = self._conn.execute(
                "SELECT rid, id FROM memories WHERE scope_id = ?", (scope_id,)
            ).fetchall()
            self._purge(tenant, [(int(r[0]), scope_id, str(r[1])) for r in found], actor)
            self.ops.pop(scope_id, None)  # the scope itself goes: no index version to bump
        sqlite_admin.drop_scopes(self._conn, scope_list)
        if user_id is None:
            receipt.update(sqlite_admin.drop_tenant(self._conn, tenant))
        # A dropped scope's id may be given to a new scope: no cached index may outlive it.
        self.purged = self.reset = True
        return receipt

    @_guarded
    def derived(self, tenant: str, ids: Sequence[str]) -> builtins.list[tuple[str, int]]:
        rids = [
            int(r[0])
            for i in ids
            for r in self._conn.execute(
                "SELECT rid FROM memories WHERE tenant = ? AND id = ?", (tenant, i)
            )
        ]
        out = []
        for rid, others in sqlite_facts.derived_from(self._conn, rids):
            row = self._conn.execute("SELECT id FROM memories WHERE rid = ?", (rid,)).fetchone()
            out.append((str(row[0]), others))
        return out

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @_guarded
    def reset_vectors(self) -> int:
        self._conn.execute("DELETE FROM vectors")
        cur = self._conn.execute(
            "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
            "SELECT tenant, 'embed', rid, ?, ? FROM memories WHERE true "
            "ON CONFLICT (memory_rid, kind) DO NOTHING",
            (self.now, self.now),
        )
        self._conn.execute("UPDATE scopes SET version = version + 1")
        self.reset = True
        return int(cur.rowcount)


# -- helpers shared by readers and the writer ----------------------------------------------------


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (a full disk, an I/O error): then there is
    # nothing left to roll back, and saying so must not hide the error that caused it.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch to write-ahead logging. Two processes creating one store at once can find the
    switch refused as 'database is locked' without SQLite's busy handler ever waiting, so wait
    here (as long as the busy timeout would)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _scope_id(conn: sqlite3.Connection, scope: Scope) -> int | None:
    row = conn.execute(
        "SELECT id FROM scopes WHERE tenant = ? AND user_id = ? AND agent_id = ?",
        (scope.tenant, scope.user_id or "", scope.agent_id or ""),
    ).fetchone()
    return None if row is None else int(row[0])


def _where(scope_id: int, flt: Filter) -> tuple[str, builtins.list[Any]]:
    clauses: builtins.list[str] = ["m.scope_id = ?"]
    params: builtins.list[Any] = [scope_id]
    if flt.since is not None:
        clauses.append("m.occurred_at >= ?")
        params.append(flt.since)
    if flt.until is not None:
        clauses.append("m.occurred_at < ?")
        params.append(flt.until)
    if flt.session_id is not None:
        clauses.append("m.session_id = ?")
        params.append(flt.session_id)
    if flt.kinds is not None:
        clauses.append(f"m.kind IN ({','.join('?' * len(flt.kinds))})")
        params.extend(flt.kinds)
    more, values = sqlite_facts.fact_where(flt.current_facts, flt.facts_valid_at)
    if flt.archived is not None:
        more.append(f"m.archived_at IS {'NOT ' if flt.archived else ''}NULL")
    clauses += more
    params += values
    for key, value in flt.metadata:
        if isinstance(value, (dict, list)):
            clauses.append("json_extract(m.metadata, ?) = json(?)")
            params += [_json_path(key), _json(value)]
        elif isinstance(value, bool):
            clauses.append("json_type(m.metadata, ?) = ?")
            params += [_json_path(key), "true" if value else "false"]
        else:
            clauses.append("json_extract(m.metadata, ?) = ?")
            params += [_json_path(key), value]
    return " AND ".join(clauses), params


def timeline_query(
    scope_id: int, flt: Filter, after: tuple[float, int] | None, limit: int
) -> tuple[str, builtins.list[Any]]:
    """The statement of a timeline page (one record more than ``limit``: is there a next?)."""
    where, params = _where(scope_id, flt)
    if after is not None:
        # A row value: SQLite seeks memories_scope_time (or memories_session_order, for a
        # session) to the position, and the index's order is the page's: nothing is sorted.
        where += " AND (m.occurred_at, m.rid) > (?, ?)"
        params += [*after]
    return f"{_SELECT} WHERE {where} ORDER BY m.occurred_at, m.rid LIMIT ?", [*params, limit + 1]


def _page_of(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], limit: int
) -> tuple[builtins.list[Row], tuple[Any, ...] | None]:
    """The records of a page read ``limit + 1`` at a time, and the last one's raw row when
    there is a next page (its position makes the cursor)."""
    raw = conn.execute(sql, params).fetchall()
    rows = [_row_from(r) for r in raw[:limit]]
    _attach_sources(conn, rows)
    return rows, tuple(raw[limit - 1]) if len(raw) > limit else None


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _get(conn: sqlite3.Connection, tenant: str, ids: Sequence[str]) -> builtins.list[Row]:
    rows: builtins.list[Row] = []
    unique = builtins.list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += _rows(conn, f"{_SELECT} WHERE m.tenant = ? AND m.id IN ({marks})", [tenant, *chunk])
    return rows


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> builtins.list[Row]:
    rows = [_row_from(r) for r in conn.execute(sql, params)]
    _attach_sources(conn, rows)
    return rows


def _attach_sources(conn: sqlite3.Connection, rows: builtins.list[Row]) -> None:
    for row in rows:
        if row.kind == "message":
            continue
        row.source_ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT src.id FROM sources x JOIN memories m ON m.rid = x.memory_rid "
                "JOIN memories src ON src.rid = x.source_rid WHERE m.tenant = ? AND m.id = ? "
                "ORDER BY src.occurred_at, src.rid",
                (row.scope.tenant, row.id),
            )
        ]


def _row_from(r: Sequence[Any]) -> Row:
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
        fact=fact_from(r[22 : 22 + FACT_WIDTH]),
    )


def _place(row: Row, rid: int) -> _Place:
    return (row.id, int(rid), row.occurred_at, KIND_CODES.get(row.kind, -1))


def _snapshot(row: Row) -> dict[str, Any]:
    # The scope makes an event of the feed (and a webhook delivery) say whose memory changed.
    return {
        "text": row.text, "metadata": row.metadata, "kind": row.kind,
        "user_id": row.scope.user_id, "agent_id": row.scope.agent_id,
        "session_id": row.session_id,
    }  # fmt: skip
