"""The storage contract, run against every backend through the ``store`` fixture.

A new backend (PostgreSQL) adds itself to ``BACKENDS`` and must pass this file unchanged. The
tests talk to the store only through :class:`engramdb.backends.base.Store` and
:class:`~engramdb.backends.base.Transaction`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engramdb.backends import Store, resolve_store
from engramdb.errors import IdConflict, InvalidCursor, StoreError
from engramdb.records import Filter, Keys, Row, event_key
from engramdb.types import Scope

DIM = 8
BACKENDS = ["sqlite", "postgres"]
ANA = Scope("t1", "ana", None)
BOB = Scope("t1", "bob", None)
OTHER_TENANT = Scope("t2", "ana", None)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = resolve_store(f"sqlite:///{tmp_path / 'contract.db'}", dim=DIM)
    else:
        opened = resolve_store(request.getfixturevalue("pg_dsn"), dim=DIM)
    yield opened
    opened.close()


def _row(
    scope: Scope,
    text: str,
    when: float = 1_700_000_000.0,
    *,
    ident: str | None = None,
    session: str | None = "s1",
    kind: str = "message",
    timed: bool = False,
    metadata: dict[str, object] | None = None,
) -> Row:
    return Row(
        id=ident or str(uuid.uuid4()),
        scope=scope,
        kind=kind,
        session_id=session,
        role="user",
        name=None,
        text=text,
        occurred_at=when,
        recorded_at=when,
        updated_at=when,
        metadata=metadata or {},
        time_mentions=[],
        keys=Keys(own=text),
        dedupe_key=event_key(session, "user", None, text, when) if timed else None,
    )


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _insert(store: Store, *rows: Row) -> list[tuple[str, bool]]:
    with store.transaction() as tx:
        return tx.insert(rows, "test")


def _embed(store: Store, tenant: str, rows: list[Row]) -> None:
    with store.transaction() as tx:
        tx.put_vectors(tenant, [(r.id, r.keys, f"h{i}", _vec(i)) for i, r in enumerate(rows)])


# -- records and identity ------------------------------------------------------------------------


def test_inserted_records_come_back_in_their_tenant_only(store: Store) -> None:
    row = _row(ANA, "I moved to Porto", metadata={"topic": "home"})
    assert _insert(store, row) == [(row.id, True)]
    (got,) = store.get("t1", [row.id])
    assert (got.text, got.scope, got.metadata, got.keys) == (
        row.text,
        ANA,
        {"topic": "home"},
        row.keys,
    )
    assert store.get("t2", [row.id]) == []
    assert [e.event for e in store.history("t1", row.id)] == ["create"]
    assert store.history("t2", row.id) == []


def test_the_same_id_may_live_in_two_tenants(store: Store) -> None:
    ident = str(uuid.uuid4())
    _insert(store, _row(ANA, "in tenant one", ident=ident))
    _insert(store, _row(OTHER_TENANT, "in tenant two", ident=ident))
    assert store.get("t1", [ident])[0].text == "in tenant one"
    assert store.get("t2", [ident])[0].text == "in tenant two"


def test_an_event_is_stored_once_and_an_untimed_message_always_again(store: Store) -> None:
    first = _row(ANA, "took my pills", timed=True)
    again = _row(ANA, "took my pills", timed=True)
    assert _insert(store, first, again) == [(first.id, True), (first.id, False)]
    untimed = [_row(ANA, "yes"), _row(ANA, "yes")]
    assert [created for _, created in _insert(store, *untimed)] == [True, True]


def test_a_reused_id_with_other_content_or_scope_is_a_conflict(store: Store) -> None:
    row = _row(ANA, "original", ident="m-1")
    _insert(store, row)
    assert _insert(store, _row(ANA, "original", ident="m-1")) == [("m-1", False)]
    with pytest.raises(IdConflict):
        _insert(store, _row(ANA, "changed", ident="m-1"))
    with pytest.raises(IdConflict):
        _insert(store, _row(BOB, "original", ident="m-1"))


def test_concurrent_retries_of_one_event_store_it_once(store: Store) -> None:
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            results.extend(_insert(store, _row(ANA, "same event", timed=True)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({ident for ident, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_a_transaction_that_raises_leaves_nothing(store: Store) -> None:
    row = _row(ANA, "half written")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert([row], "test")
        raise RuntimeError("crash in the middle")
    assert store.get("t1", [row.id]) == []
    assert store.lexical(ANA, "half written", 10, Filter()) == []
    assert store.jobs("t1", 10) == []


# -- derived work --------------------------------------------------------------------------------


def test_new_records_queue_an_embed_job_that_their_vector_finishes(store: Store) -> None:
    rows = [_row(ANA, f"note {i}") for i in range(3)]
    _insert(store, *rows)
    assert {j.memory_id for j in store.jobs("t1", 10)} == {r.id for r in rows}
    assert store.dense(ANA, _vec(0), 10, [Filter()]) == [[]]
    _embed(store, "t1", rows)
    assert store.jobs("t1", 10) == []
    (hits,) = store.dense(ANA, _vec(0), 10, [Filter()])
    assert hits[0][0] == rows[0].id


def test_a_vector_of_keys_that_changed_meanwhile_is_not_stored(store: Store) -> None:
    row = _row(ANA, "kayak")
    _insert(store, row)
    with store.transaction() as tx:
        tx.set_keys("t1", row.id, Keys(own="canoe"))
    with store.transaction() as tx:
        assert tx.put_vectors("t1", [(row.id, row.keys, "h", _vec(1))]) == 0
    assert [j.memory_id for j in store.jobs("t1", 10)] == [row.id]
    assert store.lexical(ANA, "canoe", 10, Filter())[0][0] == row.id
    assert store.lexical(ANA, "kayak", 10, Filter()) == []


def test_failed_jobs_stay_pending_with_their_error(store: Store) -> None:
    row = _row(ANA, "pending")
    _insert(store, row)
    with store.transaction() as tx:
        tx.fail_jobs("t1", [row.id], "EmbedderError: offline")
    (job,) = store.jobs("t1", 10)
    assert (job.attempts, job.last_error) == (1, "EmbedderError: offline")
    assert store.jobs("t2", 10) == []


# -- delete --------------------------------------------------------------------------------------


def test_delete_purges_the_record_its_vector_job_and_history_content(store: Store) -> None:
    keep, gone = _row(ANA, "keep this"), _row(ANA, "secret diagnosis")
    _insert(store, keep, gone)
    _embed(store, "t1", [keep, gone])
    with store.transaction() as tx:
        assert tx.delete("t2", [gone.id], "test") == 0  # another tenant cannot delete it
        assert tx.delete("t1", [gone.id], "test") == 1
    assert store.get("t1", [gone.id]) == []
    history = store.history("t1", gone.id)
    assert [e.event for e in history] == ["create", "delete"]
    assert all(e.before is None and e.after is None for e in history)
    assert store.lexical(ANA, "secret diagnosis", 10, Filter()) == []
    assert gone.id not in {i for i, _ in store.dense(ANA, _vec(1), 10, [Filter()])[0]}


def test_delete_scope_leaves_other_scopes(store: Store) -> None:
    _insert(store, _row(ANA, "ana one"), _row(ANA, "ana two"), _row(BOB, "bob one"))
    with store.transaction() as tx:
        assert len(tx.delete_scope(ANA, "test")) == 2
    assert store.list(ANA, Filter(), 10, None) == ([], None)
    assert len(store.list(BOB, Filter(), 10, None)[0]) == 1


# -- listing -------------------------------------------------------------------------------------


def _page_all(store: Store, scope: Scope, size: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = store.list(scope, Filter(), size, cursor)
        seen += [r.id for r in rows]
        if cursor is None:
            return seen


def test_keyset_pages_cover_the_scope_once_in_order(store: Store) -> None:
    rows = [_row(ANA, f"note {i}") for i in range(7)]
    _insert(store, *rows)
    assert _page_all(store, ANA, 3) == [r.id for r in rows]


def test_a_cursor_survives_the_deletion_of_its_record(store: Store) -> None:
    rows = [_row(ANA, f"note {i}") for i in range(6)]
    _insert(store, *rows)
    page, cursor = store.list(ANA, Filter(), 3, None)
    with store.transaction() as tx:
        tx.delete("t1", [page[-1].id], "test")
    rest, _ = store.list(ANA, Filter(), 10, cursor)
    assert [r.id for r in rest] == [r.id for r in rows[3:]]


@pytest.mark.parametrize("garbage", ["", "not-a-cursor", "eyJ2IjoxfQ", "%%%", "a" * 500])
def test_garbage_cursors_are_refused(store: Store, garbage: str) -> None:
    _insert(store, _row(ANA, "note"))
    with pytest.raises(InvalidCursor):
        store.list(ANA, Filter(), 10, garbage)


def test_a_cursor_of_another_scope_or_filter_is_refused(store: Store) -> None:
    _insert(store, *[_row(ANA, f"a{i}") for i in range(3)], *[_row(BOB, f"b{i}") for i in range(3)])
    _, cursor = store.list(ANA, Filter(), 1, None)
    with pytest.raises(InvalidCursor):
        store.list(BOB, Filter(), 1, cursor)
    with pytest.raises(InvalidCursor):
        store.list(ANA, Filter(session_id="s1"), 1, cursor)


# -- candidate search under one filter -----------------------------------------------------------


def test_filters_apply_to_both_indexes(store: Store) -> None:
    rows = [
        _row(ANA, "kayak trip one", 100.0, session="a", metadata={"topic": "sport", "n": 1}),
        _row(ANA, "kayak trip two", 200.0, session="b", metadata={"topic": "sport", "n": 2}),
        _row(ANA, "kayak fact", 300.0, session="a", kind="fact", metadata={"topic": "home"}),
    ]
    _insert(store, *rows)
    _embed(store, "t1", rows)
    cases = {
        Filter(): {0, 1, 2},
        Filter(since=150.0): {1, 2},
        Filter(until=250.0): {0, 1},
        Filter(session_id="a"): {0, 2},
        Filter(kinds=("fact",)): {2},
        Filter(metadata=(("topic", "sport"),)): {0, 1},
        Filter(metadata=(("n", 2),)): {1},
        Filter(metadata=(("topic", "sport"),), session_id="b"): {1},
    }
    for flt, expected in cases.items():
        want = {rows[i].id for i in expected}
        assert {i for i, _ in store.lexical(ANA, "kayak", 10, flt)} == want, flt
        assert {i for i, _ in store.dense(ANA, _vec(0), 10, [flt])[0]} == want, flt


def test_search_never_crosses_scopes_or_tenants(store: Store) -> None:
    rows = [_row(ANA, "kayak ana"), _row(BOB, "kayak bob"), _row(OTHER_TENANT, "kayak other")]
    _insert(store, *rows)
    _embed(store, "t1", rows[:2])
    _embed(store, "t2", rows[2:])
    assert [i for i, _ in store.lexical(ANA, "kayak", 10, Filter())] == [rows[0].id]
    assert [i for i, _ in store.dense(ANA, _vec(0), 10, [Filter()])[0]] == [rows[0].id]
    assert [i for i, _ in store.lexical(OTHER_TENANT, "kayak", 10, Filter())] == [rows[2].id]


# -- concurrency and lifecycle -------------------------------------------------------------------


def test_reads_proceed_while_a_transaction_is_open(store: Store) -> None:
    row = _row(ANA, "kayak before the write")
    _insert(store, row)
    _embed(store, "t1", [row])
    store.lexical(ANA, "kayak", 10, Filter())  # indexes loaded
    in_write, reads_done = threading.Event(), threading.Event()
    results: list[object] = []

    def writer() -> None:
        with store.transaction() as tx:
            tx.insert([_row(BOB, "a long write")], "test")
            in_write.set()
            # The write holds until the reads finished: they must not need it.
            results.append(reads_done.wait(timeout=20))

    t = threading.Thread(target=writer)
    t.start()
    assert in_write.wait(timeout=20)
    results.append(store.get("t1", [row.id])[0].text)
    results.append(store.lexical(ANA, "kayak", 10, Filter())[0][0])
    results.append(store.dense(ANA, _vec(0), 10, [Filter()])[0][0][0])
    results.append(store.list(ANA, Filter(), 10, None)[0][0].id)
    reads_done.set()
    t.join()
    assert results == [row.text, row.id, row.id, row.id, True]


def test_a_closed_store_refuses_calls(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError):
        store.get("t1", ["x"])
    with pytest.raises(StoreError), store.transaction():
        pass


def test_meta_is_kept(store: Store) -> None:
    assert store.get_meta("embedder") is None
    with store.transaction() as tx:
        tx.set_meta("embedder", "test:8")
    assert store.get_meta("embedder") == "test:8"
