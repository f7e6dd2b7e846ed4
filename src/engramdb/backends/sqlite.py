"""The embedded store: one SQLite file, WAL, FTS5, vectors in the database.

One writer connection guarded by a lock; each reading thread gets its own connection, so searches
run while a write is in progress (WAL). The dense index is an in-memory :class:`VectorSet` per
scope, derived from the ``vectors`` table: loaded on first use and reloaded when another process
changed the scope (each scope row carries a version that every write bumps).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..types import HistoryEntry, Scope
from . import sqlite_schema
from .base import Filter, Row, Scored, Vector
from .lexical import LexicalSet
from .vectors import VectorSet

_ROW_COLUMNS = (
    "m.rid, m.id, s.tenant, s.user_id, s.agent_id, m.kind, m.session_id, m.role, m.name, m.text, "
    "m.occurred_at, m.recorded_at, m.updated_at, m.metadata, m.time_mentions, m.content_hash, "
    "m.index_text"
)
# CROSS JOIN fixes the join order: SQLite otherwise starts from scopes and scans a whole scope
# to find a handful of ids (11 ms instead of 0.2 ms at 10k memories).
_FROM = "memories m CROSS JOIN scopes s ON s.id = m.scope_id"


class SQLiteStore:
    """:class:`engramdb.backends.base.Store` on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path, *, dim: int, synchronous: str = "full") -> None:
        self.path = str(path)
        self.dim = dim
        self._synchronous = synchronous.upper()
        if self._synchronous not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise StoreError(f"synchronous={synchronous!r}: use 'full' or 'normal'")
        self._memory = self.path == ":memory:"
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._closed = False
        # Derived, in-memory indexes per scope: dense vectors and BM25 postings.
        self._vsets: dict[int, VectorSet] = {}
        self._lsets: dict[int, LexicalSet] = {}
        self._readers: builtins.list[sqlite3.Connection] = []
        self._writer = self._connect()
        sqlite_schema.migrate(self._writer, self.path)

    # -- connections ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not an engramdb store: {exc}") from exc
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # deleted text must not linger in free pages
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        if self._memory:
            return self._writer
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._writer.close()
            self._forget_all()

    # -- meta and scopes -----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def _scope_id(self, conn: sqlite3.Connection, scope: Scope, create: bool) -> int | None:
        key = (scope.tenant, scope.user_id or "", scope.agent_id or "")
        row = conn.execute(
            "SELECT id FROM scopes WHERE tenant = ? AND user_id = ? AND agent_id = ?", key
        ).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        cur = conn.execute(
            "INSERT INTO scopes (tenant, user_id, agent_id, created_at) VALUES (?, ?, ?, ?)",
            (*key, time.time()),
        )
        return int(cur.lastrowid or 0)

    def _bump(self, conn: sqlite3.Connection, scope_id: int) -> int:
        conn.execute("UPDATE scopes SET version = version + 1 WHERE id = ?", (scope_id,))
        return int(
            conn.execute("SELECT version FROM scopes WHERE id = ?", (scope_id,)).fetchone()[0]
        )

    # -- writes --------------------------------------------------------------------------------

    def existing(self, scope: Scope, keys: Sequence[tuple[str | None, str]]) -> dict[str, str]:
        conn = self._reader()
        scope_id = self._scope_id(conn, scope, create=False)
        if scope_id is None or not keys:
            return {}
        found: dict[str, str] = {}
        for session_id, content_hash in keys:
            row = conn.execute(
                "SELECT id FROM memories WHERE scope_id = ? AND session_id = ? "
                "AND content_hash = ?",
                (scope_id, session_id or "", content_hash),
            ).fetchone()
            if row is not None:
                found[content_hash] = str(row[0])
        return found

    def cached_vectors(self, embed_hashes: Sequence[str]) -> dict[str, Vector]:
        out: dict[str, Vector] = {}
        conn = self._reader()
        unique = list(dict.fromkeys(embed_hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for ehash, blob in conn.execute(
                f"SELECT embed_hash, vec FROM vectors WHERE embed_hash IN ({marks})", chunk
            ):
                out[str(ehash)] = np.frombuffer(blob, dtype=np.float32)
        return out

    def insert(
        self, rows: Sequence[Row], vectors: Vector, embed_hashes: Sequence[str], actor: str
    ) -> None:
        if not rows:
            return
        now = time.time()
        with self._write() as conn:
            new_scopes: set[int] = set()
            scope_ids: dict[Scope, int] = {}
            new_rids: builtins.list[int] = []
            for row in rows:
                if row.scope not in scope_ids:
                    existed = self._scope_id(conn, row.scope, create=False) is not None
                    sid = self._scope_id(conn, row.scope, create=True)
                    assert sid is not None
                    scope_ids[row.scope] = sid
                    if not existed:
                        new_scopes.add(sid)
                new_rids.append(self._insert_row(conn, scope_ids[row.scope], row))
            conn.executemany(
                "INSERT INTO vectors (rid, embed_hash, vec) VALUES (?, ?, ?)",
                [
                    (rid, ehash, vectors[i].astype(np.float32).tobytes())
                    for i, (rid, ehash) in enumerate(zip(new_rids, embed_hashes, strict=True))
                ],
            )
            conn.executemany(
                "INSERT INTO history (memory_id, tenant, event, before, after, actor, at) "
                "VALUES (?, ?, 'create', NULL, ?, ?, ?)",
                [(r.id, r.scope.tenant, json.dumps(_snapshot(r)), actor, now) for r in rows],
            )
            versions = {sid: self._bump(conn, sid) for sid in scope_ids.values()}
        self._after_insert(rows, vectors, scope_ids, versions, new_scopes)

    def _insert_row(self, conn: sqlite3.Connection, scope_id: int, row: Row) -> int:
        cur = conn.execute(
            "INSERT INTO memories (id, scope_id, kind, session_id, role, name, text, index_text, "
            "occurred_at, recorded_at, updated_at, metadata, time_mentions, content_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                scope_id,
                row.kind,
                row.session_id or "",
                row.role,
                row.name,
                row.text,
                row.index_text,
                row.occurred_at,
                row.recorded_at,
                row.updated_at,
                json.dumps(row.metadata),
                json.dumps(row.time_mentions),
                row.content_hash,
            ),
        )
        rid = int(cur.lastrowid or 0)
        for source_id in row.source_ids:
            conn.execute(
                "INSERT OR IGNORE INTO sources (memory_rid, source_rid) "
                "SELECT ?, rid FROM memories WHERE id = ?",
                (rid, source_id),
            )
        return rid

    def _after_insert(
        self,
        rows: Sequence[Row],
        vectors: Vector,
        scope_ids: dict[Scope, int],
        versions: dict[int, int],
        new_scopes: set[int],
    ) -> None:
        # Keep loaded indexes in step with our own write instead of reloading them; a scope
        # this write created starts with empty ones, so a fresh store never rebuilds.
        with self._lock:
            for sid in new_scopes:
                self._vsets.setdefault(sid, VectorSet(self.dim, versions[sid] - 1))
                self._lsets.setdefault(sid, LexicalSet(versions[sid] - 1))
            for scope, sid in scope_ids.items():
                idx = [i for i, r in enumerate(rows) if r.scope == scope]
                vset, lset = self._vsets.get(sid), self._lsets.get(sid)
                if vset is not None and vset.version == versions[sid] - 1:
                    vset.add(
                        [rows[i].id for i in idx],
                        np.array([rows[i].occurred_at for i in idx], dtype=np.float64),
                        vectors[idx],
                    )
                    vset.version = versions[sid]
                else:
                    self._vsets.pop(sid, None)  # someone else wrote too: reload on next search
                if lset is not None and lset.version == versions[sid] - 1:
                    lset.add((rows[i].id, rows[i].occurred_at, rows[i].index_text) for i in idx)
                    lset.version = versions[sid]
                else:
                    self._lsets.pop(sid, None)

    def _forget(self, scope_id: int) -> None:
        with self._lock:
            self._vsets.pop(scope_id, None)
            self._lsets.pop(scope_id, None)

    def _forget_all(self) -> None:
        with self._lock:
            self._vsets.clear()
            self._lsets.clear()

    def update(self, row: Row, vector: Vector | None, embed_hash: str | None, actor: str) -> None:
        with self._write() as conn:
            found = conn.execute(
                f"SELECT {_ROW_COLUMNS}, m.scope_id FROM {_FROM} WHERE m.id = ?", (row.id,)
            ).fetchone()
            if found is None:
                raise StoreError(f"memory {row.id} vanished during update")
            before, rid, scope_id = _row_from(found), int(found[0]), int(found[-1])
            conn.execute(
                "UPDATE memories SET text = ?, index_text = ?, metadata = ?, time_mentions = ?, "
                "updated_at = ?, content_hash = ? WHERE rid = ?",
                (
                    row.text,
                    row.index_text,
                    json.dumps(row.metadata),
                    json.dumps(row.time_mentions),
                    row.updated_at,
                    row.content_hash,
                    rid,
                ),
            )
            if vector is not None and embed_hash is not None:
                conn.execute(
                    "UPDATE vectors SET embed_hash = ?, vec = ? WHERE rid = ?",
                    (embed_hash, vector.astype(np.float32).tobytes(), rid),
                )
            conn.execute(
                "INSERT INTO history (memory_id, tenant, event, before, after, actor, at) "
                "VALUES (?, ?, 'update', ?, ?, ?, ?)",
                (
                    row.id,
                    row.scope.tenant,
                    json.dumps(_snapshot(before)),
                    json.dumps(_snapshot(row)),
                    actor,
                    row.updated_at,
                ),
            )
            self._bump(conn, scope_id)
        self._forget(scope_id)

    def delete(self, ids: Sequence[str], tenant: str, actor: str) -> int:
        with self._write() as conn:
            count = self._purge(
                conn,
                [
                    (int(r[0]), int(r[1]), str(r[2]), str(r[3]))
                    for i in ids
                    for r in conn.execute(
                        "SELECT m.rid, m.scope_id, m.index_text, m.id FROM memories m "
                        "JOIN scopes s ON s.id = m.scope_id WHERE m.id = ? AND s.tenant = ?",
                        (i, tenant),
                    )
                ],
                tenant,
                actor,
            )
        self._scrub()
        return count

    def delete_scope(self, scope: Scope, actor: str) -> int:
        with self._write() as conn:
            scope_id = self._scope_id(conn, scope, create=False)
            if scope_id is None:
                return 0
            rows = [
                (int(r[0]), scope_id, str(r[1]), str(r[2]))
                for r in conn.execute(
                    "SELECT rid, index_text, id FROM memories WHERE scope_id = ?", (scope_id,)
                )
            ]
            count = self._purge(conn, rows, scope.tenant, actor)
        self._scrub()
        return count

    def _purge(
        self,
        conn: sqlite3.Connection,
        rows: builtins.list[tuple[int, int, str, str]],
        tenant: str,
        actor: str,
    ) -> int:
        now = time.time()
        conn.executemany("DELETE FROM memories WHERE rid = ?", [(r[0],) for r in rows])
        # GDPR: the history keeps that a change happened, never what the deleted text was.
        conn.executemany(
            "UPDATE history SET before = NULL, after = NULL WHERE memory_id = ?",
            [(r[3],) for r in rows],
        )
        conn.executemany(
            "INSERT INTO history (memory_id, tenant, event, before, after, actor, at) "
            "VALUES (?, ?, 'delete', NULL, NULL, ?, ?)",
            [(r[3], tenant, actor, now) for r in rows],
        )
        for scope_id in {r[1] for r in rows}:
            self._bump(conn, scope_id)
            self._forget(scope_id)
        return len(rows)

    def _scrub(self) -> None:
        # Old page images of deleted rows live on in the write-ahead log until a checkpoint;
        # copy them out and truncate the log so deleted text is gone from the files too.
        with self._lock:
            if not self._memory:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reads ---------------------------------------------------------------------------------

    def get(self, ids: Sequence[str], tenant: str) -> builtins.list[Row]:
        if not ids:
            return []
        conn = self._reader()
        rows: builtins.list[Row] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows.extend(
                _row_from(r)
                for r in conn.execute(
                    f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE m.id IN ({marks}) AND s.tenant = ?",
                    (*chunk, tenant),
                )
            )
        self._attach_sources(conn, rows)
        return rows

    def _attach_sources(self, conn: sqlite3.Connection, rows: builtins.list[Row]) -> None:
        for row in rows:
            if row.kind == "message":
                continue
            row.source_ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT src.id FROM sources x JOIN memories m ON m.rid = x.memory_rid "
                    "JOIN memories src ON src.rid = x.source_rid WHERE m.id = ? "
                    "ORDER BY src.occurred_at, src.rid",
                    (row.id,),
                )
            ]

    def list(
        self,
        scope: Scope,
        *,
        session_id: str | None,
        kind: str | None,
        limit: int,
        after: str | None,
    ) -> builtins.list[Row]:
        conn = self._reader()
        scope_id = self._scope_id(conn, scope, create=False)
        if scope_id is None:
            return []
        sql = f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE m.scope_id = ?"
        params: builtins.list[Any] = [scope_id]
        if session_id is not None:
            sql += " AND m.session_id = ?"
            params.append(session_id)
        if kind is not None:
            sql += " AND m.kind = ?"
            params.append(kind)
        if after is not None:
            sql += " AND m.rid > (SELECT rid FROM memories WHERE id = ?)"
            params.append(after)
        sql += " ORDER BY m.rid LIMIT ?"
        params.append(limit)
        rows = [_row_from(r) for r in conn.execute(sql, params)]
        self._attach_sources(conn, rows)
        return rows

    def iter_rows(self, tenant: str, scope: Scope | None) -> Iterator[Row]:
        conn = self._connect() if not self._memory else self._writer
        sql = f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE s.tenant = ?"
        params: builtins.list[Any] = [tenant]
        if scope is not None:
            sql += " AND s.user_id = ? AND s.agent_id = ?"
            params += [scope.user_id or "", scope.agent_id or ""]
        for batch in _batched(conn.execute(sql + " ORDER BY m.rid", params), 500):
            rows = [_row_from(r) for r in batch]
            self._attach_sources(conn, rows)
            yield from rows

    def history(self, memory_id: str, tenant: str) -> builtins.list[HistoryEntry]:
        return [
            HistoryEntry(
                id=int(r[0]),
                memory_id=memory_id,
                event=str(r[1]),
                before=json.loads(r[2]) if r[2] else None,
                after=json.loads(r[3]) if r[3] else None,
                actor=str(r[4]),
                at=_dt(float(r[5])),
            )
            for r in self._reader().execute(
                "SELECT id, event, before, after, actor, at FROM history "
                "WHERE memory_id = ? AND tenant = ? ORDER BY id",
                (memory_id, tenant),
            )
        ]

    def previous_message(
        self,
        scope: Scope,
        session_id: str | None,
        at: float,
        exclude_hashes: Sequence[str] = (),
        before_id: str | None = None,
    ) -> Row | None:
        conn = self._reader()
        scope_id = self._scope_id(conn, scope, create=False)
        if scope_id is None:
            return None
        marks = ",".join("?" * len(exclude_hashes))
        order: tuple[Any, ...] = (at, 1 << 62)
        if before_id is not None:
            found = conn.execute(
                "SELECT occurred_at, rid FROM memories WHERE id = ?", (before_id,)
            ).fetchone()
            if found is not None:
                order = (float(found[0]), int(found[1]))
        row = conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE m.scope_id = ? AND m.session_id = ? "
            "AND m.kind = 'message' AND (m.occurred_at, m.rid) < (?, ?) "
            f"AND m.content_hash NOT IN ({marks}) "
            "ORDER BY m.occurred_at DESC, m.rid DESC LIMIT 1",
            (scope_id, session_id or "", *order, *exclude_hashes),
        ).fetchone()
        return None if row is None else _row_from(row)

    def following(self, memory_id: str, tenant: str) -> Row | None:
        """The message after this one in its session (whose index key quotes this one)."""
        row = (
            self._reader()
            .execute(
                f"SELECT {_ROW_COLUMNS} FROM {_FROM} JOIN memories base ON base.id = ? "
                "AND base.scope_id = m.scope_id AND base.session_id = m.session_id "
                "WHERE s.tenant = ? AND m.kind = 'message' "
                "AND (m.occurred_at, m.rid) > (base.occurred_at, base.rid) "
                "ORDER BY m.occurred_at, m.rid LIMIT 1",
                (memory_id, tenant),
            )
            .fetchone()
        )
        return None if row is None else _row_from(row)

    def reindex(self, row: Row, vector: Vector, embed_hash: str) -> None:
        """Replace a row's index key and vector: derived data, so no history entry."""
        with self._write() as conn:
            found = conn.execute(
                "SELECT rid, scope_id FROM memories WHERE id = ?", (row.id,)
            ).fetchone()
            if found is None:
                return
            rid, scope_id = int(found[0]), int(found[1])
            conn.execute("UPDATE memories SET index_text = ? WHERE rid = ?", (row.index_text, rid))
            conn.execute(
                "UPDATE vectors SET embed_hash = ?, vec = ? WHERE rid = ?",
                (embed_hash, vector.astype(np.float32).tobytes(), rid),
            )
            self._bump(conn, scope_id)
        self._forget(scope_id)

    def neighbours(
        self, ids: Sequence[str], tenant: str, span: int
    ) -> dict[str, builtins.list[Row]]:
        conn = self._reader()
        out: dict[str, builtins.list[Row]] = {}
        for ident in ids:
            base = conn.execute(
                "SELECT m.scope_id, m.session_id, m.occurred_at, m.rid FROM memories m "
                "JOIN scopes s ON s.id = m.scope_id WHERE m.id = ? AND s.tenant = ?",
                (ident, tenant),
            ).fetchone()
            if base is None:
                continue
            where = (
                f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE m.scope_id = ? "
                "AND m.session_id = ? AND m.kind = 'message' AND "
            )
            before = conn.execute(
                where + "(m.occurred_at, m.rid) < (?, ?) ORDER BY m.occurred_at DESC, m.rid DESC "
                "LIMIT ?",
                (*base, span),
            ).fetchall()
            after = conn.execute(
                where + "(m.occurred_at, m.rid) > (?, ?) ORDER BY m.occurred_at, m.rid LIMIT ?",
                (*base, span),
            ).fetchall()
            out[ident] = [_row_from(r) for r in reversed(before)] + [_row_from(r) for r in after]
        return out

    def _allowed(self, conn: sqlite3.Connection, scope_id: int, flt: Filter) -> set[str] | None:
        if flt.session_id is None and flt.kinds is None and not flt.metadata:
            return None
        sql, params = self._filter_sql(scope_id, flt)
        return {str(r[0]) for r in conn.execute(f"SELECT m.id FROM memories m WHERE {sql}", params)}

    @staticmethod
    def _filter_sql(scope_id: int, flt: Filter) -> tuple[str, builtins.list[Any]]:
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
        for key, value in flt.metadata:
            clauses.append("json_extract(m.metadata, ?) = ?")
            params += [
                f'$."{key}"',
                json.dumps(value) if isinstance(value, (dict, list)) else value,
            ]
        return " AND ".join(clauses), params

    def lexical(self, scope: Scope, terms: Sequence[str], limit: int, flt: Filter) -> Scored:
        conn = self._reader()
        scope_id = self._scope_id(conn, scope, create=False)
        if scope_id is None or not terms:
            return []
        lset = self._lexical_set(conn, scope_id)
        allowed = self._allowed(conn, scope_id, flt)
        return lset.search(" ".join(terms), limit, flt.since, flt.until, allowed)

    def dense(
        self, scope: Scope, query: Vector, limit: int, filters: Sequence[Filter]
    ) -> builtins.list[Scored]:
        conn = self._reader()
        scope_id = self._scope_id(conn, scope, create=False)
        if scope_id is None:
            return [[] for _ in filters]
        vset = self._vectors(conn, scope_id)
        windows = [(f.since, f.until, self._allowed(conn, scope_id, f)) for f in filters]
        return vset.search_many(query, limit, windows)

    def _version(self, conn: sqlite3.Connection, scope_id: int) -> int:
        row = conn.execute("SELECT version FROM scopes WHERE id = ?", (scope_id,)).fetchone()
        return int(row[0])

    def _vectors(self, conn: sqlite3.Connection, scope_id: int) -> VectorSet:
        version = self._version(conn, scope_id)
        with self._lock:
            vset = self._vsets.get(scope_id)
            if vset is not None and vset.version == version:
                return vset
        vset = VectorSet(self.dim, version)
        for batch in _batched(
            conn.execute(
                "SELECT m.id, m.occurred_at, v.vec FROM memories m JOIN vectors v "
                "ON v.rid = m.rid WHERE m.scope_id = ? ORDER BY m.rid",
                (scope_id,),
            ),
            4096,
        ):
            vset.add(
                [str(r[0]) for r in batch],
                np.array([r[1] for r in batch]),
                np.frombuffer(b"".join(r[2] for r in batch), dtype=np.float32).reshape(
                    len(batch), self.dim
                ),
            )
        with self._lock:
            current = self._vsets.get(scope_id)
            if current is None or current.version <= version:
                self._vsets[scope_id] = vset
        return vset

    def _lexical_set(self, conn: sqlite3.Connection, scope_id: int) -> LexicalSet:
        version = self._version(conn, scope_id)
        with self._lock:
            lset = self._lsets.get(scope_id)
            if lset is not None and lset.version == version:
                return lset
        lset = LexicalSet(version)
        for batch in _batched(
            conn.execute(
                "SELECT id, occurred_at, index_text FROM memories WHERE scope_id = ? ORDER BY rid",
                (scope_id,),
            ),
            4096,
        ):
            lset.add((str(r[0]), float(r[1]), str(r[2])) for r in batch)
        with self._lock:
            current = self._lsets.get(scope_id)
            if current is None or current.version <= version:
                self._lsets[scope_id] = lset
        return lset

    def embed_texts(self, batch: int = 512) -> Iterator[builtins.list[tuple[str, str]]]:
        """Batches of (id, index text) of every row: for re-embedding with a new model."""
        conn = self._connect() if not self._memory else self._writer
        yield from (
            [(str(r[0]), str(r[1])) for r in b]
            for b in _batched(
                conn.execute("SELECT id, index_text FROM memories ORDER BY rid"), batch
            )
        )

    def replace_vectors(
        self, ids: Sequence[str], vectors: Vector, embed_hashes: Sequence[str]
    ) -> None:
        """Overwrite the vectors of existing rows (re-embedding)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE vectors SET vec = ?, embed_hash = ? "
                "WHERE rid = (SELECT rid FROM memories WHERE id = ?)",
                [
                    (vectors[i].astype(np.float32).tobytes(), embed_hashes[i], ident)
                    for i, ident in enumerate(ids)
                ],
            )
            conn.execute("UPDATE scopes SET version = version + 1")
        with self._lock:
            self._forget_all()

    def stats(self, tenant: str) -> dict[str, Any]:
        conn = self._reader()
        kinds = dict(
            conn.execute(
                "SELECT m.kind, COUNT(*) FROM memories m JOIN scopes s ON s.id = m.scope_id "
                "WHERE s.tenant = ? GROUP BY m.kind",
                (tenant,),
            ).fetchall()
        )
        scopes = conn.execute("SELECT COUNT(*) FROM scopes WHERE tenant = ?", (tenant,)).fetchone()[
            0
        ]
        size = (
            0
            if self._memory
            else sum(
                p.stat().st_size for p in Path(self.path).parent.glob(Path(self.path).name + "*")
            )
        )
        return {
            "path": self.path,
            "memories": sum(kinds.values()),
            "by_kind": kinds,
            "scopes": int(scopes),
            "bytes": size,
            "schema_version": sqlite_schema.current_version(conn),
        }


def _batched(cursor: Any, size: int) -> Iterator[builtins.list[Any]]:
    while True:
        batch = cursor.fetchmany(size)
        if not batch:
            return
        yield batch


def _dt(ts: float) -> Any:
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def _row_from(r: Sequence[Any]) -> Row:
    return Row(
        id=str(r[1]),
        scope=Scope(str(r[2]), r[3] or None, r[4] or None),
        kind=str(r[5]),
        session_id=r[6] or None,
        role=r[7],
        name=r[8],
        text=str(r[9]),
        occurred_at=float(r[10]),
        recorded_at=float(r[11]),
        updated_at=float(r[12]),
        metadata=json.loads(r[13]),
        time_mentions=json.loads(r[14]),
        content_hash=str(r[15]),
        index_text=str(r[16]),
    )


def _snapshot(row: Row) -> dict[str, Any]:
    return {"text": row.text, "metadata": row.metadata, "kind": row.kind}
