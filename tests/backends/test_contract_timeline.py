# ruff: noqa: F811
"""The storage contract of the timeline (:meth:`Store.timeline`): a scope in the order things
happened, keyset-paged by (occurred_at, row id), under every filter. Runs on every backend of
``test_contract.BACKENDS`` through its fixture; the last tests read each backend's query plan to
prove that a page is read from an index in timeline order, not sorted out of the whole scope."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contract import ANA, BOB, OTHER_TENANT, _insert, _row, store  # noqa: F401

from engramdb.backends import Store, resolve_store
from engramdb.backends.base import encode_position, timeline_fingerprint
from engramdb.errors import InvalidCursor
from engramdb.records import Filter, Row
from engramdb.types import Scope

T0 = 1_700_000_000.0


def _page_all(store: Store, scope: Scope, flt: Filter, size: int) -> list[Row]:
    """Every record of the timeline, read ``size`` at a time."""
    found: list[Row] = []
    cursor = None
    while True:
        rows, cursor = store.timeline(scope, flt, size, cursor)
        assert len(rows) <= size
        assert rows or cursor is None  # a cursor never leads to an empty page's promise
        found += rows
        if cursor is None:
            return found


def _texts(rows: list[Row]) -> list[str]:
    return [r.text for r in rows]


# -- order and pages -------------------------------------------------------------------------------


def test_records_come_in_the_order_they_happened_and_ties_in_insertion_order(
    store: Store,
) -> None:
    # Recorded out of order; three of them at one instant, inserted c, a, b (their ids sort
    # a, b, c: the tie follows insertion, not the ids).
    def at(text: str, when: float) -> Row:
        return _row(ANA, text, when, ident=f"id-{text}")

    _insert(store, at("late", T0 + 50), at("c", T0 + 10))
    _insert(store, at("early", T0), at("a", T0 + 10))
    _insert(store, at("b", T0 + 10))
    for size in (1, 2, 3, 5, 100):
        assert _texts(_page_all(store, ANA, Filter(), size)) == ["early", "c", "a", "b", "late"]


def test_the_last_page_has_no_cursor_and_an_unknown_scope_is_empty(store: Store) -> None:
    _insert(store, *[_row(ANA, f"n{i}", T0 + i) for i in range(4)])
    rows, cursor = store.timeline(ANA, Filter(), 4, None)
    assert len(rows) == 4 and cursor is None
    rows, cursor = store.timeline(ANA, Filter(), 3, None)
    assert len(rows) == 3 and cursor is not None
    assert store.timeline(Scope("t1", "nobody", None), Filter(), 10, None) == ([], None)


def test_a_cursor_survives_deletes_around_it(store: Store) -> None:
    rows = [_row(ANA, f"n{i}", T0 + i // 2) for i in range(8)]  # pairs share an instant
    _insert(store, *rows)
    page, cursor = store.timeline(ANA, Filter(), 3, None)
    assert _texts(page) == ["n0", "n1", "n2"]
    with store.transaction() as tx:  # the record the cursor points at, and the next one
        tx.delete("t1", [rows[2].id, rows[3].id], "test")
    rest, cursor = store.timeline(ANA, Filter(), 10, cursor)
    assert _texts(rest) == ["n4", "n5", "n6", "n7"] and cursor is None


def test_a_record_written_behind_the_cursor_is_not_returned_and_one_ahead_is(
    store: Store,
) -> None:
    _insert(store, *[_row(ANA, f"n{i}", T0 + i) for i in range(4)])
    page, cursor = store.timeline(ANA, Filter(), 2, None)
    _insert(
        store, _row(ANA, "behind", T0 - 1), _row(ANA, "tie", T0 + 1), _row(ANA, "ahead", T0 + 9)
    )
    rest, _ = store.timeline(ANA, Filter(), 10, cursor)
    # "tie" shares n1's instant but was inserted after it: it sorts after n1, so it comes.
    assert _texts(page + rest) == ["n0", "n1", "tie", "n2", "n3", "ahead"]


# -- filters --------------------------------------------------------------------------------------


def test_every_filter_applies(store: Store) -> None:
    _insert(
        store,
        _row(ANA, "home s1", T0, session="s1", metadata={"topic": "home"}),
        _row(ANA, "work s2", T0 + 10, session="s2", metadata={"topic": "work"}),
        _row(ANA, "a fact", T0 + 20, kind="fact", session=None),
        _row(ANA, "home s2", T0 + 30, session="s2", metadata={"topic": "home"}),
        _row(ANA, "after", T0 + 40, session="s1"),
    )
    archived = _row(ANA, "put away", T0 + 25, session="s1")
    _insert(store, archived)
    with store.transaction() as tx:
        tx.set_archived("t1", archived.id, T0 + 100, "test")

    def texts(**fields: Any) -> list[str]:
        return _texts(_page_all(store, ANA, Filter(**fields), 2))

    assert texts(kinds=("message",)) == ["home s1", "work s2", "put away", "home s2", "after"]
    assert texts(kinds=("fact",)) == ["a fact"]
    # since includes its instant, until (the store's bound) excludes it.
    assert texts(since=T0 + 10, until=T0 + 30) == ["work s2", "a fact", "put away"]
    assert texts(session_id="s2") == ["work s2", "home s2"]
    assert texts(metadata=(("topic", "home"),)) == ["home s1", "home s2"]
    assert texts(archived=True) == ["put away"]
    assert "put away" not in texts(archived=False)
    assert texts(session_id="s1", kinds=("message",), since=T0 + 1) == ["put away", "after"]
    assert texts(since=T0 + 41) == []


def test_another_tenant_and_another_scope_see_nothing(store: Store) -> None:
    _insert(store, *[_row(ANA, f"ana {i}", T0 + i) for i in range(3)])
    _insert(store, _row(BOB, "bob", T0))
    assert store.timeline(OTHER_TENANT, Filter(), 10, None) == ([], None)
    assert _texts(_page_all(store, BOB, Filter(), 10)) == ["bob"]
    _, cursor = store.timeline(ANA, Filter(), 1, None)
    assert cursor is not None
    for scope in (OTHER_TENANT, BOB):
        with pytest.raises(InvalidCursor, match="another scope or filter"):
            store.timeline(scope, Filter(), 10, cursor)


# -- cursors --------------------------------------------------------------------------------------


def _forged(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "garbage", ["", "not-a-cursor", "eyJ2IjoxfQ", "%%%", "a" * 500, "é", _forged([1, 2])]
)
def test_garbage_cursors_are_refused(store: Store, garbage: str) -> None:
    _insert(store, _row(ANA, "x", T0))
    with pytest.raises(InvalidCursor, match="not a cursor engramdb handed out"):
        store.timeline(ANA, Filter(), 1, garbage)


def test_forged_positions_are_refused(store: Store) -> None:
    """A cursor with this timeline's fingerprint but a position no timeline writes."""
    _insert(store, _row(ANA, "x", T0))
    mark = timeline_fingerprint(ANA, Filter())
    for t, r in [(1, 1), ("1", 1), (1.5, -1), (1.5, 2**63), (1.5, True), (1.5, 1.5), (None, 1)]:
        with pytest.raises(InvalidCursor):
            store.timeline(ANA, Filter(), 1, _forged({"v": 1, "f": mark, "t": t, "r": r}))
    nan = base64.urlsafe_b64encode(f'{{"v":1,"f":"{mark}","t":NaN,"r":1}}'.encode()).decode()
    with pytest.raises(InvalidCursor):
        store.timeline(ANA, Filter(), 1, nan)
    # The same position, written as the store writes it, is accepted.
    assert store.timeline(ANA, Filter(), 1, encode_position(mark, T0 - 1, 0))[0]


def test_a_cursor_is_bound_to_its_scope_filter_and_period(store: Store) -> None:
    _insert(store, *[_row(ANA, f"n{i}", T0 + i) for i in range(3)])
    flt = Filter(kinds=("message",), since=T0)
    _, cursor = store.timeline(ANA, flt, 1, None)
    assert cursor is not None
    assert store.timeline(ANA, flt, 1, cursor)[0]  # the same timeline continues
    for other in (
        Filter(kinds=("message",)),
        Filter(kinds=("message",), since=T0 + 1),
        Filter(kinds=("message",), since=T0, until=T0 + 9),
        Filter(kinds=("fact",), since=T0),
        Filter(kinds=("message",), since=T0, session_id="s1"),
        Filter(kinds=("message",), since=T0, metadata=(("a", 1),)),
        Filter(kinds=("message",), since=T0, archived=False),
    ):
        with pytest.raises(InvalidCursor, match="another scope or filter"):
            store.timeline(ANA, other, 1, cursor)


def test_list_and_timeline_cursors_do_not_mix(store: Store) -> None:
    _insert(store, *[_row(ANA, f"n{i}", T0 + i) for i in range(3)])
    _, listed = store.list(ANA, Filter(), 1, None)
    _, timed = store.timeline(ANA, Filter(), 1, None)
    assert listed is not None and timed is not None
    with pytest.raises(InvalidCursor):
        store.timeline(ANA, Filter(), 1, listed)
    with pytest.raises(InvalidCursor):
        store.list(ANA, Filter(), 1, timed)


# -- property: paging to the end is the filtered scope, sorted ------------------------------------

_RECORD = st.tuples(
    st.integers(0, 6),  # instant: few values, so that ties are common
    st.sampled_from(["message", "fact"]),
    st.sampled_from(["s1", "s2"]),
    st.booleans(),  # metadata {"pin": true}
)
_FILTER = st.fixed_dictionaries(
    {},
    optional={
        "kinds": st.sampled_from([("message",), ("fact",), ("message", "fact")]),
        "since": st.integers(0, 6).map(lambda i: T0 + i),
        "until": st.integers(0, 7).map(lambda i: T0 + i),
        "session_id": st.sampled_from(["s1", "s2"]),
        "metadata": st.just((("pin", True),)),
    },
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=st.lists(_RECORD, max_size=25),
    fields=_FILTER,
    size=st.integers(1, 7),
    deleted=st.sets(st.integers(0, 24), max_size=5),
)
def test_paging_to_the_end_gives_the_filtered_records_in_order_once(
    store: Store,
    records: list[tuple[int, str, str, bool]],
    fields: dict[str, Any],
    size: int,
    deleted: set[int],
) -> None:
    scope = Scope("t1", f"p-{uuid.uuid4().hex}", None)  # each example its own scope
    rows = [
        _row(scope, f"r{i}", T0 + at, kind=kind, session=session,
             metadata={"pin": True} if pin else {"pin": False})
        for i, (at, kind, session, pin) in enumerate(records)
    ]  # fmt: skip
    if rows:
        _insert(store, *rows)
    gone = {rows[i].id for i in deleted if i < len(rows)}
    if gone:
        with store.transaction() as tx:
            tx.delete("t1", sorted(gone), "test")
    flt = Filter(**fields)

    def kept(row: Row) -> bool:
        return (
            row.id not in gone
            and (flt.kinds is None or row.kind in flt.kinds)
            and (flt.since is None or row.occurred_at >= flt.since)
            and (flt.until is None or row.occurred_at < flt.until)
            and (flt.session_id is None or row.session_id == flt.session_id)
            and all(row.metadata.get(k) == v for k, v in flt.metadata)
        )

    # Insertion order is the row id order: ties sort by position in ``rows``.
    expected = sorted(
        (i for i, row in enumerate(rows) if kept(row)), key=lambda i: (rows[i].occurred_at, i)
    )
    found = _page_all(store, scope, flt, size)
    assert [r.id for r in found] == [rows[i].id for i in expected]


# -- the plans: a page is read from an index in timeline order ------------------------------------


def _seed_big(store: Store) -> None:
    """Two scopes of 1,500 records each, times shuffled against insertion order."""
    for scope in (ANA, BOB):
        rows = [
            _row(scope, f"n{i}", T0 + (i * 7919) % 1500, session=f"s{i % 3}",
                 kind="fact" if i % 10 == 0 else "message")
            for i in range(1500)
        ]  # fmt: skip
        for start in range(0, len(rows), 500):
            _insert(store, *rows[start : start + 500])


_FILTERS = [
    Filter(),
    Filter(kinds=("message",)),
    Filter(kinds=("message",), since=T0 + 100, until=T0 + 900, archived=False),
    Filter(session_id="s1", kinds=("message",)),
]


@pytest.mark.parametrize("flt", _FILTERS)
def test_sqlite_reads_a_page_from_an_index_without_sorting(tmp_path: Path, flt: Filter) -> None:
    import sqlite3

    from engramdb.backends.sqlite import timeline_query

    path = tmp_path / "plan.db"
    opened = resolve_store(f"sqlite:///{path}", dim=8)
    try:
        _seed_big(opened)
    finally:
        opened.close()
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")  # the planner with statistics, as a long-lived store has them
        (scope_id,) = conn.execute("SELECT id FROM scopes WHERE user_id = 'ana'").fetchone()
        for after in (None, (T0 + 700, 900)):
            sql, params = timeline_query(scope_id, flt, after, 50)
            plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            index = "memories_session_order" if flt.session_id else "memories_scope_time"
            assert f"SEARCH m USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort of the scope
            if after is not None:
                assert "occurred_at>?" in plan, plan  # the seek, not a scan from the start


@pytest.mark.parametrize("flt", _FILTERS)
def test_postgres_reads_a_page_from_an_index_without_sorting(pg_dsn: str, flt: Filter) -> None:
    import psycopg

    from engramdb.backends.postgres_rows import timeline_query

    opened = resolve_store(pg_dsn, dim=8)
    try:
        _seed_big(opened)
    finally:
        opened.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
        found = conn.execute("SELECT id FROM scopes WHERE user_id = 'ana'").fetchone()
        assert found is not None
        for after in (None, (T0 + 700, 900)):
            sql, params = timeline_query("t1", found[0], flt, after, 50)
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
            assert row is not None
            nodes = list(_nodes(row[0][0]["Plan"]))
            scans = [n for n in nodes if n.get("Relation Name") == "memories" and n["Alias"] == "m"]
            index = "memories_session_order" if flt.session_id else "memories_scope_time"
            assert [n.get("Index Name") for n in scans] == [index], scans
            sorts = [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")]
            # The only sort allowed is a fact's own sources (src.occurred_at), a few rows.
            assert all(k.startswith("src.") for s in sorts for k in s["Sort Key"]), sorts
            if after is not None:
                assert "occurred_at" in scans[0]["Index Cond"], scans


def _nodes(plan: dict[str, Any]) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
