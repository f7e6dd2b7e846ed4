"""An in-memory, append-friendly matrix of one scope's vectors: the derived dense index.

The database is the source of truth; this is rebuilt from it whenever it is missing or stale.
Exact search (one matrix-vector product) is fast enough here for a scope of 100k memories
(a few milliseconds) and has perfect recall, so no approximate index is needed at this size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records import Scored, Vector
from .positions import Places, Positions, Window


class VectorSet(Positions):
    """Records' unit vectors by position, with amortised O(1) append and tombstone delete."""

    def __init__(self, dim: int, version: int = 0) -> None:
        super().__init__(version)
        self.dim = dim
        self._mat = np.zeros((self._rids.shape[0], dim), dtype=np.float32)

    def _grow_more(self, capacity: int) -> None:
        self._mat = np.resize(self._mat, (capacity, self.dim))

    def add(self, items: Sequence[tuple[str, int, float, int]], vectors: Vector) -> None:
        """Append (id, rid, event time, kind code) rows with their vectors; an id already
        present is replaced."""
        if len({item[0] for item in items}) == len(items):
            self.extend(Places.of(items), vectors)
            return
        with self.lock:  # an id twice: the last one wins, as one by one
            for (ident, rid, when, kind), vec in zip(items, vectors, strict=True):
                self._mat[self._append(ident, rid, when, kind)] = vec

    def extend(self, places: Places, vectors: Vector) -> None:
        """Append records of distinct ids with their vectors (a load)."""
        if len(places) != len(vectors):
            raise ValueError("one vector per record")
        with self.lock:
            start = self._extend(places)
            self._mat[start : start + len(places)] = vectors

    def search_many(self, query: Vector, limit: int, windows: Sequence[Window]) -> list[Scored]:
        """One scan of the matrix, ranked separately within each window."""
        with self.lock:
            n = self._n
            if n == 0 or limit <= 0 or not windows:
                return [[] for _ in windows]
            keeps = [self.mask(n, w) for w in windows]
            union = keeps[0] if len(keeps) == 1 else np.logical_or.reduce(keeps)
            # The expensive part, done once. A float64 query would upcast the matrix (10x slower).
            vector = np.asarray(query, dtype=np.float32)
            if np.count_nonzero(union) * 8 < n:  # a narrow filter (a session): score what it keeps
                wanted = np.flatnonzero(union)
                scores = np.zeros(n, dtype=np.float32)
                scores[wanted] = self._mat[wanted] @ vector
            else:
                scores = self._mat[:n] @ vector
            return [self.top(scores, keep, limit) for keep in keeps]
