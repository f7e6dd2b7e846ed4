"""The terms stored with each record (``lexical_terms``): a cold load reads them and ranks exactly
as an index built by analysing every key again; they leave with their record; another process's
writes are never served stale; a v3 store gains them in its migration."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engramdb.backends import sqlite_schema
from engramdb.backends.lexical import (
    ANALYZER,
    LexicalSet,
    encode_terms,
    key_terms,
    term_id,
    weighted_terms,
)
from engramdb.backends.positions import Places, Window
from engramdb.backends.sqlite import SQLiteStore
from engramdb.records import KIND_CODES, Filter, Keys, Row
from engramdb.text import tokens
from engramdb.types import Scope

DIM = 8
ANA = Scope("t1", "ana", None)
QUERIES = ["kayak trip", "pottery class Lisbon", "Ana", "number 7", "garden roof", "nothing here"]
WORDS = ["kayak", "pottery", "class", "Lisbon", "garden", "roof", "trip", "Ana", "Ben", "Osaka"]


def _row(
    text: str, *, quoted: str = "", name: str | None = None, when: float = 1.0e9, topic: str = "b"
) -> Row:
    return Row(
        id=str(uuid.uuid4()),
        scope=ANA,
        kind="message",
        session_id="s1",
        role="user",
        name=None,
        text=text,
        occurred_at=when,
        recorded_at=when,
        updated_at=when,
        metadata={"topic": topic},
        time_mentions=[],
        keys=Keys(own=text, context_name=name, context_text=quoted),
    )


def _texts(count: int) -> Iterator[tuple[str, str]]:
    rng = np.random.default_rng(5)
    for i in range(count):
        own = " ".join(rng.choice(WORDS, size=rng.integers(1, 8))) + f" number {i}"
        quoted = " ".join(rng.choice(WORDS, size=rng.integers(0, 5)))
        yield own, quoted


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lex.db"


def _fill(path: Path, count: int = 300) -> list[Row]:
    """A store changed in every way that writes terms: inserts, an update, new keys, deletes."""
    store = SQLiteStore(path, dim=DIM)
    rows = [_row(own, quoted=q, name="Ana" if q else None, when=1e9 + i)
            for i, (own, q) in enumerate(_texts(count))]  # fmt: skip
    with store.transaction() as tx:
        tx.insert(rows, "test")
    rows[0].text, rows[0].keys = "kayak kayak kayak", Keys("kayak kayak kayak")
    with store.transaction() as tx:
        tx.update(rows[0], "test")
        tx.set_keys("t1", rows[1].id, Keys("pottery roof", "Ben", "garden Lisbon"))
        tx.delete("t1", [r.id for r in rows[2:40:3]], "test")
    store.close()
    return rows


def _fresh_build(path: Path) -> LexicalSet:
    """The index the old way: every key analysed again, document by document."""
    conn = sqlite3.connect(path)
    lset = LexicalSet()
    lset.add(
        (ident, rid, when, KIND_CODES[kind], key_terms(Keys(own, name, context)))
        for ident, rid, when, kind, own, name, context in conn.execute(
            "SELECT id, rid, occurred_at, kind, key_own, key_context_name, key_context "
            "FROM memories ORDER BY rid"
        )
    )
    conn.close()
    return lset


def _lexical(store: SQLiteStore, query: str, flt: Filter | None = None) -> list[tuple[str, float]]:
    return store.lexical(ANA, query, 20, flt or Filter())


def test_a_cold_load_ranks_exactly_as_analysing_every_key_again(path: Path) -> None:
    _fill(path)
    fresh = _fresh_build(path)
    store = SQLiteStore(path, dim=DIM)
    try:
        for query in QUERIES:
            assert _lexical(store, query) == fresh.search(query, 20, Window()), query
    finally:
        store.close()


def test_records_without_stored_terms_are_analysed_at_load(path: Path) -> None:
    _fill(path)
    fresh = _fresh_build(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM lexical_terms WHERE rid % 2 = 0")  # missing
        conn.execute("UPDATE lexical_terms SET terms = x'0102' WHERE rid % 7 = 0")  # torn
    store = SQLiteStore(path, dim=DIM)
    try:
        for query in QUERIES:
            assert _lexical(store, query) == fresh.search(query, 20, Window()), query
    finally:
        store.close()


def test_bulk_load_equals_appending_the_same_documents() -> None:
    docs = [
        (f"d{i}", i + 1, float(i), i % 3, weighted_terms(own, quoted))
        for i, (own, quoted) in enumerate(_texts(500))
    ]
    appended = LexicalSet()
    appended.add(docs)
    loaded = LexicalSet()
    blobs = [encode_terms(d[4]) for d in docs]
    stored = np.frombuffer(b"".join(blobs), dtype=[("term", "<i8"), ("tf", "<f4")])
    counts = np.array([len(b) // 12 for b in blobs], dtype=np.int64)
    loaded.load(Places.of([d[:4] for d in docs]), stored, counts)
    loaded.add([("late", 999, 9.0, 0, weighted_terms("kayak kayak late", ""))])
    appended.add([("late", 999, 9.0, 0, weighted_terms("kayak kayak late", ""))])
    for query in [*QUERIES, "late kayak"]:
        for window in (Window(), Window(kinds=(1,)), Window(since=100.0, until=300.0)):
            assert loaded.search(query, 30, window) == appended.search(query, 30, window)
    with pytest.raises(ValueError):
        loaded.load(Places.of([]), stored[:0], counts[:0])  # only into an empty index


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_a_delete_takes_the_stored_terms_in_its_transaction(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    secret = _row("my locker code is zyxwquartz", quoted="which zyxwquartz")
    other = _row("an unrelated note about kayaks")
    with store.transaction() as tx:
        tx.insert([secret, other], "test")
    (stem,) = [t for t in tokens(secret.text) if t.startswith("zyxw")]
    trace = term_id(stem).to_bytes(8, "little", signed=True)
    assert trace in _files(folder)
    assert _lexical(store, "zyxwquartz")[0][0] == secret.id
    with store.transaction() as tx:
        tx.delete("t1", [secret.id], "test")
        conn = tx._conn  # the writer, inside the still open transaction
        assert conn.execute("SELECT COUNT(*) FROM lexical_terms").fetchone() == (1,)
    assert _lexical(store, "zyxwquartz") == []
    store.close()
    raw = _files(folder)
    assert trace not in raw
    assert b"zyxwquartz" not in raw


def test_writes_of_another_store_on_the_file_are_never_served_stale(path: Path) -> None:
    rows = _fill(path, 60)
    mine, theirs = SQLiteStore(path, dim=DIM), SQLiteStore(path, dim=DIM)
    topic_a = Filter(metadata=(("topic", "a"),))
    try:
        assert _lexical(mine, "kayak")  # loads my indexes
        assert _lexical(mine, "number", topic_a) == []  # and the rows matching the filter
        new = _row("a brand new xylophonist, number 1234", topic="a")
        with theirs.transaction() as tx:
            tx.insert([new], "test")
            tx.delete("t1", [rows[0].id], "test")
            tx.set_keys("t1", rows[4].id, Keys("renamed to marimbist"))
        assert [i for i, _ in _lexical(mine, "xylophonist")] == [new.id]
        assert rows[0].id not in {i for i, _ in _lexical(mine, "kayak")}
        assert [i for i, _ in _lexical(mine, "marimbist")] == [rows[4].id]
        assert [i for i, _ in _lexical(mine, "number", topic_a)] == [new.id]
    finally:
        mine.close()
        theirs.close()


def test_a_write_of_another_process_is_seen(path: Path) -> None:
    _fill(path, 30)
    store = SQLiteStore(path, dim=DIM)
    try:
        assert _lexical(store, "saxophonist") == []
        script = f"""
import uuid
from engramdb.backends.sqlite import SQLiteStore
from engramdb.records import Keys, Row
from engramdb.types import Scope
store = SQLiteStore({str(path)!r}, dim={DIM})
row = Row(id="from-afar", scope=Scope("t1", "ana", None), kind="message", session_id="s1",
          role="user", name=None, text="the saxophonist", occurred_at=1e9, recorded_at=1e9,
          updated_at=1e9, metadata={{}}, time_mentions=[], keys=Keys("the saxophonist"))
with store.transaction() as tx:
    tx.insert([row], "test")
store.close()
"""
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        assert [i for i, _ in _lexical(store, "saxophonist")] == ["from-afar"]
    finally:
        store.close()


def _v3_store(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for version, name, step in sqlite_schema.MIGRATIONS[:3]:
        sqlite_schema._apply(conn, version, name, step)
    conn.execute(
        "INSERT INTO scopes (tenant, user_id, agent_id, created_at) VALUES ('t1', 'ana', '', 0)"
    )
    for i, (own, quoted) in enumerate(_texts(50)):
        conn.execute(
            "INSERT INTO memories (tenant, id, scope_id, kind, key_own, key_context_name, "
            "key_context, text, occurred_at, recorded_at, updated_at) "
            "VALUES ('t1', ?, 1, 'message', ?, ?, ?, ?, ?, 0, 0)",
            (f"m{i}", own, "Ana" if quoted else None, quoted, own, 1e9 + i),
        )
    conn.close()


def test_a_v3_store_gains_the_terms_of_its_records(path: Path) -> None:
    _v3_store(path)
    fresh = _fresh_build(path)
    store = SQLiteStore(path, dim=DIM)
    try:
        assert store.stats("t1")["schema_version"] == sqlite_schema.LATEST
        for query in QUERIES:
            assert _lexical(store, query) == fresh.search(query, 20, Window()), query
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lexical_terms").fetchone() == (50,)
        assert conn.execute("SELECT value FROM meta WHERE key = 'lexical_analyzer'").fetchone() == (
            ANALYZER,
        )


def test_terms_of_another_analysis_are_analysed_again_on_open(path: Path) -> None:
    _fill(path, 40)
    fresh = _fresh_build(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE lexical_terms SET terms = x''")  # as if nothing matched
        conn.execute("UPDATE meta SET value = 'an older analysis' WHERE key = 'lexical_analyzer'")
    store = SQLiteStore(path, dim=DIM)
    try:
        for query in QUERIES:
            assert _lexical(store, query) == fresh.search(query, 20, Window()), query
    finally:
        store.close()


def test_the_analysis_is_the_one_its_name_stands_for() -> None:
    """Stored terms are only as good as the analysis that made them: if this fails, tokens or
    term weights changed, so give ``ANALYZER`` a new name (stores are re-analysed on open) and
    update the fingerprint."""
    sample = [
        Keys("Ana: I finally booked the kayak trip to Lisbon for 2024-05-28!"),
        Keys("Sounds great, Chloé!", "Ana", "the pottery classes were running late"),
        Keys("Ça coûte 300 € — naïve café, 東京 and Groß"),
    ]
    digest = hashlib.sha256(b"".join(encode_terms(key_terms(k)) for k in sample)).hexdigest()
    assert (ANALYZER, digest[:16]) == ("porter2+stopwords/context0.5/blake2b64", "c1cb50219a0fbe28")
