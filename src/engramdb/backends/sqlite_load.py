"""Loading one scope's in-memory indexes from the SQLite file (a cold start, or after another
process wrote to the scope).

Both indexes are loaded together, inside one read transaction, from one read of the records'
places: the first search needs both, and reading the places (id, row id, time and kind of 100k
records) is a quarter of the load. The lexical index reads the terms stored with each record
(``lexical_terms``) instead of analysing the keys again (backends/lexical.py). A big scope starts
from its index files where they fit (backends/sqlite_cache.py): the BM25 postings are mapped
from the file and only records written since are read, and the dense index starts its HNSW
build from the saved graph.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..records import KIND_CODES, Keys
from .lexical import STORED, LexicalSet, encode_terms, key_terms
from .positions import Places
from .sqlite_cache import IndexFiles
from .vectors import VectorSet

_BATCH = 4096


def load_scope(
    conn: sqlite3.Connection,
    scope_id: int,
    version: int,
    dim: int,
    files: IndexFiles | None = None,
) -> tuple[VectorSet, LexicalSet]:
    """The scope's dense and lexical indexes at ``version`` (read in the caller's transaction),
    from the scope's index files where they fit (and written to them where there were none)."""
    places = _places(conn, scope_id)
    vset = _vectors(conn, scope_id, version, dim, places, files)
    cached = files.lexical(scope_id, version, places) if files is not None else None
    if cached is not None:
        lset, fresh = cached
        lset.append_stored(fresh, *_term_columns(_blobs(conn, scope_id, fresh)))
        return vset, lset
    lset = _lexical(conn, scope_id, version, places)
    if files is not None:
        files.save_lexical(scope_id, lset, places)
    return vset, lset


def _places(conn: sqlite3.Connection, scope_id: int) -> Places:
    rows = conn.execute(
        "SELECT id, rid, occurred_at, kind FROM memories WHERE scope_id = ? ORDER BY rid",
        (scope_id,),
    ).fetchall()
    if not rows:
        return Places.of([])
    ids, rids, times, kinds = zip(*rows, strict=True)
    return Places(
        list(ids),
        np.array(rids, dtype=np.int64),
        np.array(times, dtype=np.float64),
        np.array([KIND_CODES.get(k, -1) for k in kinds], dtype=np.int8),
    )


def _vectors(
    conn: sqlite3.Connection,
    scope_id: int,
    version: int,
    dim: int,
    places: Places,
    files: IndexFiles | None,
) -> VectorSet:
    vset = VectorSet(dim, version) if files is None else files.new_vectors(scope_id, dim, version)
    vset.reserve(len(places))
    cursor = conn.execute(
        "SELECT v.rid, v.vec FROM memories m JOIN vectors v ON v.rid = m.rid "
        "WHERE m.scope_id = ? ORDER BY m.rid",
        (scope_id,),
    )
    while batch := cursor.fetchmany(_BATCH):
        rids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
        matrix = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32)
        vset.extend(places.take(np.searchsorted(places.rids, rids)), matrix.reshape(-1, dim))
    if files is not None:
        files.seed_graph(scope_id, vset)
    return vset


def _lexical(conn: sqlite3.Connection, scope_id: int, version: int, places: Places) -> LexicalSet:
    lset = LexicalSet(version)
    try:
        lset.load(places, *_term_columns(_blobs(conn, scope_id, places)))
    except ValueError:  # stored terms that do not add up: analyse every key again
        lset = LexicalSet(version)
        lset.load(places, *_term_columns([_analysed(conn, rid) for rid in places.rids.tolist()]))
    return lset


def _blobs(conn: sqlite3.Connection, scope_id: int, places: Places) -> list[bytes]:
    """The stored terms of these records (all of the scope's from the first one on), in their
    order; a record without them (written outside engramdb) is analysed."""
    if not len(places):
        return []
    stored = conn.execute(
        "SELECT t.rid, t.terms FROM memories m JOIN lexical_terms t ON t.rid = m.rid "
        "WHERE m.scope_id = ? AND m.rid >= ? ORDER BY m.rid",
        (scope_id, int(places.rids[0])),
    ).fetchall()
    if len(stored) == len(places):
        return [r[1] for r in stored]
    found = {int(r[0]): bytes(r[1]) for r in stored}
    return [found[rid] if rid in found else _analysed(conn, rid) for rid in places.rids.tolist()]


def _analysed(conn: sqlite3.Connection, rid: int) -> bytes:
    own, name, context = conn.execute(
        "SELECT key_own, key_context_name, key_context FROM memories WHERE rid = ?", (rid,)
    ).fetchone()
    return encode_terms(key_terms(Keys(str(own), name, str(context))))


def _term_columns(
    blobs: Sequence[bytes],
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64]]:
    """Stored terms of many records as one array of (term id, frequency) pairs, and each
    record's count of pairs."""
    joined = b"".join(blobs)
    if len(joined) % STORED.itemsize:
        raise ValueError("stored terms of a torn length")
    counts = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // STORED.itemsize
    return np.frombuffer(joined, dtype=STORED), counts
