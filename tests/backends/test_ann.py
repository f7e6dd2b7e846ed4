"""The approximate dense index (HNSW) of big scopes and the index files beside the store.

Thresholds are lowered so that a few thousand vectors count as a big scope. The vectors have
the low-rank structure of real embeddings (i.i.d. random vectors defeat every HNSW).
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from engramdb.backends import ann, sqlite_cache, vectors
from engramdb.backends.lexical import term_id
from engramdb.backends.positions import Window
from engramdb.backends.sqlite import SQLiteStore
from engramdb.backends.sqlite_cache import read_file
from engramdb.backends.vectors import VectorSet
from engramdb.records import Filter, Keys, Row
from engramdb.types import Scope

pytest.importorskip("faiss", reason="the faiss extra is not installed")

DIM = 48
ANA = Scope("t1", "ana", None)
BIG = 3000
WORDS = ["kayak", "pottery", "garden", "Lisbon", "roof", "trip", "Osaka", "piano", "dentist"]


@pytest.fixture(autouse=True)
def small_big_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "ANN_MIN", 1000)
    monkeypatch.setattr(sqlite_cache, "CACHE_MIN", 1000)
    monkeypatch.setattr(ann, "EXACT_ROWS", 200)
    monkeypatch.setattr(sqlite_cache, "RESAVE_AFTER_S", 0.05)


def _vectors(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Unit vectors near a 12-dimensional subspace, with a few tight clusters."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(12, DIM))
    weights = rng.normal(size=(count, 12)) / np.arange(1, 13) ** 0.5
    out = weights @ basis + 0.15 * rng.normal(size=(count, DIM))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def _exact(vecs: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int) -> list[int]:
    return [int(i) for i in np.argsort(-(vecs @ query), kind="stable")[:k]]


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _big_set(vecs: npt.NDArray[np.float32]) -> VectorSet:
    vset = VectorSet(DIM)
    vset.add([(f"v{i}", i + 1, float(i), i % 2) for i in range(len(vecs))], vecs)
    vset.search_many(vecs[0], 10, [Window()])  # starts the build
    assert vset.ann_ready.wait(120)
    return vset


def test_hnsw_results_agree_with_exact_search() -> None:
    vecs = _vectors(BIG)
    vset = _big_set(vecs)
    queries = _vectors(40, seed=1)
    recall = []
    for query in queries:
        (found,) = vset.search_many(query, 10, [Window()])
        want = {f"v{i}" for i in _exact(vecs, query, 10)}
        recall.append(len(want & {i for i, _ in found}) / 10)
        scores = [s for _, s in found]
        assert scores == sorted(scores, reverse=True)
        for ident, score in found:  # exact scores, from the float32 matrix
            assert score == pytest.approx(float(vecs[int(ident[1:])] @ query), abs=1e-5)
    assert np.mean(recall) >= 0.9


def test_filters_hold_through_the_approximate_index() -> None:
    vecs = _vectors(BIG)
    vset = _big_set(vecs)
    query = _vectors(1, seed=2)[0]
    half = Window(since=float(BIG // 2))
    odd = Window(kinds=(1,))
    few = Window(rids=np.array([5, 77, 1500, 2999], dtype=np.int64))  # narrow: scanned exactly
    got_half, got_odd, got_few = vset.search_many(query, 20, [half, odd, few])
    assert len(got_half) == 20 and all(int(i[1:]) >= BIG // 2 for i, _ in got_half)
    assert len(got_odd) == 20 and all(int(i[1:]) % 2 == 1 for i, _ in got_odd)
    want_few = sorted([4, 76, 1499, 2998], key=lambda i: -float(vecs[i] @ query))
    assert [i for i, _ in got_few] == [f"v{i}" for i in want_few]
    exact_half = _exact(vecs[BIG // 2 :], query, 20)
    overlap = {f"v{i + BIG // 2}" for i in exact_half} & {i for i, _ in got_half}
    assert len(overlap) >= 16


def test_appends_after_the_build_are_found_and_removals_are_not() -> None:
    vecs = _vectors(BIG)
    vset = _big_set(vecs)
    extra = _vectors(5, seed=9)
    vset.add([(f"new{i}", BIG + 1 + i, 0.0, 0) for i in range(5)], extra)
    for i, vec in enumerate(extra):
        assert vset.search_many(vec, 1, [Window()])[0][0][0] == f"new{i}"
    best = vset.search_many(vecs[7], 3, [Window()])[0][0][0]
    vset.remove([best])
    assert best not in {i for i, _ in vset.search_many(vecs[7], 50, [Window()])[0]}


def test_many_removals_rebuild_the_index_over_the_live_vectors() -> None:
    vecs = _vectors(BIG)
    vset = _big_set(vecs)
    first = vset._ann
    vset.remove([f"v{i}" for i in range(0, BIG, 3)])  # a third: past the tombstone share
    vset.search_many(vecs[1], 10, [Window()])
    _wait(lambda: vset._ann is not first and vset._building is None, "the rebuild")
    assert vset._ann is not None and vset._ann.count == len(vset)
    found = {i for i, _ in vset.search_many(vecs[1], 30, [Window()])[0]}
    assert found and all(int(i[1:]) % 3 for i in found)


def test_without_faiss_big_scopes_are_searched_exactly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ann, "_faiss", None)
    monkeypatch.setattr(ann, "_faiss_missing", True)
    monkeypatch.setattr(vectors, "_warned_no_faiss", False)
    vecs = _vectors(BIG)
    vset = VectorSet(DIM)
    vset.add([(f"v{i}", i + 1, 0.0, 0) for i in range(BIG)], vecs)
    with caplog.at_level(logging.INFO, logger="engramdb"):
        for query in _vectors(3, seed=4):
            found = vset.search_many(query, 10, [Window()])[0]
            assert [i for i, _ in found] == [f"v{i}" for i in _exact(vecs, query, 10)]
    assert vset._ann is None and not vset.ann_ready.is_set()
    assert sum("engramdb[faiss]" in r.getMessage() for r in caplog.records) == 1


# -- through the store: index files ----------------------------------------------------------------


def _rows(count: int, start: int = 0) -> list[Row]:
    rng = np.random.default_rng(start)
    rows = []
    for i in range(start, start + count):
        text = " ".join(rng.choice(WORDS, size=4)) + f" note {i}"
        rows.append(
            Row(
                id=str(uuid.UUID(int=i + 1)),
                scope=ANA,
                kind="message",
                session_id=f"s{i // 50}",
                role="user",
                name=None,
                text=text,
                occurred_at=1e9 + i,
                recorded_at=1e9 + i,
                updated_at=1e9 + i,
                metadata={"half": i % 2},
                time_mentions=[],
                keys=Keys(own=text),
            )
        )
    return rows


def _store_with(path: Path, rows: list[Row], vecs: npt.NDArray[np.float32]) -> SQLiteStore:
    store = SQLiteStore(path, dim=DIM)
    with store.transaction() as tx:
        tx.insert(rows, "test")
    items = [(r.id, r.keys, f"h{r.id}", v) for r, v in zip(rows, vecs, strict=True)]
    with store.transaction() as tx:
        tx.put_vectors("t1", items)
    return store


def _index_files(folder: Path, kind: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if f"-{kind}-" in p.name and p.suffix == ".idx")


def _ready(store: SQLiteStore, query: npt.NDArray[np.float32]) -> VectorSet:
    store.dense(ANA, query, 10, [Filter()])
    (vset,) = store._vsets.values()
    assert vset.ann_ready.wait(120)
    return vset


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "store"


def test_the_graph_is_saved_reloaded_and_never_keeps_a_deleted_record(folder: Path) -> None:
    vecs = _vectors(BIG)
    rows = _rows(BIG)
    store = _store_with(folder / "m.db", rows, vecs)
    store.close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    _ready(store, vecs[0])
    _wait(lambda: bool(_index_files(folder, "ann")), "the graph file")
    # The nearest records to a query, deleted: never found again, in memory or after reopening.
    query = vecs[11]
    victims = [i for i, _ in store.dense(ANA, query, 5, [Filter()])[0]]
    with store.transaction() as tx:
        tx.delete("t1", victims, "test")
    assert not _index_files(folder, "ann")  # gone with the delete's commit
    assert not set(victims) & {i for i, _ in store.dense(ANA, query, 50, [Filter()])[0]}
    _wait(lambda: bool(_index_files(folder, "ann")), "the graph saved again")
    store.close()
    gone = {r.id for r in rows} & set(victims)
    gone_rids = [i + 1 for i, r in enumerate(rows) if r.id in gone]  # rids count from 1
    (saved,) = _index_files(folder, "ann")
    _, arrays = read_file(saved, "ann", 1)
    rids = np.asarray(arrays["rids"])
    assert not set(gone_rids) & set(rids.tolist())
    # The deleted records' nodes are there (positions do not move) but say nothing: their
    # neighbour lists were written empty.
    faiss = pytest.importorskip("faiss")
    reader = faiss.VectorIOReader()
    faiss.copy_array_to_vector(np.asarray(arrays["graph"]), reader.data)
    hnsw = faiss.read_index(reader, faiss.IO_FLAG_SKIP_STORAGE).hnsw
    offsets, links = faiss.vector_to_array(hnsw.offsets), faiss.vector_to_array(hnsw.neighbors)
    orphans = np.flatnonzero(rids == -1)
    assert len(orphans) == len(victims)
    assert all((links[offsets[i] : offsets[i + 1]] == -1).all() for i in orphans)
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        vset = _ready(store, query)
        assert vset._ann is not None and vset._ann.count == BIG  # the saved graph, restored
        assert np.count_nonzero(vset._ann.positions < 0) == len(victims)
        assert not set(victims) & {i for i, _ in store.dense(ANA, query, 50, [Filter()])[0]}
    finally:
        store.close()


def test_records_written_after_the_graph_file_are_added_to_it(folder: Path) -> None:
    vecs = _vectors(BIG)
    store = _store_with(folder / "m.db", _rows(BIG), vecs)
    _ready(store, vecs[0])
    _wait(lambda: bool(_index_files(folder, "ann")), "the graph file")
    store.close()
    later = _vectors(40, seed=8)
    _store_with(folder / "m.db", _rows(40, start=BIG), later).close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        vset = _ready(store, vecs[0])
        assert vset._ann is not None and vset._ann.count == BIG + 40  # the file's, and the 40
        for i, vec in enumerate(later):
            found = store.dense(ANA, vec, 1, [Filter()])[0]
            assert found[0][0] == str(uuid.UUID(int=BIG + i + 1))
        _wait(lambda: "-3040.idx" in " ".join(p.name for p in _index_files(folder, "ann")),
              "the extended graph saved")  # fmt: skip
    finally:
        store.close()


def test_a_corrupt_or_foreign_graph_file_is_built_again(folder: Path) -> None:
    vecs = _vectors(BIG)
    store = _store_with(folder / "m.db", _rows(BIG), vecs)
    _ready(store, vecs[0])
    _wait(lambda: bool(_index_files(folder, "ann")), "the graph file")
    store.close()
    (saved,) = _index_files(folder, "ann")
    data = bytearray(saved.read_bytes())
    data[-100:] = bytes(100)  # torn: the checksum no longer holds
    saved.write_bytes(bytes(data))
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        vset = _ready(store, vecs[0])
        assert vset._ann is not None and vset._ann.count == BIG
        _wait(lambda: len(_index_files(folder, "ann")) == 1, "the graph saved anew")
        (again,) = _index_files(folder, "ann")
        read_file(again, "ann", 1)  # whole again
        found = store.dense(ANA, vecs[5], 10, [Filter()])[0]
        assert found[0][0] == str(uuid.UUID(int=6))
    finally:
        store.close()


def test_files_of_records_removed_behind_their_back_are_built_again(folder: Path) -> None:
    vecs = _vectors(BIG)
    _store_with(folder / "m.db", _rows(BIG), vecs).close()
    store = SQLiteStore(folder / "m.db", dim=DIM)  # a load: it writes the postings file
    store.lexical(ANA, "kayak", 5, Filter())
    _ready(store, vecs[0])
    _wait(lambda: bool(_index_files(folder, "ann") and _index_files(folder, "lexical")), "files")
    store.close()
    conn = sqlite3.connect(folder / "m.db")  # a writer that knows nothing of index files
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        conn.execute("DELETE FROM memories WHERE rid % 2 = 0")
    conn.close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        vset = _ready(store, vecs[0])
        assert vset._ann is not None and vset._ann.count == BIG // 2  # built over what is left
        gone = {str(uuid.UUID(int=rid)) for rid in range(2, BIG + 1, 2)}
        assert not gone & {i for i, _ in store.dense(ANA, vecs[1], 50, [Filter()])[0]}
        assert not gone & {i for i, _ in store.lexical(ANA, "kayak", 500, Filter())}
        (lset,) = store._lsets.values()
        assert not isinstance(lset._bulk_terms, np.memmap)  # built from the database
    finally:
        store.close()


def test_the_lexical_file_ranks_exactly_as_a_build_from_the_database(folder: Path) -> None:
    vecs = _vectors(BIG)
    rows = _rows(BIG)
    store = _store_with(folder / "m.db", rows, vecs)
    store.close()
    queries = ["kayak trip", "pottery Lisbon roof", "note 17", "dentist", "nothing"]
    filters = [Filter(), Filter(metadata=(("half", 1),)), Filter(since=1e9 + 1000)]

    def ranked(store: SQLiteStore) -> list[list[tuple[str, float]]]:
        return [store.lexical(ANA, q, 30, f) for q in queries for f in filters]

    store = SQLiteStore(folder / "m.db", dim=DIM)
    built = ranked(store)  # from the database; the file is written meanwhile
    _wait(lambda: bool(_index_files(folder, "lexical")), "the postings file")
    store.close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        assert ranked(store) == built
        (lset,) = store._lsets.values()
        assert isinstance(lset._bulk_terms, np.memmap)  # read from the file
    finally:
        store.close()
    # Records written after the file are read on top of it, and rank as a fresh build.
    more = _rows(60, start=BIG)
    store = _store_with(folder / "m.db", more, _vectors(60, seed=3))
    store.close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    topped_up = ranked(store)
    (lset,) = store._lsets.values()
    assert isinstance(lset._bulk_terms, np.memmap)
    store.close()
    for path in _index_files(folder, "lexical"):
        path.unlink()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    try:
        fresh = ranked(store)
    finally:
        store.close()
    assert [[i for i, _ in r] for r in topped_up] == [[i for i, _ in r] for r in fresh]
    for a, b in zip(topped_up, fresh, strict=True):
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5)


def test_a_delete_leaves_no_trace_of_its_words_in_any_file(folder: Path) -> None:
    rows = _rows(BIG)
    rows[42].text = "zyxwvut secret word"
    rows[42].keys = Keys(own=rows[42].text)
    store = _store_with(folder / "m.db", rows, _vectors(BIG))
    store.close()
    store = SQLiteStore(folder / "m.db", dim=DIM)
    assert store.lexical(ANA, "zyxwvut", 5, Filter())[0][0] == rows[42].id
    _wait(lambda: bool(_index_files(folder, "lexical")), "the postings file")
    trace = term_id("zyxwvut").to_bytes(8, "little", signed=True)

    def files() -> bytes:
        return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())

    assert trace in files()
    with store.transaction() as tx:
        tx.delete("t1", [rows[42].id], "test")
    try:
        assert trace not in files() and b"zyxwvut" not in files()
        assert store.lexical(ANA, "zyxwvut", 5, Filter()) == []
    finally:
        store.close()
    assert trace not in files()
