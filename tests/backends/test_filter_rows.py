"""Filters on stored fields (session, metadata) as masks of the row ids one query matched: the
answer kept per scope version stays right across this process's writes, another store's writes,
updates that move a record out of the filter, and a reused row id."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from engramdb.backends.positions import Window, _member
from engramdb.backends.sqlite import SQLiteStore
from engramdb.records import Filter, Keys, Row
from engramdb.types import Scope

DIM = 8
ANA = Scope("t1", "ana", None)
TOPIC_A = Filter(metadata=(("topic", "a"),))


def _row(text: str, topic: str, session: str = "s1") -> Row:
    return Row(
        id=str(uuid.uuid4()),
        scope=ANA,
        kind="message",
        session_id=session,
        role="user",
        name=None,
        text=text,
        occurred_at=1e9,
        recorded_at=1e9,
        updated_at=1e9,
        metadata={"topic": topic},
        time_mentions=[],
        keys=Keys(own=text),
    )


def _found(store: SQLiteStore, flt: Filter) -> set[str]:
    lexical = {i for i, _ in store.lexical(ANA, "kayak", 100, flt)}
    vector = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    (dense,) = store.dense(ANA, vector, 100, [flt])
    assert {i for i, _ in dense} == lexical  # every record here says "kayak" and has a vector
    return lexical


def _insert(store: SQLiteStore, *rows: Row) -> None:
    with store.transaction() as tx:
        tx.insert(rows, "test")
        tx.put_vectors("t1", [(r.id, r.keys, r.id, np.ones(DIM, np.float32)) for r in rows])


def test_filtered_answers_follow_this_process_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db", dim=DIM)
    try:
        a1, b1 = _row("kayak one", "a"), _row("kayak two", "b")
        _insert(store, a1, b1)
        assert _found(store, TOPIC_A) == {a1.id}
        a2, b2 = _row("kayak three", "a", "s2"), _row("kayak four", "b", "s2")
        _insert(store, a2, b2)
        assert _found(store, TOPIC_A) == {a1.id, a2.id}
        assert _found(store, Filter(session_id="s2")) == {a2.id, b2.id}
        a1.metadata = {"topic": "b"}  # moves out of the filter
        with store.transaction() as tx:
            tx.update(a1, "test")
        assert _found(store, TOPIC_A) == {a2.id}
        with store.transaction() as tx:
            tx.delete("t1", [a2.id], "test")
        assert _found(store, TOPIC_A) == set()
    finally:
        store.close()


def test_a_reused_row_id_is_checked_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db", dim=DIM)
    try:
        base = _row("kayak base", "b")
        _insert(store, base)
        last = _row("kayak last", "a")
        _insert(store, last)
        assert _found(store, TOPIC_A) == {last.id}
        with store.transaction() as tx:
            tx.delete("t1", [last.id], "test")
        reuse = _row("kayak reuse", "b")  # SQLite gives it the row id that was freed
        _insert(store, reuse)
        assert _found(store, TOPIC_A) == set()
        assert _found(store, Filter(metadata=(("topic", "b"),))) == {base.id, reuse.id}
    finally:
        store.close()


def test_another_stores_writes_are_read_afresh(tmp_path: Path) -> None:
    mine, theirs = SQLiteStore(tmp_path / "f.db", dim=DIM), SQLiteStore(tmp_path / "f.db", dim=DIM)
    try:
        first = _row("kayak one", "a")
        _insert(mine, first)
        assert _found(mine, TOPIC_A) == {first.id}
        second = _row("kayak two", "a")
        _insert(theirs, second)
        assert _found(mine, TOPIC_A) == {first.id, second.id}
        first.metadata = {"topic": "c"}
        with theirs.transaction() as tx:
            tx.update(first, "test")
        assert _found(mine, TOPIC_A) == {second.id}
    finally:
        mine.close()
        theirs.close()


def test_many_filters_are_kept_and_the_oldest_dropped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db", dim=DIM)
    try:
        rows = [_row(f"kayak {i}", f"t{i}") for i in range(40)]
        _insert(store, *rows)
        for _ in range(2):
            for i, row in enumerate(rows):
                assert _found(store, Filter(metadata=(("topic", f"t{i}"),))) == {row.id}
    finally:
        store.close()


def test_membership_by_table_matches_isin() -> None:
    rng = np.random.default_rng(1)
    rids = rng.integers(1, 5000, size=3000)
    matched = np.unique(rng.integers(-3, 7000, size=1500))
    assert np.array_equal(_member(rids, matched), np.isin(rids, matched))
    assert Window(rids=matched).rids is matched


def test_this_process_writes_do_not_make_the_next_search_scan_the_scope(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db", dim=DIM)
    try:
        first = _row("kayak one", "a")
        _insert(store, first, _row("kayak two", "b"))
        assert _found(store, TOPIC_A) == {first.id}
        seen: list[str] = []
        store._reader().set_trace_callback(seen.append)
        second = _row("kayak three", "a")
        with store.transaction() as tx:  # as add() does: the episode, then its vector
            tx.insert([second], "test")
        with store.transaction() as tx:
            tx.put_vectors("t1", [(second.id, second.keys, "h", np.ones(DIM, np.float32))])
        assert _found(store, TOPIC_A) == {first.id, second.id}
        assert not [sql for sql in seen if "json_extract" in sql]  # carried, not read again
        for i in range(6):  # writes that no search reads: the answer is dropped, read later
            _insert(store, _row(f"kayak more {i}", "a"))
        assert len(_found(store, TOPIC_A)) == 8
        assert [sql for sql in seen if "json_extract" in sql]
    finally:
        store.close()


def test_membership_of_row_ids_far_apart_matches_isin() -> None:
    rids = np.array([5, 2**40, 7, -3], dtype=np.int64)
    matched = np.array([7, 2**40], dtype=np.int64)
    assert _member(rids, matched).tolist() == [False, True, True, False]
