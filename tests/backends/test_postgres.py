"""What only the PostgreSQL store has to show: Memory end to end on it, the same rankings as
SQLite, the HNSW path, its connection pool, several stores and processes on one database,
a connection lost mid-write, NUL refused, and deleted text gone from every table. The storage
contract itself runs on it through ``test_contract.BACKENDS``."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_contract import ANA, DIM, OTHER_TENANT, _embed, _insert, _row, _vec

from engramdb import InvalidInput, Memory, StoreError, StoreVersionError
from engramdb.backends import Store, resolve_store
from engramdb.records import Filter, Keys

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pgvector")

from engramdb.backends import postgres_schema, postgres_search  # noqa: E402
from engramdb.backends.postgres import PostgresStore, redact  # noqa: E402


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[Store]:
    opened = resolve_store(pg_dsn, dim=DIM)
    yield opened
    opened.close()


def _sql(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()  # type: ignore[no-any-return]


# -- Memory end to end -----------------------------------------------------------------------------

CAROLINE = [
    {
        "role": "user",
        "name": "Caroline",
        "content": "I went to a LGBTQ support group yesterday.",
        "timestamp": "2023-05-08T13:56:00",
        "metadata": {"ref": "D1:3", "b": 1, "a": [1, 2]},
    },
    {"role": "assistant", "content": "That sounds powerful!"},
]


def test_memory_runs_end_to_end_on_postgres(pg_dsn: str) -> None:
    with Memory(pg_dsn, embedder="test") as mem:
        assert mem.path.startswith("postgresql://")
        mem.add(CAROLINE, user_id="caroline", session_id="s1")
        hits = mem.search("When did Caroline go to the support group?", user_id="caroline")
        assert hits[0].kind == "fact"
        assert hits[0].text == "Caroline went to a LGBTQ support group on 7 May 2023"
        turn = next(h for h in hits if h.kind == "message")
        assert turn.sources[0].metadata == {"ref": "D1:3", "b": 1, "a": [1, 2]}
        assert list(turn.sources[0].metadata) == ["ref", "b", "a"]  # stored as written
        context = mem.context("What has Caroline been up to?", user_id="caroline")
        assert "7 May 2023" in context
        mem.update(turn.id, text="I went to a chess club yesterday.")
        found = [(h.kind, h.text) for h in mem.search("chess club", user_id="caroline")][:2]
        assert found == [
            ("fact", "Caroline went to a chess club on 7 May 2023"),  # re-extracted
            ("message", "I went to a chess club yesterday."),
        ]
        mem.delete(turn.id)
        assert all(h.id != turn.id for h in mem.search("chess", user_id="caroline"))
        stats = mem.stats()
        assert stats["jobs_pending"] == 0 and stats["schema_version"] == postgres_schema.LATEST
    with Memory(pg_dsn, embedder="test") as again:  # a second open: no migration, same data
        assert again.search("support group", user_id="caroline")


def test_a_new_embedder_of_another_size_rebuilds_the_vector_column(pg_dsn: str) -> None:
    with Memory(pg_dsn, embedder="test:32") as mem:
        mem.add("I adopted a cat named Miso", user_id="u")
    with Memory(pg_dsn, embedder="test:48", reembed=True) as mem:
        assert "Miso" in mem.search("cat", user_id="u")[0].text
        assert mem.stats()["jobs_pending"] == 0
    assert set(_sql(pg_dsn, "SELECT vector_dims(embedding) FROM vectors")) == {(48,)}  # + a fact


# -- the same rankings as SQLite ------------------------------------------------------------------

_WORDS = ["kayak", "porto", "lisbon", "concert", "guitar", "sushi", "hiking", "coffee"]
_WORDS += ["sister", "chess", "garden", "rain"]


def _corpus(n: int) -> list[tuple[str, float, str, dict[str, object]]]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        words = rng.choice(_WORDS, size=int(rng.integers(2, 9)))
        text = " ".join(words) + (f" and {_WORDS[i % 12]}" if i % 3 else "")
        out.append((text, 1_700_000_000.0 + i * 60, f"s{i % 4}", {"n": int(i % 5)}))
    return out


def test_lexical_and_dense_rank_as_the_sqlite_store_does(pg: Store, tmp_path: Path) -> None:
    lite = resolve_store(f"sqlite:///{tmp_path / 'same.db'}", dim=DIM)
    rows = [_row(ANA, text, when, session=s, metadata=meta) for text, when, s, meta in _corpus(200)]
    for store in (lite, pg):
        _insert(store, *rows)
        _embed(store, "t1", rows)
        with store.transaction() as tx:  # an update and a delete move the statistics
            tx.set_keys("t1", rows[5].id, Keys(own="kayak kayak rain"))
            tx.delete("t1", [rows[9].id], "test")
    filters = [Filter(), Filter(session_id="s1"), Filter(since=1_700_003_000.0)]
    filters.append(Filter(metadata=(("n", 2),), until=1_700_009_000.0))
    for query in ("kayak", "porto concert", "sister's garden in the rain", "nothing here"):
        for flt in filters:
            # Every match, to compare whole lists: SQLite orders equal scores arbitrarily (its
            # top-k partition), PostgreSQL by position.
            want, got = lite.lexical(ANA, query, 500, flt), pg.lexical(ANA, query, 500, flt)
            assert dict(got).keys() == dict(want).keys(), (query, flt)
            assert all(np.isclose(dict(want)[i], s, rtol=1e-5) for i, s in got), (query, flt)
            assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    for seed in range(5):
        (want,) = lite.dense(ANA, _vec(100 + seed), 15, [Filter(session_id="s2")])
        (got,) = pg.dense(ANA, _vec(100 + seed), 15, [Filter(session_id="s2")])
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    lite.close()


def test_a_large_scope_goes_through_hnsw_and_still_fills_a_filtered_list(
    pg: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _row(ANA, f"note {i}", session=f"s{i % 10}", metadata={"n": i % 10}) for i in range(400)
    ]
    _insert(pg, *rows)
    _embed(pg, "t1", rows)
    narrow = [Filter(session_id="s3"), Filter(metadata=(("n", 3),))]  # the same 40 records
    allowed = {r.id for r in rows if r.session_id == "s3"}
    exact = pg.dense(ANA, _vec(3), 10, narrow)
    scanned: list[int] = []
    approximate = postgres_search._approximate

    def spy(*args: object) -> object:
        found = approximate(*args)  # type: ignore[arg-type]
        scanned.append(len(found))
        return found

    monkeypatch.setattr(postgres_search, "_approximate", spy)
    monkeypatch.setattr(postgres_search, "EXACT_MAX", 30)  # the scope, and each session, above
    for hits, want in zip(pg.dense(ANA, _vec(3), 10, narrow), exact, strict=True):
        assert {i for i, _ in hits} <= allowed
        assert len({i for i, _ in hits} & {i for i, _ in want}) >= 9  # recall of HNSW
    assert scanned[:2] == [10, 10]  # the index gave full lists: no fallback to the exact scan
    monkeypatch.setattr(postgres_search, "EXACT_MAX", 50)  # a session small enough to scan
    scanned.clear()
    assert pg.dense(ANA, _vec(3), 10, narrow[:1]) == exact[:1] and scanned == []


def _lexical_setup(pg: Store) -> tuple[list[Filter], list[str]]:
    rows = [_row(ANA, text, when, session=s, metadata=meta) for text, when, s, meta in _corpus(300)]
    rows.append(_row(ANA, "a rare xylophone beside the kayak"))
    _insert(pg, *rows)
    with pg.transaction() as tx:
        tx.set_keys("t1", rows[5].id, Keys(own="kayak kayak rain"))
        tx.delete("t1", [rows[9].id], "test")
    filters = [Filter(), Filter(session_id="s1"), Filter(metadata=(("n", 2),))]
    queries = ["kayak", "porto concert rain", "sister's garden in the rain", "xylophone kayak"]
    return filters, queries


def test_the_pruned_lexical_search_reading_every_posting_is_the_exact_one(
    pg: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    filters, queries = _lexical_setup(pg)
    want = {(q, i): pg.lexical(ANA, q, 50, f) for q in queries for i, f in enumerate(filters)}
    monkeypatch.setattr(postgres_search, "EXACT_POSTINGS", 0)  # every query takes the pruned path
    monkeypatch.setattr(postgres_search, "RESCORED_MIN", 10_000)  # ...and rescores every match
    pruned: list[int] = []
    real = postgres_search._pruned
    monkeypatch.setattr(postgres_search, "_pruned", lambda *a: pruned.append(1) or real(*a))
    for (query, i), hits in want.items():
        got = pg.lexical(ANA, query, 50, filters[i])
        assert [h for h, _ in got] == [h for h, _ in hits], (query, filters[i])
        assert np.allclose([s for _, s in got], [s for _, s in hits], rtol=1e-5)
    assert len(pruned) >= len(want)  # a filter that kept too few tried a wider pool, then exact


def test_the_pruned_lexical_search_reads_few_postings_and_keeps_the_best(
    pg: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    filters, queries = _lexical_setup(pg)
    want = {(q, i): pg.lexical(ANA, q, 10, f) for q in queries for i, f in enumerate(filters)}
    every = {k: dict(pg.lexical(ANA, k[0], 1000, filters[k[1]])) for k in want}
    for name, value in (("EXACT_POSTINGS", 0), ("FULL_POSTINGS", 5), ("TOP_POSTINGS", 15)):
        monkeypatch.setattr(postgres_search, name, value)
    monkeypatch.setattr(postgres_search, "RESCORED_MIN", 20)
    for (query, i), hits in want.items():
        got = pg.lexical(ANA, query, 10, filters[i])
        exact = every[(query, i)]
        assert len(got) == len(hits), (query, filters[i])  # a filter that kept too few: exact
        scores = dict(got)
        # Each hit is its exact BM25, in order; unfiltered, the best of all is found. (Under a
        # filter, the pruned search ranks the candidates the filter keeps: an approximation.)
        if i == 0:
            assert got[0][1] == pytest.approx(hits[0][1], rel=1e-5), query
        assert [s for _, s in got] == sorted(scores.values(), reverse=True)
        assert all(scores[h] == pytest.approx(exact[h], rel=1e-5) for h in scores)
    top = pg.lexical(ANA, "xylophone kayak", 1, Filter())
    assert top == want[("xylophone kayak", 0)][:1]  # the rare term's record, read in full


def test_document_frequencies_follow_writes_updates_and_deletes(pg: Store, pg_dsn: str) -> None:
    _lexical_setup(pg)
    counted = "SELECT scope_id, term, count(*) FROM lexical_terms GROUP BY 1, 2 ORDER BY 1, 2"
    kept = "SELECT scope_id, term, df FROM lexical_df ORDER BY 1, 2"
    assert _sql(pg_dsn, kept) == _sql(pg_dsn, counted)
    ids = [str(r[0]) for r in _sql(pg_dsn, "SELECT id FROM memories ORDER BY rid")]
    with pg.transaction() as tx:
        tx.delete("t1", ids[:150], "test")
        tx.set_keys("t1", ids[200], Keys(own="quokka"))
    assert _sql(pg_dsn, kept) == _sql(pg_dsn, counted)
    with pg.transaction() as tx:
        tx.delete("t1", ids[150:], "test")
    assert _sql(pg_dsn, "SELECT count(*) FROM lexical_df") == [(0,)]  # not even a word's hash


def test_migration_2_gives_a_database_weights_and_frequencies(pg: Store, pg_dsn: str) -> None:
    filters, queries = _lexical_setup(pg)
    want = {(q, i): pg.lexical(ANA, q, 20, f) for q in queries for i, f in enumerate(filters)}
    weights = "SELECT rid, term, w FROM lexical_terms ORDER BY 1, 2"
    before = _sql(pg_dsn, weights)
    pg.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # undo migration 2, then redo it
        conn.execute("DROP TABLE lexical_df")
        conn.execute("DROP INDEX lexical_terms_impact")
        conn.execute("ALTER TABLE lexical_terms DROP COLUMN w")
        version, _, step = postgres_schema.MIGRATIONS[1]
        assert version == 2
        with conn.transaction():
            step(conn, DIM)
    again = resolve_store(pg_dsn, dim=DIM)
    try:
        after = _sql(pg_dsn, weights)
        # Weights computed at the end differ from those of records written along the way (the
        # average length moved), rankings do not: they are exact.
        assert [r[:2] for r in after] == [r[:2] for r in before]
        assert all(np.isclose(a[2], b[2], rtol=0.3) for a, b in zip(after, before, strict=True))
        for (query, i), hits in want.items():
            assert again.lexical(ANA, query, 20, filters[i]) == hits
        assert _sql(pg_dsn, "SELECT count(*) FROM lexical_df")[0][0] > 0
    finally:
        again.close()


# -- connections, stores and processes ------------------------------------------------------------


def test_an_exhausted_pool_is_a_store_error_that_says_so(pg_dsn: str) -> None:
    store = resolve_store(pg_dsn + "&pool_size=1&pool_timeout=0.3", dim=DIM)
    try:
        with store.transaction(), pytest.raises(StoreError, match="pool_size"):
            store.get("t1", ["x"])  # the transaction holds the only connection
        assert store.get("t1", ["x"]) == []  # the connection is back
    finally:
        store.close()


def test_bad_pool_settings_are_refused(pg_dsn: str) -> None:
    for bad in ("&pool_size=0", "&pool_size=many", "&pool_timeout=-1"):
        with pytest.raises(StoreError, match="pool_"):
            resolve_store(pg_dsn + bad, dim=DIM)


def test_two_stores_on_one_database_see_each_others_writes(pg: Store, pg_dsn: str) -> None:
    other = resolve_store(pg_dsn, dim=DIM)
    try:
        row = _row(ANA, "kayak trip")
        _insert(pg, row)
        _embed(pg, "t1", [row])
        assert other.lexical(ANA, "kayak", 5, Filter())[0][0] == row.id
        assert other.dense(ANA, _vec(0), 5, [Filter()])[0][0][0] == row.id
        results: list[tuple[str, bool]] = []

        def retry(store: Store) -> None:
            results.extend(_insert(store, _row(ANA, "same event", timed=True)))

        threads = [threading.Thread(target=retry, args=(s,)) for s in (pg, other) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({i for i, _ in results}) == 1 and sum(c for _, c in results) == 1
    finally:
        other.close()


def test_writes_of_one_tenant_wait_for_each_other_and_others_do_not(pg: Store) -> None:
    holding, release = threading.Event(), threading.Event()
    done: dict[str, float] = {}

    def long_write() -> None:
        with pg.transaction() as tx:
            tx.insert([_row(ANA, "first")], "test")
            holding.set()
            release.wait(10)
        done["first"] = time.monotonic()

    def write(scope_name: str, scope: object) -> None:
        _insert(pg, _row(scope, scope_name))  # type: ignore[arg-type]
        done[scope_name] = time.monotonic()

    first = threading.Thread(target=long_write)
    first.start()
    assert holding.wait(10)
    same = threading.Thread(target=write, args=("same tenant", ANA))
    other = threading.Thread(target=write, args=("other tenant", OTHER_TENANT))
    same.start()
    other.start()
    other.join(10)
    assert "other tenant" in done and "same tenant" not in done
    release.set()
    first.join(10)
    same.join(10)
    assert done["same tenant"] >= done["first"]
    events = pg.events("t1", 0, 10)
    assert [e.after["text"] for e in events if e.after] == ["first", "same tenant"]


_OPEN = """
import sys, time
from engramdb.backends.postgres import PostgresStore
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
PostgresStore(sys.argv[1], dim=8).close()
"""


def test_two_processes_opening_a_new_database_migrate_it_once(pg_server: object) -> None:
    dsn = pg_server.database()  # type: ignore[attr-defined]
    start = str(time.time() + 1.5)  # both start migrating at the same instant
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN, dsn, start], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    found = _sql(dsn, "SELECT version FROM schema_migrations ORDER BY version")
    assert found == [(v,) for v, _, _ in postgres_schema.MIGRATIONS]
    pg_server.drop(dsn)  # type: ignore[attr-defined]


def test_a_database_of_a_newer_engramdb_is_refused(pg: Store, pg_dsn: str) -> None:
    _sql(pg_dsn, "INSERT INTO schema_migrations VALUES (999, 'future', 0) RETURNING version")
    with pytest.raises(StoreVersionError):
        resolve_store(pg_dsn, dim=DIM)


def test_a_connection_lost_mid_write_rolls_it_back_and_says_so(pg: Store, pg_dsn: str) -> None:
    row = _row(ANA, "never committed")
    with pytest.raises(StoreError, match="connection"), pg.transaction() as tx:
        tx.insert([row], "test")
        pid = tx._conn.info.backend_pid  # type: ignore[attr-defined]
        _sql(pg_dsn, f"SELECT pg_terminate_backend({pid})")
        tx.insert([_row(ANA, "after the drop")], "test")
    assert pg.get("t1", [row.id]) == []
    assert _insert(pg, _row(ANA, "the store carries on"))[0][1]  # a new connection serves it


_KILL_IDLE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND datname = current_database() AND state = 'idle'"
)


def test_a_connection_the_server_dropped_in_the_pool_is_replaced(pg: Store, pg_dsn: str) -> None:
    _insert(pg, row := _row(ANA, "kept"))
    _sql(pg_dsn, _KILL_IDLE)
    assert pg.get("t1", [row.id])[0].text == "kept"
    _sql(pg_dsn, _KILL_IDLE)
    assert _insert(pg, _row(ANA, "a write too"))[0][1]


def test_a_closed_store_refuses_reads_and_writes(pg: Store) -> None:
    pg.close()
    pg.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        pg.lexical(ANA, "x", 5, Filter())


# -- values PostgreSQL cannot hold, and what a delete leaves --------------------------------------


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("content", {"text": "a\x00b"}),
        ("metadata", {"metadata": {"k": ["x\x00"]}}),
        ("session_id", {"session_id": "s\x00"}),
    ],
)
def test_nul_is_refused_naming_the_field(pg: Store, field: str, change: dict[str, object]) -> None:
    row = _row(ANA, "fine")
    for name, value in change.items():
        setattr(row, name, value)
    with pytest.raises(InvalidInput, match=field), pg.transaction() as tx:
        tx.insert([row], "test")
    assert pg.list(ANA, Filter(), 5, None) == ([], None)


def test_a_delete_leaves_no_trace_of_the_text_in_any_table(pg: Store, pg_dsn: str) -> None:
    secret = "secret diagnosis " + uuid.uuid4().hex
    row = _row(ANA, secret, metadata={"note": secret})
    _insert(pg, row)
    _embed(pg, "t1", [row])
    with pg.transaction() as tx:
        tx.link_entities(ANA, [row.id], [])
        tx.delete("t1", [row.id], "test")
    tables = [str(t[0]) for t in _sql(pg_dsn, "SELECT tablename FROM pg_tables WHERE "
                                      "schemaname = current_schema()")]  # fmt: skip
    for table in tables:
        assert _sql(pg_dsn, f"SELECT 1 FROM {table} t WHERE t::text LIKE '%{secret[-32:]}%'") == []
    assert pg.stats("t1")["memories"] == 0


def test_the_url_shown_has_no_password() -> None:
    assert redact("postgresql://ana:s3cret@db:5432/mem?sslmode=require") == (
        "postgresql://ana:***@db:5432/mem?sslmode=require"
    )
    assert redact("postgresql://ana@db/mem") == "postgresql://ana@db/mem"


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=re.escape("cannot open postgresql://u:***@127.0.0.1:1/x")):
        PostgresStore("postgresql://u:pw@127.0.0.1:1/x?connect_timeout=2", dim=DIM)
