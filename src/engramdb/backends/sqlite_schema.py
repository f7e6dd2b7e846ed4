"""Numbered, transactional schema migrations of the SQLite store.

Each migration runs in its own transaction together with the row that records it, so a store is
never left between two versions. A store written by a newer engramdb is refused, not guessed at.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from ..errors import StoreVersionError
from ..records import Keys, event_key
from .lexical import ANALYZER, encode_terms, key_terms

Step = str | Callable[[sqlite3.Connection], None]


def _v3_identity_and_jobs(conn: sqlite3.Connection) -> None:
    """Ids unique per tenant, event identity instead of a content hash, index keys as fields,
    the speaker's offset, and the job table of derived work."""
    conn.execute(
        """
        CREATE TABLE memories_v3 (
            rid INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            scope_id INTEGER NOT NULL REFERENCES scopes(id),
            kind TEXT NOT NULL,
            session_id TEXT NOT NULL DEFAULT '',
            role TEXT,
            name TEXT,
            text TEXT NOT NULL,
            key_own TEXT NOT NULL,
            key_context_name TEXT,
            key_context TEXT NOT NULL DEFAULT '',
            occurred_at REAL NOT NULL,
            tz_offset INTEGER,
            recorded_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            time_mentions TEXT NOT NULL DEFAULT '[]',
            dedupe_key TEXT,
            UNIQUE (tenant, id)
        )
        """
    )
    old = conn.execute(
        "SELECT m.rid, s.tenant, m.id, m.scope_id, m.kind, m.session_id, m.role, m.name, m.text, "
        "m.index_text, m.occurred_at, m.recorded_at, m.updated_at, m.metadata, m.time_mentions, "
        "m.content_hash FROM memories m JOIN scopes s ON s.id = m.scope_id ORDER BY m.rid"
    ).fetchall()
    conn.executemany(
        "INSERT INTO memories_v3 (rid, tenant, id, scope_id, kind, session_id, role, name, text, "
        "key_own, key_context_name, key_context, occurred_at, recorded_at, updated_at, metadata, "
        "time_mentions, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _v3_rows(conn, old),
    )
    for statement in (
        "DROP TABLE memories",
        "ALTER TABLE memories_v3 RENAME TO memories",
        "CREATE UNIQUE INDEX memories_dedupe ON memories (scope_id, dedupe_key) "
        "WHERE dedupe_key IS NOT NULL",
        "CREATE INDEX memories_scope_order ON memories (scope_id, rid)",
        "CREATE INDEX memories_session_order ON memories (scope_id, session_id, occurred_at, rid)",
        "CREATE INDEX history_tenant ON history (tenant, memory_id, id)",
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            memory_rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (memory_rid, kind)
        )
        """,
        "CREATE INDEX jobs_tenant ON jobs (tenant, id)",
        # Records written before v3 have vectors; any without one becomes pending work.
        "INSERT INTO jobs (tenant, kind, memory_rid, created_at, updated_at) "
        "SELECT m.tenant, 'embed', m.rid, strftime('%s','now'), strftime('%s','now') "
        "FROM memories m WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.rid = m.rid)",
    ):
        conn.execute(statement)


_OLD_MARK = "\n(after "


def _v3_rows(conn: sqlite3.Connection, old: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    # Before v3 a message without its own timestamp was placed a millisecond after the one
    # before it, so every stored message's instant is the one a re-sent batch gives it again:
    # each gets an event identity, from the text it was added with (a correction keeps it).
    created = {
        str(memory_id): json.loads(after).get("text")
        for memory_id, after in conn.execute(
            "SELECT memory_id, after FROM history WHERE event = 'create' AND after IS NOT NULL"
        )
    }
    seen: set[tuple[object, str]] = set()
    rows = []
    for r in old:
        row = list(_v3_row(r, created.get(str(r[2]))))
        key = (r[3], str(row[-1]))
        if row[-1] is None or key in seen:  # the same event stored twice by the old code
            row[-1] = None
        seen.add(key)
        rows.append(tuple(row))
    return rows


def _v3_row(r: tuple[object, ...], original: object) -> tuple[object, ...]:
    (rid, tenant, ident, scope_id, kind, session, role, name, text, index_text) = r[:10]
    occurred, recorded, updated, metadata, mentions = r[10:15]
    own, mark, quoted = str(index_text).rpartition(_OLD_MARK)
    context_name: str | None = None
    context = ""
    if not mark:
        own = str(index_text)
    else:
        who, sep, rest = quoted.removesuffix(")").partition(": ")
        context_name, context = (who, rest) if sep else (None, who)
    said = original if isinstance(original, str) else str(text)
    dedupe = (
        event_key(str(session) or None, role, name, said, float(occurred))  # type: ignore[arg-type]
        if kind == "message"
        else None
    )
    return (
        rid, tenant, ident, scope_id, kind, session, role, name, text, own, context_name,
        context, occurred, recorded, updated, metadata, mentions, dedupe,
    )  # fmt: skip


def _v4_lexical_terms(conn: sqlite3.Connection) -> None:
    """Each record's analysed lexical key beside it, so that loading the BM25 index reads terms
    instead of stemming every key again (most of a 4 s cold start at 100k memories). A row per
    record that cascades with it: a delete takes its terms in the same transaction. (A snapshot
    of a whole scope's index would load faster still, but every write makes it stale, and it
    would have to be rewritten, or dropped by every delete, to keep deleted words out of the
    file.)"""
    conn.execute(
        """
        CREATE TABLE lexical_terms (
            rid INTEGER PRIMARY KEY REFERENCES memories(rid) ON DELETE CASCADE,
            terms BLOB NOT NULL
        )
        """
    )
    analyse(conn)
    # Loading a scope's indexes reads every record's id, time and kind in row order: from the
    # index alone now, not from the table's pages (a quarter faster at 100k memories).
    conn.execute("DROP INDEX memories_scope_order")
    conn.execute(
        "CREATE INDEX memories_scope_order ON memories (scope_id, rid, occurred_at, kind, id)"
    )


def analyse(conn: sqlite3.Connection) -> None:
    """(Re)write every record's lexical terms with this code's analysis, and record which analysis
    that was. Runs inside the caller's transaction."""
    after = 0
    while batch := conn.execute(
        "SELECT rid, key_own, key_context_name, key_context FROM memories WHERE rid > ? "
        "ORDER BY rid LIMIT 2000",
        (after,),
    ).fetchall():
        conn.executemany(
            "INSERT INTO lexical_terms (rid, terms) VALUES (?, ?) "
            "ON CONFLICT (rid) DO UPDATE SET terms = excluded.terms",
            [(r[0], encode_terms(key_terms(Keys(r[1], r[2], r[3])))) for r in batch],
        )
        after = batch[-1][0]
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('lexical_analyzer', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (ANALYZER,),
    )


def ensure_analysis(conn: sqlite3.Connection) -> bool:
    """Re-analyse a store whose persisted terms came from another analysis (an engramdb whose
    tokens differ); returns whether it did. The scopes' versions move, so every process reloads
    its lexical indexes."""
    if _analyzer(conn) == ANALYZER:
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _analyzer(conn) == ANALYZER:  # another process did it meanwhile
            conn.execute("COMMIT")
            return False
        analyse(conn)
        conn.execute("UPDATE scopes SET version = version + 1")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _analyzer(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'lexical_analyzer'").fetchone()
    return None if row is None else str(row[0])


MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
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
    (3, "tenant ids, event identity, key fields, jobs", _v3_identity_and_jobs),
    (4, "lexical terms per record", _v4_lexical_terms),
    (
        5,
        "facts, entities, mentions",
        """
        CREATE TABLE facts (
            memory_rid INTEGER PRIMARY KEY REFERENCES memories(rid) ON DELETE CASCADE,
            scope_id INTEGER NOT NULL REFERENCES scopes(id),
            subject TEXT NOT NULL,
            subject_norm TEXT NOT NULL,
            attribute TEXT NOT NULL,
            value TEXT NOT NULL,
            value_norm TEXT NOT NULL,
            claim_kind TEXT NOT NULL,
            single INTEGER NOT NULL,
            ends INTEGER NOT NULL,
            valid_from REAL NOT NULL,
            valid_to REAL,
            expired_at REAL,
            superseded_by TEXT,
            stated_to REAL,
            confidence REAL NOT NULL
        );
        CREATE INDEX facts_subject ON facts (scope_id, subject_norm, attribute, value_norm);
        CREATE INDEX facts_current ON facts (scope_id, valid_to);
        CREATE TABLE entities (
            rid INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            scope_id INTEGER NOT NULL REFERENCES scopes(id),
            name TEXT NOT NULL,
            norm TEXT NOT NULL,
            type TEXT NOT NULL,
            aliases TEXT NOT NULL DEFAULT '[]',
            relation TEXT,
            relation_of TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (tenant, id),
            UNIQUE (scope_id, norm)
        );
        CREATE TABLE mentions (
            entity_rid INTEGER NOT NULL REFERENCES entities(rid) ON DELETE CASCADE,
            memory_rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            PRIMARY KEY (entity_rid, memory_rid)
        );
        CREATE INDEX mentions_memory ON mentions (memory_rid);
        CREATE INDEX sources_source ON sources (source_rid)
        """,
    ),
    (
        6,
        "api keys, webhooks, deliveries, event feed, archive",
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL,
            prefix TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            cursor INTEGER NOT NULL
        );
        CREATE INDEX webhooks_tenant ON webhooks (tenant, created_at);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            webhook_id TEXT NOT NULL,
            event_id INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER,
            error TEXT,
            at REAL NOT NULL
        );
        CREATE INDEX deliveries_webhook ON deliveries (tenant, webhook_id, id);
        CREATE INDEX history_feed ON history (tenant, id);
        ALTER TABLE memories ADD COLUMN archived_at REAL
        """,
    ),
    (
        7,
        "job leases for workers",
        """
        ALTER TABLE jobs ADD COLUMN leased_until REAL;
        ALTER TABLE jobs ADD COLUMN leased_by TEXT;
        CREATE INDEX jobs_kind ON jobs (kind, id)
        """,
    ),
    (
        8,
        "timeline order",
        # The order things happened in, per scope: Store.timeline reads pages of it. (Version 1
        # had (scope_id, occurred_at); the table rebuild of version 3 dropped it.)
        """
        CREATE INDEX memories_scope_time ON memories (scope_id, occurred_at, rid)
        """,
    ),
    (
        9,
        "webhook delivery leases",
        # One server process delivers a subscription at a time (several share one store).
        """
        ALTER TABLE webhooks ADD COLUMN leased_by TEXT;
        ALTER TABLE webhooks ADD COLUMN leased_until REAL
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
    # A table rebuild drops the old table: with foreign keys on, that would cascade into the
    # tables that point at it. Off for the migration (it can only change outside a transaction),
    # checked before the commit.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for version, name, step in MIGRATIONS:
            if version > found:
                _apply(conn, version, name, step)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return found


def _apply(conn: sqlite3.Connection, version: int, name: str, step: Step) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if current_version(conn) >= version:  # another process applied it meanwhile
            conn.execute("COMMIT")
            return
        if callable(step):
            step(conn)
        else:
            for statement in _statements(step):
                conn.execute(statement)
        if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise sqlite3.IntegrityError(f"migration {version} broke a foreign key")
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, time.time()),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> list[str]:
    # executescript() would commit implicitly; split so each migration stays one transaction.
    return [s.strip() for s in sql.split(";") if s.strip()]
