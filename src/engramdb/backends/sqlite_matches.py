"""Row ids matching a filter on stored fields (session, metadata), kept per scope version.

The indexes apply such a filter as a mask over the row ids that one SQL query returns. That query
reads and parses the metadata of every record in the scope (~100 ms at 100k memories, and more to
bring half of those ids into Python), so its answer is kept: one search asks for it up to three
times (lexical, dense, dense within the query's time window), and the searches between two writes
ask again. An answer is valid for the scope's version it was read at. A commit of this process
carries the answers that searches used at the version before it forward, checking only the
records it wrote, so an agent that adds a turn and then searches with the same filter does not
pay for the scan again; another process's write moves the version without that, and the next
search reads afresh.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

RowIds = npt.NDArray[np.int64]
_CHUNK = 500
#: How many commits of this process an answer is carried through without being read.
_UNREAD_COMMITS = 4


class Matches:
    """A small cache of (scope, version, filter) -> matching row ids, oldest dropped first."""

    def __init__(self, kept: int = 16) -> None:
        self._kept = kept
        self._found: dict[tuple[Any, ...], RowIds] = {}
        self._last_read: dict[tuple[Any, ...], int] = {}  # the version a search last read it at
        self._lock = threading.Lock()

    def get(
        self, conn: sqlite3.Connection, scope_id: int, version: int, where: str, params: list[Any]
    ) -> RowIds:
        """The row ids ``SELECT m.rid FROM memories m WHERE <where>`` returns at ``version``,
        which ``conn`` must be reading (one read transaction)."""
        key = (scope_id, version, where, tuple(params))
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._last_read[key] = version
        if found is None:
            found = _rids(conn, f"SELECT m.rid FROM memories m WHERE {where}", params)
            self._put(key, found, version)
        return found

    def carry(
        self, conn: sqlite3.Connection, scope_id: int, version: int, written: Sequence[int]
    ) -> None:
        """After a commit of this process took the scope to ``version``, re-check the records it
        inserted or changed (``written``) in the answers of the version before. Only answers a
        search read within the last few commits are carried (an ``add`` commits twice), so a
        run of writes without searches soon costs nothing here. A deleted record needs nothing:
        the indexes mask it out, and its row id, if ever reused, is written again."""
        with self._lock:
            previous = [k for k in self._found if k[0] == scope_id and k[1] == version - 1]
            carried = [(k, self._found.pop(k), self._last_read.pop(k, -1)) for k in previous]
        touched = np.asarray(written, dtype=np.int64)
        for (_, _, where, params), found, last_read in carried:
            if version - last_read > _UNREAD_COMMITS:
                continue
            try:
                again = [
                    _rids(
                        conn,
                        f"SELECT m.rid FROM memories m WHERE {where} AND m.rid IN "
                        f"({','.join('?' * len(chunk))})",
                        [*params, *chunk],
                    )
                    for chunk in _chunks(written)
                ]
            except sqlite3.Error:
                continue  # dropped: the next search reads it afresh
            if touched.size and found.size and touched.min() <= found.max():
                found = found[~np.isin(found, touched)]  # rewritten, not only new, records
            if again:
                found = np.concatenate([found, *again])
            self._put((scope_id, version, where, params), found, last_read)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()
            self._last_read.clear()

    def _put(self, key: tuple[Any, ...], found: RowIds, last_read: int) -> None:
        with self._lock:
            self._found[key] = found
            self._last_read[key] = last_read
            while len(self._found) > self._kept:
                oldest = next(iter(self._found))
                del self._found[oldest]
                self._last_read.pop(oldest, None)


def _rids(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> RowIds:
    return np.fromiter((r[0] for r in conn.execute(sql, params)), dtype=np.int64)


def _chunks(values: Sequence[int]) -> list[list[int]]:
    return [list(values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]
