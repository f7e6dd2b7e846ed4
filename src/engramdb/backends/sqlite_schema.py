"""Numbered, transactional schema migrations of the SQLite store.

Each migration runs in its own transaction together with the row that records it, so a store is
never left between two versions. A store written by a newer engramdb is refused, not guessed at.
"""

from __future__ import annotations

import sqlite3
import time

from ..errors import StoreVersionError

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "initial",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE scopes (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (tenant, user_id, agent_id)
        );
        CREATE TABLE memories (
            rid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            scope_id INTEGER NOT NULL REFERENCES scopes(id),
            kind TEXT NOT NULL,
            session_id TEXT NOT NULL DEFAULT '',
            role TEXT,
            name TEXT,
            text TEXT NOT NULL,
            index_text TEXT NOT NULL,
            occurred_at REAL NOT NULL,
            recorded_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            time_mentions TEXT NOT NULL DEFAULT '[]',
            content_hash TEXT NOT NULL
        );
        CREATE UNIQUE INDEX memories_dedupe ON memories (scope_id, session_id, content_hash);
        CREATE INDEX memories_scope_time ON memories (scope_id, occurred_at);
        CREATE INDEX memories_session_order ON memories (scope_id, session_id, occurred_at, rid);
        CREATE TABLE sources (
            memory_rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            source_rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            PRIMARY KEY (memory_rid, source_rid)
        );
        CREATE TABLE vectors (
            rid INTEGER PRIMARY KEY REFERENCES memories(rid) ON DELETE CASCADE,
            embed_hash TEXT NOT NULL,
            vec BLOB NOT NULL
        );
        CREATE INDEX vectors_hash ON vectors (embed_hash);
        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            memory_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            event TEXT NOT NULL,
            before TEXT,
            after TEXT,
            actor TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX history_memory ON history (memory_id, id);
        CREATE VIRTUAL TABLE memories_fts USING fts5(
            scope, body, content = '', tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    ),
    (
        2,
        "in-memory lexical index",
        # BM25 moved to an in-memory index derived from memories.index_text (backends/lexical.py)
        """
        DROP TABLE memories_fts;
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the store (0 for an empty file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the store up to :data:`LATEST`; returns the version it was at.

    Raises:
        StoreVersionError: the store is newer than this code.
    """
    found = current_version(conn)
    if found > LATEST:
        raise StoreVersionError(path, found, LATEST)
    if found == 0:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
    for version, name, sql in MIGRATIONS:
        if version <= found:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _statements(sql: str) -> list[str]:
    # executescript() would commit implicitly; split so each migration stays one transaction.
    return [s.strip() for s in sql.split(";") if s.strip()]
