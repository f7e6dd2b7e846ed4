"""A store written by the previous schema (2) opens, migrates in one transaction, and keeps its
memories, identity, keys and vectors."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np

from engramdb import Memory
from engramdb.backends import sqlite_schema


def _old_hash(role: str, name: str | None, content: str, stamp: str | None) -> str:
    payload = json.dumps([role, name, content, stamp], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _v2_store(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for version, name, sql in sqlite_schema.MIGRATIONS[:2]:
        assert isinstance(sql, str)
        for statement in sqlite_schema._statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.execute("INSERT INTO meta VALUES ('embedder', 'test:hash-64')")
    conn.execute(
        "INSERT INTO scopes (tenant, user_id, agent_id, created_at) VALUES ('default', 'u', '', 0)"
    )
    rows = [
        # timed: the caller gave "2024-05-28T09:00:00Z"
        ("m1", "user", "Ana", "Did you like the concert?", "Ana: Did you like the concert?",
         _old_hash("user", "Ana", "Did you like the concert?", "2024-05-28T09:00:00Z"),
         1716886800.0),
        # untimed reply, keyed with the turn before it
        ("m2", "assistant", None, "Loved it!", "Loved it!\n(after Ana: Did you like the concert?)",
         _old_hash("assistant", None, "Loved it!", None), 1716886800.001),
    ]  # fmt: skip
    for rid, (ident, role, name, text, index_text, chash, when) in enumerate(rows, start=1):
        conn.execute(
            "INSERT INTO memories (rid, id, scope_id, kind, session_id, role, name, text, "
            "index_text, occurred_at, recorded_at, updated_at, metadata, time_mentions, "
            "content_hash) VALUES (?, ?, 1, 'message', 's', ?, ?, ?, ?, ?, ?, ?, '{}', '[]', ?)",
            (rid, ident, role, name, text, index_text, when, when, when, chash),
        )
        conn.execute(
            "INSERT INTO history (memory_id, tenant, event, actor, at) "
            "VALUES (?, 'default', 'create', 'api', 0)",
            (ident,),
        )
    # m1 has a vector, m2 lost its own (as if the process had died before embedding it)
    vec = np.ones(64, dtype=np.float32) / 8
    conn.execute("INSERT INTO vectors VALUES (1, 'h', ?)", (vec.tobytes(),))
    conn.close()


def test_a_v2_store_migrates_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v2_store(path)
    with Memory(path, embedder="test:64") as mem:
        assert mem.stats()["schema_version"] == sqlite_schema.LATEST
        assert [r.text for r in mem.list(user_id="u").items] == [
            "Did you like the concert?",
            "Loved it!",
        ]
        assert [e.event for e in mem.history("m1")] == ["create"]
        # the reply that had no vector became pending work, and is finished by process()
        assert mem.stats()["jobs_pending"] == 1
        assert mem.process().done == 1
        # identity: the timed message is the same event again; the untimed one is new
        same = mem.add(
            {"role": "user", "name": "Ana", "content": "Did you like the concert?",
             "timestamp": "2024-05-28T11:00:00+02:00"},
            user_id="u", session_id="s",
        )  # fmt: skip
        assert same == ["m1"]
        assert mem.search("concert", user_id="u", limit=2)[0].id in {"m1", "m2"}
    with sqlite3.connect(path) as conn:
        keys = conn.execute(
            "SELECT key_own, key_context_name, key_context FROM memories WHERE id = 'm2'"
        ).fetchone()
        assert keys == ("Loved it!", "Ana", "Did you like the concert?")
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
